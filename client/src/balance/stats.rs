//! What the balancer remembers between rounds: every process's decayed statistics (its
//! **weight**, the share of a busy CPU it wants), where it runs, and when it last moved.
//!
//! Each time a node's process list is read (every decay interval of that node), a
//! process's weight becomes `w·f + busy·(1 − f)`, with `busy` 1 when it is runnable (`R`)
//! and `f = d^(elapsed / decay interval)`: `d` is the node's slow decay factor, its fast
//! one for a `fastdecay` job, and a `nodecay` job keeps the weight it was first given
//! (HOWTO tables 8-3 and 8-7). A process seen for the first time starts at 1 when it is
//! runnable or a `cpujob`, else at 0.
//!
//! A process **counts** (toward its node's load, and as a candidate) once it is
//! [settled](Tracked::settled): a `cpujob` at once (its user says it is CPU-bound), any
//! other process from the second list that still shows it. One look at a process that
//! happens to be runnable says little: the agent serving someone's `openmosix ps`, an sshd
//! setting up a session, criu or an image stream during a move, or a restored process
//! listed in the instant before its agent records it as a guest, are all runnable for a
//! moment and gone (or renamed) a second later. Counting each of them as a whole busy job
//! made a node look one job busier than it was, so the next job went to the other node
//! and that one ended up with one job too many.
//!
//! A node's load for the balancer is `100 · Σ weights` of its processes. Unlike the
//! agent's own figure, which follows a move only as fast as its decay allows (with the
//! default 0.975 per second it takes a minute and a half to get 90 % of the way), the
//! weight travels with the process, so the balancer never acts on a load that is no more.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::rule::{ProcLoad, not_a_candidate};
use openmosix_hpc::model::{AdminState, NodeId, ProcInfo};

/// A process across moves: its home node and its pid there.
pub type Identity = (NodeId, i32);

/// The identity of a listed process.
pub fn identity(p: &ProcInfo) -> Identity {
    (p.home, if p.home_pid > 0 { p.home_pid } else { p.pid })
}

/// Whether a listed process counts toward its node's load: kernel threads and the agent
/// answering the request do not (the agent's own figure leaves them out too).
fn counts(p: &ProcInfo) -> bool {
    p.cantmove != "kernel thread" && p.cantmove != "the openMosix agent itself"
}

/// The decay factor per decay interval for `p` on a node with `admin`; `None` for a
/// `nodecay` job, whose statistics are not refreshed.
pub fn decay_factor(p: &ProcInfo, admin: &AdminState) -> Option<f64> {
    let run = p.run.as_ref();
    if run.is_some_and(|r| r.nodecay) {
        return None;
    }
    let d = if run.is_some_and(|r| r.fastdecay) {
        admin.fast_decay
    } else {
        admin.slow_decay
    };
    Some(f64::from(d.min(999)) / 1000.0)
}

/// One tracked process.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// The node it runs on, as far as the balancer knows.
    pub node: NodeId,
    /// How it was last listed (its pid is the one on `node`).
    pub info: ProcInfo,
    /// Its share of a busy CPU, 0..=1.
    pub weight: f64,
    /// When the weight was last refreshed.
    pub sampled: Instant,
    /// When it last moved (by the balancer, or by anyone as far as it saw).
    pub last_move: Option<Instant>,
    /// A move of it is under way.
    pub moving: bool,
    /// It counts toward its node's load and may be a candidate: a `cpujob`, or a process
    /// listed at least twice (or moved by the balancer).
    pub settled: bool,
}

/// Every process of the nodes that take part.
#[derive(Debug, Default)]
pub struct Stats {
    procs: HashMap<Identity, Tracked>,
}

impl Stats {
    /// An empty memory.
    pub fn new() -> Stats {
        Stats::default()
    }

