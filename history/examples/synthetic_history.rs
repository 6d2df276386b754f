//! Writes a synthetic history (with the collector's writer) for trying openmosixhistory
//! and for its screenshots: `cargo run -p openmosixhistory --example synthetic_history
//! -- /tmp/h.db`. Four nodes, ten minutes at 1 Hz ending now; a povray render spreads
//! from node 1 over the cluster and comes back.

use std::process::ExitCode;

use openmosix_hpc::model::{NodeId, NodeInfo, NodeStatus};
use openmosix_store::store::{ProcIn, Store, Tick};
use openmosix_testbed::fixtures::proc_in;

const NODES: [NodeId; 4] = [1, 2, 3, 4];
const POVRAY: &str = "/usr/local/povray/bin/x-povray +Iskyvase.pov +W1024 +H768";

/// The process list of `node` at second `s` of the history.
fn procs(node: NodeId, s: i64) -> Vec<ProcIn> {
    let mut out = vec![proc_in(1, node, 'S', "/sbin/init")];
    let workers = 8;
    // Worker w leaves node 1 at 30 + 20 w seconds and comes back at 480 - 10 w.
    let away = |w: i64| (30 + 20 * w..480 - 10 * w).contains(&s);
    let target = |w: i64| 2 + (w as NodeId % 3);
    if node == 1 {
        out.push(proc_in(976, 1, 'S', "/usr/X11R6/bin/X :0"));
        out.push(proc_in(994, 1, 'S', "/sbin/mingetty tty1"));
        out.push(proc_in(995, 1, 'S', "login -- root"));
        out.push(proc_in(996, 1, 'S', "-bash"));
        out.push(proc_in(2517, 1, 'S', "make -f povray.mk render"));
    } else {
        out.push(proc_in(420 + node as i32, node, 'S', "/usr/sbin/sshd -D"));
    }
    for w in 0..workers {
        let pid = 2518 + w as i32;
        let state = if (s + w) % 7 == 0 { 'S' } else { 'R' };
        if s < 20 + 3 * w || s > 540 + w {
            continue;
        }
        match (node, away(w)) {
            (1, false) => out.push(proc_in(pid, 1, state, POVRAY)),
            (n, true) if n == target(w) => out.push(ProcIn {
                pid: 30_000 + pid,
                home: 1,
                home_pid: pid,
                state,
                cmdline: POVRAY.into(),
            }),
            _ => {}
        }
    }
    if node == 3 && (200..260).contains(&s) {
        out.push(proc_in(7001, 3, 'D', "tar czf /backup/home.tgz /home"));
    }
    out.sort_by_key(|p| p.pid);
    out
}

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: synthetic_history DB");
        return ExitCode::FAILURE;
    };
    let path = std::path::PathBuf::from(path);
    let _ = std::fs::remove_file(&path);
    let result = (|| -> openmosix_store::Result<()> {
        let mut store = Store::open_file(&path)?;
        let nodes: Vec<(NodeId, String)> =
            NODES.iter().map(|&n| (n, format!("10.0.0.{n}"))).collect();
        store.set_nodes(&nodes)?;
        let end = openmosix_store::now();
        let start = end - 600;
        for s in 0..=600 {
            let tick = Tick {
                time: start + s,
                samples: NODES
                    .iter()
                    .map(|&id| {
                        let busy = procs(id, s).iter().filter(|p| p.state == 'R').count();
                        let info = NodeInfo {
                            id,
                            cpus: 2,
                            speed: 1000,
                            load: busy as f64 * 100.0,
                            util: (busy as f64 * 50.0).min(100.0),
                            mem: 700 << 20,
                            rmem: 300 << 20,
                            tmem: 1 << 30,
                            status: NodeStatus::Up,
                        };
                        (id, info)
                    })
                    .collect(),
                procs: NODES.iter().map(|&id| (id, procs(id, s))).collect(),
                ..Tick::default()
            };
            store.write_tick(&tick)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("synthetic_history: {e}");
            ExitCode::FAILURE
        }
    }
}
