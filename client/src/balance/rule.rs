//! The decision rule of the load balancer, pure: given every node's load, speed, CPUs,
//! free memory and switches and every process's weight and settings, which processes
//! should move where (docs/balancing.md).
//!
//! - A node's **capacity** is `cpus × speed / 1000` (PIII-equivalent CPUs) and its
//!   **pressure** `x = load / capacity`: the load per CPU the efficiency bar uses,
//!   weighted by speed, so a node made slow has a high pressure for the same load.
//! - Moving a process of weight `w` (its share of a busy CPU, 0..1, load `δ = 100·w`)
//!   from A to B gives `x'_A = (L_A − δ)/c_A` and `x'_B = (L_B + δ)/c_B`. Its **gain** is
//!   how much the higher pressure of the pair drops: `G = x_A − max(x'_A, x'_B)`.
//! - A move is made only when `G ≥ min_gain · δ/c_A`, i.e. it removes at least that
//!   share of the process's own pressure from the pair's peak. A move that would only
//!   swap which node is the busier one has `G ≤ 0` and is never made.
//! - Among the allowed moves the one with the largest gain wins; then, with both its
//!   nodes busy, the next one on two other nodes: at most one move per node at a time.
//!
//! Every move lowers the sorted list of the nodes' pressures (the pair's peak drops and
//! nothing else changes), so moves cannot go round in circles.

use openmosix_hpc::model::{MigMask, NodeId, ProcInfo};

/// A node as the rule sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLoad {
    /// The node.
    pub id: NodeId,
    /// CPUs.
    pub cpus: u32,
    /// Speed (PIII/1GHz = 1000).
    pub speed: u32,
    /// The balancer's load of the node (100 = one busy process).
    pub load: f64,
    /// Free memory (bytes).
    pub mem: u64,
    /// Processes may leave it automatically (it takes part and no move involves it now).
    pub source: bool,
    /// Processes may arrive (it takes part, takes guests, and no move involves it now).
    pub target: bool,
    /// `lstay`: processes whose home it is stay.
    pub lstay: bool,
}

impl NodeLoad {
    /// `cpus × speed / 1000`: how many PIII/1GHz CPUs the node is worth.
    pub fn capacity(&self) -> f64 {
        f64::from(self.cpus.max(1)) * f64::from(self.speed.max(1)) / 1000.0
    }

    /// Load per PIII-equivalent CPU with `load`.
    pub fn pressure_with(&self, load: f64) -> f64 {
        load.max(0.0) / self.capacity()
    }

    /// Load per PIII-equivalent CPU now.
    pub fn pressure(&self) -> f64 {
        self.pressure_with(self.load)
    }
}

/// A process as the rule sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcLoad {
    /// The node it runs on.
    pub node: NodeId,
    /// Its pid there.
    pub pid: i32,
    /// Its home node.
    pub home: NodeId,
    /// Its share of a busy CPU (0..=1), from its decayed statistics.
    pub weight: f64,
    /// Resident size (bytes): the target needs that much free memory.
    pub rss: u64,
    /// Its cluster mask.
    pub mask: MigMask,
    /// `cpujob`: preferred when gains tie.
    pub cpujob: bool,
    /// Migrations so far: fewer is preferred when gains tie.
    pub nmigs: u32,
    /// Why it may not move automatically now; `None` when it may.
    pub held: Option<String>,
}

/// A move the rule asks for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Move {
    /// The process's pid on the source.
    pub pid: i32,
    /// Source node.
    pub from: NodeId,
    /// Target node.
    pub to: NodeId,
    /// Its weight (share of a busy CPU).
    pub weight: f64,
    /// Pressures of source and target before the move.
    pub before: (f64, f64),
    /// Pressures of source and target after it.
    pub after: (f64, f64),
    /// `x_A − max(x'_A, x'_B)`.
    pub gain: f64,
    /// Its resident size, bytes (post-copy above a threshold: [`super::BalanceConfig`]).
    #[serde(default)]
    pub rss: u64,
}

/// Why a process is not a candidate for automatic moves at all, if it is not: only jobs
/// started with `run` (mosrun) that are not locked, or processes unlocked on purpose,
/// that nothing keeps where they are; I/O-bound jobs (`iojob`) stay, as they gain nothing
/// from another CPU.
pub fn not_a_candidate(p: &ProcInfo) -> Option<String> {
    if !p.candidate {
        Some("not started with mosrun nor unlocked".into())
    } else if p.lock {
        Some("locked".into())
    } else if !p.cantmove.is_empty() {
        Some(p.cantmove.clone())
    } else if p.run.as_ref().is_some_and(|r| r.iojob) {
        Some("an I/O-bound job (iojob)".into())
    } else {
        None
    }
}