    /// Folds in the process list of `node`, asked for at `asked` and answered at `now`.
    /// What moved after `asked` is left alone: the balancer knows better than the list.
    pub fn sample(
        &mut self,
        node: NodeId,
        procs: &[ProcInfo],
        admin: &AdminState,
        asked: Instant,
        now: Instant,
    ) {
        let newer = |t: &Tracked| t.moving || t.last_move.is_some_and(|m| m > asked);
        let interval = f64::from(admin.decay_interval.max(1));
        let mut seen = HashSet::new();
        for p in procs.iter().filter(|p| counts(p)) {
            let id = identity(p);
            seen.insert(id);
            let busy = if p.state == 'R' { 1.0 } else { 0.0 };
            match self.procs.get_mut(&id) {
                Some(t) if newer(t) => {}
                Some(t) => {
                    if (t.node != node || t.info.pid != p.pid) && p.nmigs > t.info.nmigs {
                        // Someone else moved it: a move is a move, hold-off included.
                        t.last_move = Some(now);
                    }
                    t.node = node;
                    t.settled = true;
                    if let Some(d) = decay_factor(p, admin) {
                        let f = d.powf(now.duration_since(t.sampled).as_secs_f64() / interval);
                        t.weight = t.weight * f + busy * (1.0 - f);
                    }
                    t.sampled = now;
                    t.info = p.clone();
                }
                None => {
                    let cpujob = p.run.as_ref().is_some_and(|r| r.cpujob);
                    let weight = if cpujob { 1.0 } else { busy };
                    self.procs.insert(
                        id,
                        Tracked {
                            node,
                            info: p.clone(),
                            weight,
                            sampled: now,
                            last_move: None,
                            moving: false,
                            settled: cpujob,
                        },
                    );
                }
            }
        }
        self.procs
            .retain(|id, t| t.node != node || seen.contains(id) || newer(t));
    }

    /// Forgets every process of `node` (it left the cluster, or stopped taking part).
    pub fn forget_node(&mut self, node: NodeId) {
        self.procs.retain(|_, t| t.node != node || t.moving);
    }

    /// The balancer's load of `node`: `100 · Σ weights` of its settled processes.
    pub fn load(&self, node: NodeId) -> f64 {
        100.0
            * self
                .procs
                .values()
                .filter(|t| t.node == node && t.settled)
                .map(|t| t.weight)
                .sum::<f64>()
    }

    /// One tracked process.
    pub fn get(&self, id: Identity) -> Option<&Tracked> {
        self.procs.get(&id)
    }

    /// The identity of the process listed as `pid` on `node`.
    pub fn find(&self, node: NodeId, pid: i32) -> Option<Identity> {
        self.procs
            .iter()
            .find(|(_, t)| t.node == node && t.info.pid == pid)
            .map(|(id, _)| *id)
    }

    /// The settled candidates as the rule sees them; `held` says why one may not move
    /// now (moved within `holdoff`, or a move of it is under way).
    pub fn candidates(&self, now: Instant, holdoff: Duration) -> Vec<ProcLoad> {
        let mut out: Vec<ProcLoad> = self
            .procs
            .values()
            .filter(|t| t.settled && not_a_candidate(&t.info).is_none())
            .map(|t| {
                let since = t.last_move.map(|m| now.saturating_duration_since(m));
                let held = if t.moving {
                    Some("a move is under way".to_owned())
                } else {
                    since.filter(|s| *s < holdoff).map(|s| {
                        format!(
                            "moved {:.0} s ago (hold-off {} s)",
                            s.as_secs_f64(),
                            holdoff.as_secs()
                        )
                    })
                };
                ProcLoad {
                    node: t.node,
                    pid: t.info.pid,
                    home: t.info.home,
                    weight: t.weight,
                    rss: t.info.rss,
                    mask: t.info.mask,
                    cpujob: t.info.run.as_ref().is_some_and(|r| r.cpujob),
                    nmigs: t.info.nmigs,
                    held,
                }
            })
            .collect();
        out.sort_by_key(|p| (p.node, p.pid));
        out
    }

    /// A move of `id` starts: its statistics stay as they are until it ends.
    pub fn start_move(&mut self, id: Identity) {
        if let Some(t) = self.procs.get_mut(&id) {
            t.moving = true;
        }
    }

