//! The soak's counting jobs: where each runs, and the checks of the one-copy promise.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use openmosix_client::{ClientOptions, ClusterHandle};
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::ProcInfo;
use openmosix_hpc::protocol::Request;
use openmosix_testbed::Testbed;
use openmosix_testbed::copies::Counter;

/// What the soak last saw of one job.
#[derive(Debug, Clone)]
struct Seen {
    count: u64,
    grew: Instant,
    node: Option<u32>,
}

/// The jobs, and the soak's own client of the cluster (a process list of every node a
/// second, as a window would read them).
pub struct Jobs {
    jobs: Vec<Counter>,
    rt: tokio::runtime::Runtime,
    handle: ClusterHandle,
    seen: RefCell<Vec<Seen>>,
    moves: RefCell<u32>,
}

impl Jobs {
    /// Starts `n` jobs spread over the nodes; the first three are busy balancer
    /// candidates, the rest count quietly.
    pub fn start(bed: &Testbed, n: usize) -> Jobs {
        let jobs: Vec<Counter> = (0..n)
            .map(|i| {
                let node = u32::try_from(i).unwrap_or(0) % bed.nodes + 1;
                let name = format!("soak{i}");
                if i < 3 {
                    Counter::start_busy(bed, node, &name)
                } else {
                    Counter::start(bed, node, &name)
                }
            })
            .collect();
        let seen = (0..n)
            .map(|i| Seen {
                count: 0,
                grew: Instant::now(),
                node: Some(u32::try_from(i).unwrap_or(0) % bed.nodes + 1),
            })
            .collect();
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        let cluster = Cluster::from_file(&bed.cluster_file).expect("cluster file");
        let options = ClientOptions::for_cluster(&cluster);
        let handle = rt.block_on(async { ClusterHandle::connect(&cluster, &options) });
        Jobs {
            jobs,
            rt,
            handle,
            seen: RefCell::new(seen),
            moves: RefCell::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Moves seen (a job found on another node than before).
    pub fn moves(&self) -> u32 {
        *self.moves.borrow()
    }

    /// Job `i % len`: its pid and node as last seen.
    pub fn pick(&self, i: u64) -> (i64, u32) {
        let k = usize::try_from(i).unwrap_or(0) % self.jobs.len();
        let node = self.seen.borrow()[k].node.unwrap_or(1);
        let pid = self.jobs[k].pid;
        (pid, node)
    }

    /// Every process of every node that answers: (node, pid, state, cmdline).
    fn processes(&self) -> Vec<(u32, i64, String, String)> {
        self.rt.block_on(async {
            let mut all = Vec::new();
            for view in self.handle.nodes() {
                let Ok(list) = self
                    .handle
                    .request::<Vec<ProcInfo>>(view.id, Request::Procs)
                    .await
                else {
                    continue;
                };
                all.extend(list.into_iter().map(|p| {
                    (
                        view.id,
                        i64::from(p.pid),
                        p.state.to_string(),
                        p.cmdline.lossy(),
                    )
                }));
            }
            all
        })
    }

    /// Settles handoffs that wait, as any client does every few seconds.
    fn settle(&self) {
        let _ = self.rt.block_on(self.handle.settle_now());
    }

    /// One check: every log one copy, none standing still longer than `limit`; notes
    /// where each job runs.
    pub fn check(&self, limit: Duration) -> Vec<String> {
        let procs = self.processes();
        let mut bad = Vec::new();
        let mut seen = self.seen.borrow_mut();
        for (job, s) in self.jobs.iter().zip(seen.iter_mut()) {
            match job.one_copy() {
                Err(e) => bad.push(e),
                Ok(now) if now > s.count => {
                    s.count = now;
                    s.grew = Instant::now();
                }
                Ok(_) if s.grew.elapsed() > limit => bad.push(format!(
                    "{} stood still for {:?} at {} (stopped or lost)",
                    job.name,
                    s.grew.elapsed(),
                    s.count
                )),
                Ok(_) => {}
            }
            let running: Vec<u32> = procs
                .iter()
                .filter(|(_, _, st, c)| job.is_mine(c) && !matches!(st.as_str(), "T" | "t" | "Z"))
                .map(|(n, ..)| *n)
                .collect();
            if let [node] = running[..] {
                if s.node.is_some_and(|n| n != node) {
                    *self.moves.borrow_mut() += 1;
                }
                s.node = Some(node);
            }
        }
        bad
    }

    /// After the faults stopped: within 20 s (a client settling on the way), every job
    /// runs as exactly one copy and none is stopped anywhere.
    pub fn settle_and_check(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            self.settle();
            let procs = self.processes();
            let mut bad = Vec::new();
            for job in &self.jobs {
                let copies: Vec<&(u32, i64, String, String)> = procs
                    .iter()
                    .filter(|p| job.is_mine(&p.3) && p.2 != "Z")
                    .collect();
                let running = copies
                    .iter()
                    .filter(|p| !matches!(p.2.as_str(), "T" | "t"))
                    .count();
                if running != 1 || copies.len() != 1 {
                    bad.push(format!(
                        "{}: {} copies, {running} running: {copies:?}",
                        job.name,
                        copies.len()
                    ));
                }
                if let Err(e) = job.one_copy() {
                    bad.push(e);
                }
            }
            if bad.is_empty() || Instant::now() > deadline {
                return bad;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Kills every copy of every job.
    pub fn stop(&self, bed: &Testbed) {
        let procs = self.processes();
        for job in &self.jobs {
            for (node, pid, ..) in procs.iter().filter(|p| job.is_mine(&p.3)) {
                bed.kill(*node, *pid);
            }
        }
    }
}