/// The move of `p` from its node to `to`, if the rule allows it.
fn consider(a: &NodeLoad, b: &NodeLoad, p: &ProcLoad, min_gain: f64) -> Option<Move> {
    if a.id == b.id || !a.source || !b.target || p.held.is_some() {
        return None;
    }
    if (a.lstay && p.home == a.id) || !p.mask.allows(b.id) || p.rss >= b.mem {
        return None;
    }
    let delta = 100.0 * p.weight.clamp(0.0, 1.0);
    if delta <= 0.0 {
        return None;
    }
    let before = (a.pressure(), b.pressure());
    let after = (
        a.pressure_with(a.load - delta),
        b.pressure_with(b.load + delta),
    );
    let gain = before.0 - after.0.max(after.1);
    let own = delta / a.capacity();
    (gain > 0.0 && gain >= min_gain * own).then_some(Move {
        pid: p.pid,
        from: a.id,
        to: b.id,
        weight: p.weight,
        before,
        after,
        gain,
        rss: p.rss,
    })
}

/// Whether move `a` (of `pa`) is better than move `b` (of `pb`): the larger gain; then
/// the emptier target (as `best` picks one); then a `cpujob`; then fewer migrations;
/// then a fixed order, so that a plan does not depend on the order of the lists.
fn prefer(a: &Move, pa: &ProcLoad, b: &Move, pb: &ProcLoad) -> bool {
    use std::cmp::Ordering;
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0);
    let by = |x: f64, y: f64| {
        if close(x, y) {
            Ordering::Equal
        } else {
            x.total_cmp(&y)
        }
    };
    by(a.gain, b.gain)
        .then(by(b.after.1, a.after.1))
        .then(pa.cpujob.cmp(&pb.cpujob))
        .then(pb.nmigs.cmp(&pa.nmigs))
        .then((b.from, b.pid, b.to).cmp(&(a.from, a.pid, a.to)))
        == Ordering::Greater
}

/// The moves to make now: the best allowed move, then the best on two other nodes, and
/// so on (`min_gain` as in the module's rule, e.g. 0.25).
pub fn plan(nodes: &[NodeLoad], procs: &[ProcLoad], min_gain: f64) -> Vec<Move> {
    let mut nodes: Vec<NodeLoad> = nodes.to_vec();
    let mut moves: Vec<Move> = Vec::new();
    loop {
        let mut best: Option<(Move, &ProcLoad)> = None;
        for p in procs {
            let Some(a) = nodes.iter().find(|n| n.id == p.node) else {
                continue;
            };
            for b in &nodes {
                let Some(m) = consider(a, b, p, min_gain) else {
                    continue;
                };
                let better = best.as_ref().is_none_or(|(bm, bp)| prefer(&m, p, bm, bp));
                if better {
                    best = Some((m, p));
                }
            }
        }
        let Some((m, _)) = best else {
            return moves;
        };
        for n in &mut nodes {
            if n.id == m.from || n.id == m.to {
                n.source = false;
                n.target = false;
            }
        }
        moves.push(m);
    }
}