    /// A move of `id` ended at `now`: to `Some((node, pid))`, or failed (`None`). Either
    /// way the hold-off starts, so a failing process is not retried at once.
    pub fn end_move(&mut self, id: Identity, to: Option<(NodeId, i32)>, now: Instant) {
        if let Some(t) = self.procs.get_mut(&id) {
            t.moving = false;
            t.last_move = Some(now);
            if let Some((node, pid)) = to {
                t.node = node;
                t.info.pid = pid;
                t.info.where_ = node;
                t.info.nmigs += 1;
                t.sampled = now;
                t.settled = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule::{NodeLoad, plan};
    use super::*;
    use openmosix_hpc::bytes::BytesOrText;
    use openmosix_hpc::model::{MigMask, RunOptions};

    fn proc_(pid: i32, state: char, run: Option<RunOptions>) -> ProcInfo {
        ProcInfo {
            pid,
            ppid: 1,
            uid: 0,
            state,
            nice: 0,
            utime: 0,
            cutime: 0,
            vsize: 0,
            rss: 1 << 20,
            nswap: 0,
            cnswap: 0,
            comm: BytesOrText::from("job"),
            cmdline: BytesOrText::from("job"),
            where_: 2,
            home: 2,
            home_pid: pid,
            nmigs: 0,
            lock: false,
            cantmove: String::new(),
            mask: MigMask::default(),
            candidate: run.is_some(),
            run,
            auto_moved: false,
        }
    }

    fn job() -> Option<RunOptions> {
        Some(RunOptions::default())
    }

    #[test]
    fn weights_follow_the_decay_settings() {
        let admin = AdminState::default();
        let t0 = Instant::now();
        let mut s = Stats::new();
        let sleeper = proc_(10, 'S', job());
        let cpu = proc_(
            11,
            'S',
            Some(RunOptions {
                cpujob: true,
                ..RunOptions::default()
            }),
        );
        let fast = proc_(
            12,
            'R',
            Some(RunOptions {
                fastdecay: true,
                ..RunOptions::default()
            }),
        );
        let frozen = proc_(
            13,
            'S',
            Some(RunOptions {
                nodecay: true,
                ..RunOptions::default()
            }),
        );
        let mut agent = proc_(14, 'R', None);
        agent.cantmove = "the openMosix agent itself".into();
        let list = vec![sleeper.clone(), cpu, fast, frozen, agent];
        s.sample(2, &list, &admin, t0, t0);
        // Seeds: runnable or cpujob 1, else 0; the agent does not count. Only the cpujob
        // counts at once; the runnable 12 counts from the next list on.
        assert!((s.load(2) - 100.0).abs() < 1e-9, "{}", s.load(2));
        // Ten intervals later everyone is runnable (and 12 sleeps): each weight moves
        // by 1 − d^10 of the way, with its own factor.
        let mut list: Vec<ProcInfo> = list
            .into_iter()
            .map(|p| ProcInfo { state: 'R', ..p })
            .collect();
        list[2].state = 'S';
        let t10 = t0 + Duration::from_secs(10);
        s.sample(2, &list, &admin, t10, t10);
        let w = |pid| s.get((2, pid)).unwrap().weight;
        assert!((w(10) - (1.0 - 0.975f64.powi(10))).abs() < 1e-9);
        assert!((w(11) - 1.0).abs() < 1e-9);
        assert!((w(12) - 0.926f64.powi(10)).abs() < 1e-9);
        assert!(w(13).abs() < 1e-9, "nodecay keeps its first weight");
        // A longer decay interval slows the same ten seconds down to two intervals.
        let mut slow = Stats::new();
        let admin5 = AdminState {
            decay_interval: 5,
            ..AdminState::default()
        };
        slow.sample(2, std::slice::from_ref(&sleeper), &admin5, t0, t0);
        let busy = ProcInfo {
            state: 'R',
            ..sleeper
        };
        slow.sample(2, &[busy], &admin5, t10, t10);
        let w = slow.get((2, 10)).unwrap().weight;
        assert!((w - (1.0 - 0.975f64.powi(2))).abs() < 1e-9);
    }

    #[test]
    fn moves_carry_the_weight_and_start_the_holdoff() {
        let admin = AdminState::default();
        let t0 = Instant::now();
        let holdoff = Duration::from_secs(30);
        let mut s = Stats::new();
        let a = proc_(10, 'R', job());
        let mut sys = proc_(11, 'R', None);
        sys.candidate = false;
        s.sample(2, &[a.clone(), sys.clone()], &admin, t0, t0);
        assert!(
            s.candidates(t0, holdoff).is_empty(),
            "listed once: not settled"
        );
        s.sample(2, &[a.clone(), sys.clone()], &admin, t0, t0);
        let c = s.candidates(t0, holdoff);
        assert_eq!(c.len(), 1, "only the job is a candidate: {c:?}");
        assert_eq!(c[0].held, None);
        assert_eq!(s.find(2, 10), Some((2, 10)));

        let asked = t0 + Duration::from_secs(1);
        s.start_move((2, 10));
        assert!(s.candidates(asked, holdoff)[0].held.is_some());
        // A list asked for during the move still shows it on node 2: ignored.
        let t2 = t0 + Duration::from_secs(2);
        s.sample(2, &[a.clone(), sys], &admin, asked, t2);
        s.end_move((2, 10), Some((3, 10)), t2);
        assert!((s.load(3) - 100.0).abs() < 1e-9);
        assert!((s.load(2) - 100.0).abs() < 1e-9, "the system process stays");
        // Node 3's list from before the move ended does not know it yet: kept.
        s.sample(3, &[], &admin, asked, t2);
        assert!((s.load(3) - 100.0).abs() < 1e-9);
        let held = &s.candidates(t2 + Duration::from_secs(29), holdoff)[0];
        assert_eq!(held.node, 3);
        assert!(
            held.held.as_deref().unwrap().contains("hold-off 30 s"),
            "{held:?}"
        );
        assert_eq!(s.candidates(t2 + holdoff, holdoff)[0].held, None);
        // Node 3 lists it: same process (same identity), weight carried.
        let t3 = t0 + Duration::from_secs(3);
        let there = ProcInfo {
            where_: 3,
            nmigs: 1,
            ..a
        };
        s.sample(3, &[there], &admin, t3, t3);
        assert!((s.get((2, 10)).unwrap().weight - 1.0).abs() < 1e-9);
        // Gone from node 3: forgotten.
        let t4 = t0 + Duration::from_secs(4);
        s.sample(3, &[], &admin, t4, t4);
        assert!(s.get((2, 10)).is_none());
    }

    /// A `cpujob` of home node 2 (pid `home_pid` there) listed on `node` as `pid`.
    fn cpujob(node: NodeId, pid: i32, home_pid: i32) -> ProcInfo {
        let run = RunOptions {
            cpujob: true,
            ..RunOptions::default()
        };
        let nmigs = u32::from(node != 2);
        ProcInfo {
            where_: node,
            home_pid,
            nmigs,
            ..proc_(pid, 'R', Some(run))
        }
    }

    /// A process of `node` that is no job: runnable the one time it is listed.
    fn passing(node: NodeId, pid: i32) -> ProcInfo {
        ProcInfo {
            where_: node,
            home: node,
            ..proc_(pid, 'R', None)
        }
    }

    /// Node 2 slow (speed 100) and four cpujobs of it, as in the testbed's slow-node test:
    /// two went to node 1, one to node 3, the last one is still on node 2.
    fn slow_node_with_one_job_left(extra_on_3: &[ProcInfo]) -> (Stats, Vec<NodeLoad>) {
        let admin = AdminState::default();
        let t0 = Instant::now();
        let mut s = Stats::new();
        s.sample(1, &[cpujob(1, 30, 10), cpujob(1, 31, 11)], &admin, t0, t0);
        s.sample(2, &[cpujob(2, 13, 13)], &admin, t0, t0);
        let mut on3 = vec![cpujob(3, 32, 12)];
        on3.extend_from_slice(extra_on_3);
        s.sample(3, &on3, &admin, t0, t0);
        let nodes = loads(&s);
        (s, nodes)
    }

    fn loads(s: &Stats) -> Vec<NodeLoad> {
        [(1, 10_000), (2, 100), (3, 10_000)]
            .into_iter()
            .map(|(id, speed)| NodeLoad {
                id,
                cpus: 2,
                speed,
                load: s.load(id),
                mem: 1 << 30,
                source: true,
                target: true,
                lstay: false,
            })
            .collect()
    }

    #[test]
    fn a_process_listed_once_does_not_count_so_the_last_job_goes_to_the_emptier_node() {
        let holdoff = Duration::from_secs(15);
        let (s, nodes) = slow_node_with_one_job_left(&[]);
        let moves = plan(&nodes, &s.candidates(Instant::now(), holdoff), 0.25);
        assert_eq!((moves[0].pid, moves[0].to), (13, 3), "{moves:?}");
        // The agent serving someone's `openmosix ps` on node 3 is runnable the one time
        // the balancer lists node 3: node 3 must not look as busy as node 1 (the tie
        // would send the last job to node 1, which ends with three and node 3 with one).
        let (s, nodes) = slow_node_with_one_job_left(&[passing(3, 50)]);
        assert!((s.load(3) - 100.0).abs() < 1e-9, "{}", s.load(3));
        let moves = plan(&nodes, &s.candidates(Instant::now(), holdoff), 0.25);
        assert_eq!((moves[0].pid, moves[0].to), (13, 3), "{moves:?}");
    }

    #[test]
    fn a_restored_process_is_counted_once_at_its_target() {
        let admin = AdminState::default();
        let t0 = Instant::now();
        let (mut s, _) = slow_node_with_one_job_left(&[]);
        s.start_move((2, 13));
        // Node 3 listed in the instant between the restore and its agent recording the
        // guest: the process shows up as one of node 3's own, pid 33.
        let asked = t0 + Duration::from_millis(500);
        let t1 = t0 + Duration::from_secs(1);
        s.sample(3, &[cpujob(3, 32, 12), passing(3, 33)], &admin, asked, t1);
        s.end_move((2, 13), Some((3, 33)), t1);
        assert!((s.load(3) - 200.0).abs() < 1e-9, "{}", s.load(3));
        assert!(s.load(2).abs() < 1e-9, "{}", s.load(2));
        // The next list shows it as the guest it is: still two jobs.
        let t2 = t0 + Duration::from_secs(2);
        s.sample(3, &[cpujob(3, 32, 12), cpujob(3, 33, 13)], &admin, t2, t2);
        assert!((s.load(3) - 200.0).abs() < 1e-9, "{}", s.load(3));
        // A process that stays and keeps busy counts from its second list on.
        s.sample(
            3,
            &[cpujob(3, 32, 12), cpujob(3, 33, 13), passing(3, 50)],
            &admin,
            t2,
            t2,
        );
        assert!((s.load(3) - 200.0).abs() < 1e-9, "{}", s.load(3));
        let t3 = t0 + Duration::from_secs(3);
        s.sample(
            3,
            &[cpujob(3, 32, 12), cpujob(3, 33, 13), passing(3, 50)],
            &admin,
            t3,
            t3,
        );
        assert!((s.load(3) - 300.0).abs() < 1e-9, "{}", s.load(3));
    }

    #[test]
    fn a_move_by_someone_else_starts_the_holdoff_too() {
        let admin = AdminState::default();
        let t0 = Instant::now();
        let mut s = Stats::new();
        let a = proc_(10, 'R', job());
        s.sample(2, std::slice::from_ref(&a), &admin, t0, t0);
        let t1 = t0 + Duration::from_secs(1);
        let moved = ProcInfo {
            where_: 4,
            nmigs: 1,
            ..a
        };
        s.sample(4, &[moved], &admin, t1, t1);
        let t = s.get((2, 10)).unwrap();
        assert_eq!((t.node, t.last_move), (4, Some(t1)));
        s.forget_node(4);
        assert!(s.get((2, 10)).is_none());
    }
}
