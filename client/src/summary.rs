//! The cluster-wide figures of a snapshot: the main window's top row, `openmosix mon`'s totals.
//!
//! Load-balancing efficiency (docs/figures.md): with `x_i = load_i / cpus_i` the load per
//! CPU of each node that is up, `efficiency = 100 · mean(x) / max(x)` — 100 % when every
//! node carries the same load per CPU (or none at all), 100/N % when one node of N carries
//! everything.

use crate::{LinkState, NodeView};
use openmosix_hpc::model::NodeInfo;

/// A node's load bar: load per CPU in percent (openMosix load 100 = one busy process).
pub fn load_percent(info: &NodeInfo) -> f32 {
    let per_cpu = (info.load / f64::from(info.cpus.max(1))) as f32;
    per_cpu.clamp(0.0, 100.0)
}

/// A node's memory bar: used share of its memory (0..=1).
pub fn mem_used_fraction(info: &NodeInfo) -> f32 {
    if info.tmem == 0 {
        return 0.0;
    }
    let f = info.tmem.saturating_sub(info.mem) as f32 / info.tmem as f32;
    f.clamp(0.0, 1.0)
}

/// The cluster-wide figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Load-balancing efficiency in percent.
    pub efficiency: f32,
    /// Overall load: load per CPU over all CPUs of the nodes that are up, in percent.
    pub load_percent: f32,
    /// Used memory of the nodes that are up, bytes.
    pub mem_used: u64,
    /// All memory of the nodes that are up, bytes.
    pub mem_total: u64,
    /// All CPUs of the nodes that are up.
    pub cpus: u32,
    /// Nodes up.
    pub up: usize,
    /// Nodes in the cluster.
    pub nodes: usize,
}

/// Computes the summary of a snapshot.
pub fn summarize(nodes: &[NodeView]) -> Summary {
    let up: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.state == LinkState::Up)
        .filter_map(|n| n.info.as_ref())
        .collect();
    let per_cpu: Vec<f64> = up
        .iter()
        .map(|i| i.load / f64::from(i.cpus.max(1)))
        .collect();
    let max = per_cpu.iter().copied().fold(0.0_f64, f64::max);
    let mean = if per_cpu.is_empty() {
        0.0
    } else {
        per_cpu.iter().sum::<f64>() / per_cpu.len() as f64
    };
    let efficiency = if max <= f64::EPSILON {
        100.0
    } else {
        (100.0 * mean / max) as f32
    };
    let cpus: u32 = up.iter().map(|i| i.cpus).sum();
    let load: f64 = up.iter().map(|i| i.load).sum();
    let load_percent = if cpus == 0 {
        0.0
    } else {
        (load / f64::from(cpus)).clamp(0.0, 100.0) as f32
    };
    Summary {
        efficiency,
        load_percent,
        mem_used: up.iter().map(|i| i.tmem.saturating_sub(i.mem)).sum(),
        mem_total: up.iter().map(|i| i.tmem).sum(),
        cpus,
        up: up.len(),
        nodes: nodes.len(),
    }
}

/// Bytes in a short human unit (MiB up to 10 GiB, then GiB).
pub fn human_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const GIB: u64 = 1024 * MIB;
    if bytes >= 10 * GIB {
        let g = bytes as f64 / GIB as f64;
        format!("{g:.1} GiB")
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmosix_hpc::model::NodeStatus;

    fn node(id: u32, load: f64, cpus: u32, state: LinkState) -> NodeView {
        NodeView {
            id,
            address: format!("10.0.0.{id}"),
            state,
            reason: None,
            hello: None,
            info: Some(NodeInfo {
                id,
                cpus,
                speed: 1000,
                load,
                util: 0.0,
                mem: 1000,
                rmem: 900,
                tmem: 4000,
                status: NodeStatus::Up,
            }),
            updated: None,
        }
    }

    #[test]
    fn efficiency_rule() {
        let even = [
            node(1, 100.0, 1, LinkState::Up),
            node(2, 200.0, 2, LinkState::Up),
        ];
        assert!((summarize(&even).efficiency - 100.0).abs() < 1e-3);
        let skewed = [
            node(1, 300.0, 1, LinkState::Up),
            node(2, 0.0, 1, LinkState::Up),
            node(3, 0.0, 1, LinkState::Up),
        ];
        assert!((summarize(&skewed).efficiency - 100.0 / 3.0).abs() < 1e-3);
        let idle = [node(1, 0.0, 1, LinkState::Up)];
        assert!((summarize(&idle).efficiency - 100.0).abs() < 1e-3);
        // A down node's stale figures do not count.
        let with_down = [
            node(1, 100.0, 1, LinkState::Up),
            node(2, 0.0, 1, LinkState::Down),
        ];
        let s = summarize(&with_down);
        assert!((s.efficiency - 100.0).abs() < 1e-3);
        assert_eq!(
            (s.up, s.nodes, s.cpus, s.mem_total, s.mem_used),
            (1, 2, 1, 4000, 3000)
        );
    }

    #[test]
    fn bars() {
        let n = node(1, 150.0, 2, LinkState::Up);
        let info = n.info.as_ref().unwrap();
        assert!((load_percent(info) - 75.0).abs() < 1e-3);
        assert!((mem_used_fraction(info) - 0.75).abs() < 1e-3);
        assert_eq!(human_bytes(3 * 1024 * 1024), "3 MiB");
        assert_eq!(human_bytes(24 * 1024 * 1024 * 1024), "24.0 GiB");
    }
}
