//! The balancer's loop: every second it reads which nodes take part (their admin
//! switches), reads the process list of each taking part whose decay interval is over,
//! folds it into the statistics, asks the [`rule`](super::rule) for moves and starts
//! them with the migration core, marked as automatic. Moves run in the background (one
//! per node at a time) while the loop goes on; on shutdown it starts no new move and
//! waits for those under way, so no process is left half-moved.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::rule::{Move, NodeLoad, efficiency, plan};
use super::stats::{Identity, Stats};
use crate::migrate::{MigrateOptions, Migrated, Target, migrate_in};
use crate::{ClientError, ClusterHandle, LinkState, NodeView};
use openmosix_hpc::model::{AdminState, NodeId, NodeStatus, ProcInfo};
use openmosix_hpc::protocol::Request;

/// How the balancer decides.
#[derive(Debug, Clone)]
pub struct BalanceConfig {
    /// A process that moved is not moved again within this time.
    pub holdoff: Duration,
    /// A move must take at least this share of the process's own pressure off the
    /// busier node of the pair (docs/balancing.md).
    pub min_gain: f64,
    /// Report the moves it would make and make none.
    pub dry_run: bool,
    /// Report every round's view of the nodes too.
    pub report_rounds: bool,
    /// How often the loop looks (each node's process list is read every decay interval
    /// of that node, at this granularity).
    pub tick: Duration,
    /// Processes at least this large (resident bytes) move post-copy: frozen only for
    /// their non-memory state (docs/migration.md "Post-copy" says what it risks).
    pub postcopy_above: Option<u64>,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            holdoff: Duration::from_secs(30),
            min_gain: 0.25,
            dry_run: false,
            report_rounds: false,
            tick: Duration::from_secs(1),
            postcopy_above: None,
        }
    }
}

/// One node in a round's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReport {
    /// The node.
    pub id: NodeId,
    /// The balancer's load (100 = one busy process).
    pub load: f64,
    /// Load per PIII-equivalent CPU.
    pub pressure: f64,
    /// Why it does not take part, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
}

/// What the balancer tells its caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Report {
    /// A move starts (or, in a dry run, would start).
    Moving {
        /// Milliseconds since the Unix epoch.
        time_ms: u64,
        /// The move and why.
        #[serde(flatten)]
        planned: Move,
        /// Its home node and pid there (its identity across moves).
        home: (NodeId, i32),
        /// Only planned (dry run).
        dry_run: bool,
    },
    /// A move ended: the process runs on `to` as `new_pid`.
    Moved {
        /// Milliseconds since the Unix epoch.
        time_ms: u64,
        /// Its pid on the source.
        pid: i32,
        /// Source node.
        from: NodeId,
        /// Target node.
        to: NodeId,
        /// Its pid on the target.
        new_pid: i32,
        /// Its home node and pid there.
        home: (NodeId, i32),
        /// How long the move took.
        ms: u64,
    },
    /// A move failed: the process runs on where it was.
    Failed {
        /// Milliseconds since the Unix epoch.
        time_ms: u64,
        /// Its pid on the source.
        pid: i32,
        /// Source node.
        from: NodeId,
        /// Target node.
        to: NodeId,
        /// Why.
        reason: String,
    },
    /// The nodes as the balancer saw them in one round.
    Round {
        /// Milliseconds since the Unix epoch.
        time_ms: u64,
        /// Every node of the cluster.
        nodes: Vec<NodeReport>,
        /// The efficiency of the nodes taking part, by the balancer's loads.
        efficiency: f64,
    },
}

/// What a balancer did, when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Moves made.
    pub moved: u32,
    /// Moves that failed.
    pub failed: u32,
}

/// The result of one background move.
struct Done {
    id: Identity,
    planned: Move,
    started: Instant,
    result: Result<Migrated, ClientError>,
}

/// What one node answered in a round.
struct Polled {
    id: NodeId,
    admin: Result<AdminState, ClientError>,
    procs: Option<(Instant, Result<Vec<ProcInfo>, ClientError>)>,
}

