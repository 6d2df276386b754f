//! Synthetic histories (for the tests, the benchmark and the screenshots), written with
//! the collector's own writer ([`openmosix_store::Store`]).

use std::path::Path;

use openmosix_hpc::model::{NodeId, NodeInfo, NodeStatus};
use openmosix_store::Time;
use openmosix_store::store::{EventIn, Store, Tick};

const MIB: u64 = 1 << 20;

/// What to write.
#[derive(Debug, Clone)]
pub struct Synth {
    /// Nodes 1..=nodes.
    pub nodes: u32,
    /// First sample time (s).
    pub t0: Time,
    /// Samples per node (one a second).
    pub seconds: Time,
    /// A node that is down (no samples) over a range of seconds after `t0`.
    pub down: Option<(NodeId, Time, Time)>,
    /// Checkpoints: seconds after `t0` and note.
    pub checkpoints: Vec<(Time, String)>,
    /// Events: seconds after `t0`, node, kind, text.
    pub events: Vec<(Time, NodeId, String, String)>,
}

/// The load (×100) of `node` `i` seconds after the start: slow waves, a different one
/// per node, with a busy hour in the middle that goes above 75.
pub fn load_at(node: NodeId, i: Time) -> f64 {
    let k = f64::from(node);
    let x = i as f64;
    let wave = 30.0 + 25.0 * (x / (900.0 + 300.0 * k) + k).sin();
    let ripple = 6.0 * (x / 420.0 + k * 1.7).sin() + 2.0 * (x / 23.0 + k).sin();
    let busy = if (i / 3600 + i64::from(node)) % 3 == 0 {
        45.0 * (std::f64::consts::PI * (i % 3600) as f64 / 3600.0).sin()
    } else {
        0.0
    };
    (wave + ripple + busy).max(0.0)
}

/// Free memory (MiB) of `node` `i` seconds after the start.
pub fn mem_at(node: NodeId, i: Time) -> u64 {
    let k = f64::from(node);
    let x = i as f64;
    (2500.0 + 900.0 * (x / (1300.0 + 200.0 * k) + k).sin()) as u64
}

/// Total memory (MiB) of `node`.
pub fn tmem_of(node: NodeId) -> u64 {
    if node.is_multiple_of(2) { 8192 } else { 4096 }
}

fn info(node: NodeId, i: Time) -> NodeInfo {
    let load = load_at(node, i);
    let mem = mem_at(node, i);
    NodeInfo {
        id: node,
        cpus: 1 + node % 4,
        speed: 1000 + 250 * node,
        load,
        util: (load / 2.0).min(100.0),
        mem: mem * MIB,
        rmem: mem * MIB * 3 / 4,
        tmem: tmem_of(node) * MIB,
        status: NodeStatus::Up,
    }
}

/// Writes `s` into a new history at `path`.
pub fn write(path: &Path, s: &Synth) -> Result<(), String> {
    let err = |e: openmosix_store::Error| e.to_string();
    let mut store = Store::open_file(path).map_err(err)?;
    let nodes: Vec<(NodeId, String)> = (1..=s.nodes).map(|n| (n, format!("node{n}"))).collect();
    store.set_nodes(&nodes).map_err(err)?;
    for i in 0..s.seconds {
        let mut tick = Tick {
            time: s.t0 + i,
            ..Tick::default()
        };
        for n in 1..=s.nodes {
            if s.down
                .is_some_and(|(d, a, b)| d == n && (a..b).contains(&i))
            {
                continue;
            }
            tick.samples.push((n, info(n, i)));
        }
        for (at, node, kind, text) in &s.events {
            if *at == i {
                tick.events.push(EventIn {
                    node: *node,
                    time_ms: (s.t0 + i) * 1000 + 500,
                    kind: kind.clone(),
                    text: text.clone(),
                    pid: None,
                    seq: None,
                });
            }
        }
        store.write_tick(&tick).map_err(err)?;
    }
    // The writer stamps checkpoints with the current time; a synthetic past needs its own.
    for (at, note) in &s.checkpoints {
        store
            .connection()
            .execute(
                "INSERT INTO checkpoints (time_ms, note) VALUES (?1, ?2)",
                ((s.t0 + at) * 1000, note.as_str()),
            )
            .map_err(|e| e.to_string())?;
    }
    store.wal_checkpoint().map_err(err)?;
    Ok(())
}