/// The main window's load-balancing efficiency (docs/figures.md) of `(load, cpus)` pairs:
/// `100 · mean(x) / max(x)` with `x = load / cpus`; 100 when no node carries load.
pub fn efficiency(nodes: &[(f64, u32)]) -> f64 {
    let x: Vec<f64> = nodes
        .iter()
        .map(|&(load, cpus)| load.max(0.0) / f64::from(cpus.max(1)))
        .collect();
    let max = x.iter().copied().fold(0.0, f64::max);
    if x.is_empty() || max <= 0.0 {
        return 100.0;
    }
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    100.0 * mean / max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: NodeId, jobs: u32, speed: u32) -> NodeLoad {
        NodeLoad {
            id,
            cpus: 2,
            speed,
            load: f64::from(jobs) * 100.0,
            mem: 1 << 30,
            source: true,
            target: true,
            lstay: false,
        }
    }

    fn jobs(node: NodeId, pids: std::ops::Range<i32>) -> Vec<ProcLoad> {
        pids.map(|pid| ProcLoad {
            node,
            pid,
            home: node,
            weight: 1.0,
            rss: 1 << 20,
            mask: MigMask::default(),
            cpujob: false,
            nmigs: 0,
            held: None,
        })
        .collect()
    }

    /// Applies plans until none is left; returns the jobs per node and the moves made.
    fn settle(nodes: &mut [NodeLoad], procs: &mut [ProcLoad]) -> usize {
        let mut made = 0;
        for _ in 0..100 {
            let moves = plan(nodes, procs, 0.25);
            if moves.is_empty() {
                return made;
            }
            for m in moves {
                made += 1;
                let p = procs.iter_mut().find(|p| p.pid == m.pid).unwrap();
                p.node = m.to;
                p.nmigs += 1;
                nodes.iter_mut().find(|n| n.id == m.from).unwrap().load -= 100.0;
                nodes.iter_mut().find(|n| n.id == m.to).unwrap().load += 100.0;
            }
        }
        panic!("moves never ended: they go round in circles");
    }

    fn count(procs: &[ProcLoad], node: NodeId) -> usize {
        procs.iter().filter(|p| p.node == node).count()
    }

    #[test]
    fn four_jobs_spread_one_per_node_and_stop() {
        let mut nodes = vec![node(1, 0, 1000), node(2, 4, 1000), node(3, 0, 1000)];
        nodes.push(node(4, 0, 1000));
        let mut procs = jobs(2, 100..104);
        // One move per node at a time: the first plan moves one job only (node 2 is busy).
        assert_eq!(plan(&nodes, &procs, 0.25).len(), 1);
        assert_eq!(settle(&mut nodes, &mut procs), 3);
        for n in 1..=4 {
            assert_eq!(count(&procs, n), 1, "node {n}");
        }
        let eff = efficiency(&nodes.iter().map(|n| (n.load, n.cpus)).collect::<Vec<_>>());
        assert!((eff - 100.0).abs() < 1e-9);
    }

    #[test]
    fn eight_jobs_on_one_node_of_four_end_two_each() {
        let mut nodes: Vec<NodeLoad> = (1..=4).map(|i| node(i, 0, 1000)).collect();
        nodes[0].load = 800.0;
        let mut procs = jobs(1, 0..8);
        assert_eq!(settle(&mut nodes, &mut procs), 6);
        assert!((1..=4).all(|n| count(&procs, n) == 2));
    }

    #[test]
    fn no_move_without_a_real_gain() {
        // 2 against 1 on equal nodes: moving only swaps the busier node.
        let nodes = vec![node(1, 2, 1000), node(2, 1, 1000)];
        let mut procs = jobs(1, 0..2);
        procs.extend(jobs(2, 2..3));
        assert!(plan(&nodes, &procs, 0.25).is_empty());
        // 10 % faster is noise, not a reason to move.
        let nodes = vec![node(1, 2, 1000), node(2, 1, 1100)];
        assert!(plan(&nodes, &procs, 0.25).is_empty());
        // An idle candidate (weight 0) never moves, however loaded its node is.
        let nodes = vec![node(1, 6, 1000), node(2, 0, 1000)];
        let mut idle = jobs(1, 0..1);
        idle[0].weight = 0.0;
        assert!(plan(&nodes, &idle, 0.25).is_empty());
        // 3 against 1 is worth it.
        let nodes = vec![node(1, 3, 1000), node(2, 1, 1000)];
        let procs = jobs(1, 0..3);
        let m = plan(&nodes, &procs, 0.25);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].from, m[0].to), (1, 2));
        assert!((m[0].gain - 50.0).abs() < 1e-9, "{m:?}");
    }

    #[test]
    fn switches_mask_memory_and_holdoff_are_honoured() {
        let base = vec![node(1, 4, 1000), node(2, 0, 1000), node(3, 0, 1000)];
        let procs = jobs(1, 0..4);
        // Node 3 blocked (not a target), node 2 staying (neither source nor target).
        let mut nodes = base.clone();
        nodes[2].target = false;
        nodes[1].source = false;
        nodes[1].target = false;
        assert!(plan(&nodes, &procs, 0.25).is_empty());
        // Node 1 staying: nothing leaves it.
        let mut nodes = base.clone();
        nodes[0].source = false;
        assert!(plan(&nodes, &procs, 0.25).is_empty());
        // lstay on node 1 keeps its own processes, not guests.
        let mut nodes = base.clone();
        nodes[0].lstay = true;
        assert!(plan(&nodes, &procs, 0.25).is_empty());
        let mut guests = procs.clone();
        guests[3].home = 2;
        assert_eq!(plan(&nodes, &guests, 0.25)[0].pid, 3);
        // A mask that denies node 2 and 3 (DENY policy), and one that allows only node 3.
        let mut masked = procs.clone();
        for p in &mut masked {
            p.mask = MigMask {
                migfilter: true,
                mignodes: 0b110,
                migpolicy: 0,
            };
        }
        assert!(plan(&base, &masked, 0.25).is_empty());
        masked[2].mask = MigMask {
            migfilter: true,
            mignodes: 0b100,
            migpolicy: 1,
        };
        let m = plan(&base, &masked, 0.25);
        assert_eq!((m[0].pid, m[0].to), (2, 3));
        // Not enough free memory on the target.
        let mut small = base.clone();
        small[1].mem = 1 << 10;
        small[2].mem = 1 << 10;
        assert!(plan(&small, &procs, 0.25).is_empty());
        // Held off (moved lately, or not a candidate).
        let mut held = procs;
        for p in &mut held {
            p.held = Some("moved 3 s ago".into());
        }
        assert!(plan(&base, &held, 0.25).is_empty());
    }

    #[test]
    fn a_slow_node_is_emptied_first() {
        // Node 2 made slow (HOWTO 9.2): its one job leaves before node 1's two split.
        let mut nodes = vec![node(1, 2, 10_000), node(2, 1, 100), node(3, 0, 10_000)];
        nodes.push(node(4, 0, 10_000));
        let mut procs = jobs(1, 0..2);
        procs.extend(jobs(2, 2..3));
        let first = plan(&nodes, &procs, 0.25);
        assert_eq!(first[0].from, 2, "{first:?}");
        settle(&mut nodes, &mut procs);
        assert_eq!(count(&procs, 2), 0);
        // With all four jobs on the slow node, every one of them leaves it.
        let mut nodes = vec![node(1, 0, 10_000), node(2, 4, 100), node(3, 0, 10_000)];
        nodes.push(node(4, 0, 10_000));
        let mut procs = jobs(2, 0..4);
        settle(&mut nodes, &mut procs);
        assert_eq!(count(&procs, 2), 0);
        assert!((1..=4).all(|n| count(&procs, n) <= 2));
    }

    #[test]
    fn ties_prefer_cpujobs_and_fewer_migrations() {
        let nodes = vec![node(1, 3, 1000), node(2, 0, 1000)];
        let mut procs = jobs(1, 0..3);
        procs[0].nmigs = 2;
        procs[2].cpujob = true;
        assert_eq!(plan(&nodes, &procs, 0.25)[0].pid, 2);
        procs[2].cpujob = false;
        assert_eq!(plan(&nodes, &procs, 0.25)[0].pid, 1);
    }

    #[test]
    fn candidates_are_only_unlocked_mosrun_jobs() {
        use openmosix_hpc::bytes::BytesOrText;
        use openmosix_hpc::model::RunOptions;
        let mut p = ProcInfo {
            pid: 5,
            ppid: 1,
            state: 'R',
            comm: BytesOrText::from("sh"),
            cmdline: BytesOrText::from("sh"),
            where_: 1,
            home: 1,
            home_pid: 5,
            ..ProcInfo::default()
        };
        assert!(not_a_candidate(&p).is_some());
        p.candidate = true;
        assert_eq!(not_a_candidate(&p), None);
        p.run = Some(RunOptions {
            iojob: true,
            ..RunOptions::default()
        });
        assert!(not_a_candidate(&p).unwrap().contains("iojob"));
        p.run = None;
        p.cantmove = "traced by process 9".into();
        assert_eq!(not_a_candidate(&p).as_deref(), Some("traced by process 9"));
    }

    #[test]
    fn efficiency_formula() {
        assert!((efficiency(&[]) - 100.0).abs() < 1e-9);
        assert!((efficiency(&[(0.0, 2), (0.0, 2)]) - 100.0).abs() < 1e-9);
        // One node of four carries everything: 100/4.
        let one = [(400.0, 2), (0.0, 2), (0.0, 2), (0.0, 2)];
        assert!((efficiency(&one) - 25.0).abs() < 1e-9);
        // Per CPU: 200 on 4 CPUs equals 100 on 2.
        assert!((efficiency(&[(200.0, 4), (100.0, 2)]) - 100.0).abs() < 1e-9);
    }
}