/// One balancer per cluster.
#[derive(Debug)]
pub struct Balancer {
    cluster: Arc<ClusterHandle>,
    config: BalanceConfig,
    stats: Stats,
    /// When each node's process list was last read.
    polled: HashMap<NodeId, Instant>,
    /// Nodes taking part, with their switches.
    admin: HashMap<NodeId, AdminState>,
    /// Nodes a move is under way from or to.
    busy: HashSet<NodeId>,
    moves: JoinSet<Done>,
    reports: Option<mpsc::UnboundedSender<Report>>,
    summary: Summary,
    last_dry: Vec<(i32, NodeId, NodeId)>,
    /// Up nodes whose agent still runs criu's checks, since when the balancer saw them so.
    checking: HashMap<NodeId, Instant>,
}

/// How long the balancer holds its moves for an up node whose criu checks still run
/// (an agent's first start on a node: well under a second on an idle node, longer on a
/// busy one, since they yield the CPU). Planning without it would fill the nodes it
/// knows, to be undone once it joins.
pub const CHECKS_WAIT: Duration = Duration::from_secs(30);

/// Why a node does not take part in balancing, if it does not: it must be up, able to
/// migrate with CRIU (an openMosix kernel balances on its own), and have `stay`,
/// `quiet` and `setpe -off` all off.
pub fn out_of_play(view: &NodeView, admin: Option<&AdminState>) -> Option<String> {
    match view.state {
        LinkState::Connecting => return Some("connecting".into()),
        LinkState::Down => return Some("down".into()),
        LinkState::Up if view.info.is_none() => return Some("no figures yet".into()),
        LinkState::Up => {}
    }
    let Some(hello) = view.hello.as_ref() else {
        return Some("no hello yet".into());
    };
    if hello.backend == "kernel" {
        return Some("the openMosix kernel balances it".into());
    }
    if !hello.migration.available {
        return Some(format!("cannot migrate: {}", hello.migration.detail));
    }
    let Some(a) = admin else {
        return Some("switches not read yet".into());
    };
    if a.off {
        Some("out of the pool (setpe -off)".into())
    } else if a.stay {
        Some("stay is on (mosctl nostay lets it take part)".into())
    } else if a.quiet {
        Some("quiet: no load-balancing information".into())
    } else {
        None
    }
}

impl Balancer {
    /// A balancer over `cluster`; `reports` receives what it does.
    pub fn new(
        cluster: Arc<ClusterHandle>,
        config: BalanceConfig,
        reports: Option<mpsc::UnboundedSender<Report>>,
    ) -> Balancer {
        Balancer {
            cluster,
            config,
            stats: Stats::new(),
            polled: HashMap::new(),
            admin: HashMap::new(),
            busy: HashSet::new(),
            moves: JoinSet::new(),
            reports,
            summary: Summary::default(),
            last_dry: Vec::new(),
            checking: HashMap::new(),
        }
    }

    fn report(&self, r: Report) {
        if let Some(tx) = &self.reports {
            let _ = tx.send(r);
        }
    }

