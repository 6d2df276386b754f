//! Writes a synthetic history for trying the analyzer out and for the screenshots:
//! `cargo run -p openmosixanalyzer --example synth_history -- PATH [NODES] [HOURS]`.
//! It ends now; a checkpoint every 4 hours, some events, node 3 down for 20 minutes.

use openmosixanalyzer::synth::{self, Synth};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: synth_history PATH [NODES] [HOURS]")?;
    let nodes: u32 = args
        .next()
        .map_or(Ok(8), |a| a.parse())
        .map_err(|e| format!("{e}"))?;
    let hours: f64 = args
        .next()
        .map_or(Ok(12.5), |a| a.parse())
        .map_err(|e| format!("{e}"))?;
    let seconds = (hours * 3600.0) as i64;
    let t0 = openmosix_store::now() - seconds;
    let s = Synth {
        nodes,
        t0,
        seconds,
        down: Some((3.min(nodes), seconds / 3, seconds / 3 + 1200)),
        checkpoints: (1..)
            .map(|i| i * 4 * 3600)
            .take_while(|t| *t < seconds)
            .map(|t| (t, format!("checkpoint at +{}h", t / 3600)))
            .collect(),
        events: vec![
            (
                seconds / 3,
                3.min(nodes),
                "down".into(),
                "node 3 stopped answering".into(),
            ),
            (
                seconds / 3 + 1200,
                3.min(nodes),
                "up".into(),
                "node 3 is back".into(),
            ),
            (
                seconds / 2,
                1,
                "migrate_out".into(),
                "pid 4711 (render) migrated to node 2".into(),
            ),
            (
                seconds / 2,
                2.min(nodes),
                "migrate_in".into(),
                "pid 4711 (render) came from node 1".into(),
            ),
            (
                seconds * 3 / 4,
                2.min(nodes),
                "renice".into(),
                "pid 815 reniced to 10".into(),
            ),
        ],
    };
    synth::write(std::path::Path::new(&path), &s)?;
    println!("{path}: {nodes} nodes, {seconds} s");
    Ok(())
}