    /// Balances until `shutdown` resolves, then waits for the moves under way.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Summary {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(done) = self.moves.join_next(), if !self.moves.is_empty() => {
                    if let Ok(done) = done {
                        self.finish(done);
                    }
                }
                _ = tick.tick() => self.round().await,
            }
        }
        if !self.moves.is_empty() {
            tracing::info!("waiting for {} move(s) under way", self.moves.len());
        }
        while let Some(done) = self.moves.join_next().await {
            if let Ok(done) = done {
                self.finish(done);
            }
        }
        self.summary
    }

    /// One round: read, decide, start moves.
    pub async fn round(&mut self) {
        let views = self.cluster.nodes();
        let polled = self.poll(&views).await;
        for p in polled {
            self.absorb(p);
        }
        let now = Instant::now();
        let (nodes, reports) = self.loads(&views);
        if self.config.report_rounds {
            let eff = efficiency(&nodes.iter().map(|n| (n.load, n.cpus)).collect::<Vec<_>>());
            self.report(Report::Round {
                time_ms: openmosix_hpc::clock::unix_ms(),
                nodes: reports,
                efficiency: eff,
            });
        }
        if let Some(node) = self.still_checking(&views, now) {
            tracing::debug!("no moves while node {node}'s criu checks run");
            return;
        }
        let ids: HashSet<NodeId> = nodes.iter().map(|n| n.id).collect();
        let procs: Vec<_> = self
            .stats
            .candidates(now, self.config.holdoff)
            .into_iter()
            .filter(|p| ids.contains(&p.node))
            .collect();
        let planned = plan(&nodes, &procs, self.config.min_gain);
        if self.config.dry_run {
            self.report_dry_run(&planned);
            return;
        }
        for m in planned {
            self.start(m);
        }
    }

    /// An up node whose criu checks still run, seen so for less than [`CHECKS_WAIT`]:
    /// the round makes no moves until it is known whether processes can move there.
    fn still_checking(&mut self, views: &[NodeView], now: Instant) -> Option<NodeId> {
        let checking: HashSet<NodeId> = views
            .iter()
            .filter(|v| v.state == LinkState::Up)
            .filter(|v| v.hello.as_ref().is_some_and(|h| h.checking))
            .map(|v| v.id)
            .collect();
        self.checking.retain(|id, _| checking.contains(id));
        for &id in &checking {
            self.checking.entry(id).or_insert(now);
        }
        self.checking
            .iter()
            .filter(|(_, since)| now.duration_since(**since) < CHECKS_WAIT)
            .map(|(id, _)| *id)
            .min()
    }

    /// Keeps what one node answered: its switches, and its process list in the
    /// statistics.
    fn absorb(&mut self, p: Polled) {
        match p.admin {
            Ok(a) => {
                self.admin.insert(p.id, a);
            }
            Err(e) => {
                tracing::debug!(node = p.id, "admin_get: {e}");
                self.admin.remove(&p.id);
            }
        }
        match p.procs {
            Some((asked, Ok(list))) => {
                if let Some(a) = self.admin.get(&p.id) {
                    self.stats.sample(p.id, &list, a, asked, Instant::now());
                    self.polled.insert(p.id, asked);
                }
            }
            Some((_, Err(e))) => tracing::debug!(node = p.id, "procs: {e}"),
            None => {}
        }
    }

    /// The nodes taking part, as the rule sees them, and every node as the round's
    /// report shows it. A node out of play is forgotten by the statistics.
    fn loads(&mut self, views: &[NodeView]) -> (Vec<NodeLoad>, Vec<NodeReport>) {
        let mut nodes: Vec<NodeLoad> = Vec::new();
        let mut reports = Vec::new();
        for v in views {
            let out = out_of_play(v, self.admin.get(&v.id));
            if out.is_some() {
                self.stats.forget_node(v.id);
                self.polled.remove(&v.id);
            }
            let (Some(info), Some(admin)) = (v.info.as_ref(), self.admin.get(&v.id)) else {
                reports.push(NodeReport {
                    id: v.id,
                    load: 0.0,
                    pressure: 0.0,
                    out,
                });
                continue;
            };
            let n = NodeLoad {
                id: v.id,
                cpus: info.cpus,
                speed: info.speed,
                load: self.stats.load(v.id),
                mem: info.mem,
                source: !self.busy.contains(&v.id),
                target: !self.busy.contains(&v.id) && info.status == NodeStatus::Up,
                lstay: admin.lstay,
            };
            reports.push(NodeReport {
                id: v.id,
                load: n.load,
                pressure: n.pressure(),
                out: out.clone(),
            });
            // A node takes part once its processes have been read.
            if out.is_none() && self.polled.contains_key(&v.id) {
                nodes.push(n);
            }
        }
        (nodes, reports)
    }

    /// A dry run reports the moves it would make, once for each new plan.
    fn report_dry_run(&mut self, planned: &[Move]) {
        let key: Vec<_> = planned.iter().map(|m| (m.pid, m.from, m.to)).collect();
        if key == self.last_dry {
            return;
        }
        for m in planned {
            let home = self.stats.find(m.from, m.pid).unwrap_or((m.from, m.pid));
            self.report(Report::Moving {
                time_ms: openmosix_hpc::clock::unix_ms(),
                planned: m.clone(),
                home,
                dry_run: true,
            });
        }
        self.last_dry = key;
    }

    /// Reads every up node's switches, and the process list of those taking part whose
    /// decay interval is over, all nodes at once.
    async fn poll(&self, views: &[NodeView]) -> Vec<Polled> {
        let mut asks = JoinSet::new();
        let now = Instant::now();
        for v in views.iter().filter(|v| v.state == LinkState::Up) {
            let cluster = Arc::clone(&self.cluster);
            let id = v.id;
            let view = v.clone();
            let interval = self.admin.get(&id).map_or(1, |a| a.decay_interval.max(1));
            // Due a little early, so that a tick's jitter does not skip a whole interval.
            let due = self.polled.get(&id).is_none_or(|&t| {
                now.duration_since(t) + Duration::from_millis(200)
                    >= Duration::from_secs(u64::from(interval))
            });
            asks.spawn(async move {
                let admin = cluster.request::<AdminState>(id, Request::AdminGet).await;
                let procs = match &admin {
                    Ok(a) if due && out_of_play(&view, Some(a)).is_none() => {
                        let asked = Instant::now();
                        Some((asked, cluster.request(id, Request::Procs).await))
                    }
                    _ => None,
                };
                Polled { id, admin, procs }
            });
        }
        let mut out = Vec::new();
        while let Some(r) = asks.join_next().await {
            if let Ok(p) = r {
                out.push(p);
            }
        }
        out
    }

    /// Starts one move in the background.
    fn start(&mut self, m: Move) {
        let Some(id) = self.stats.find(m.from, m.pid) else {
            return;
        };
        tracing::info!(
            pid = m.pid,
            from = m.from,
            to = m.to,
            gain = m.gain,
            "moving a process automatically"
        );
        self.report(Report::Moving {
            time_ms: openmosix_hpc::clock::unix_ms(),
            planned: m.clone(),
            home: id,
            dry_run: false,
        });
        self.stats.start_move(id);
        self.busy.insert(m.from);
        self.busy.insert(m.to);
        let cluster = Arc::clone(&self.cluster);
        let postcopy = self.config.postcopy_above.is_some_and(|t| m.rss >= t);
        self.moves.spawn(async move {
            let started = Instant::now();
            let options = MigrateOptions {
                auto: true,
                postcopy,
                ..MigrateOptions::default()
            };
            let result =
                migrate_in(&cluster, m.from, m.pid, Target::Node(m.to), options, None).await;
            Done {
                id,
                planned: m,
                started,
                result,
            }
        });
    }

    /// A background move ended.
    fn finish(&mut self, done: Done) {
        let m = &done.planned;
        self.busy.remove(&m.from);
        self.busy.remove(&m.to);
        let now = Instant::now();
        let ms = u64::try_from(done.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match done.result {
            Ok(moved) => {
                self.summary.moved += 1;
                self.stats
                    .end_move(done.id, Some((moved.to, moved.new_pid)), now);
                tracing::info!(pid = m.pid, from = m.from, to = m.to, ms, "moved");
                self.report(Report::Moved {
                    time_ms: openmosix_hpc::clock::unix_ms(),
                    pid: m.pid,
                    from: m.from,
                    to: m.to,
                    new_pid: moved.new_pid,
                    home: done.id,
                    ms,
                });
            }
            Err(e) => {
                self.summary.failed += 1;
                self.stats.end_move(done.id, None, now);
                tracing::warn!(pid = m.pid, from = m.from, to = m.to, "move failed: {e}");
                self.report(Report::Failed {
                    time_ms: openmosix_hpc::clock::unix_ms(),
                    pid: m.pid,
                    from: m.from,
                    to: m.to,
                    reason: e.to_string(),
                });
            }
        }
    }
}
