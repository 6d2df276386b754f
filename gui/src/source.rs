//! Where a window's data comes from, and where its actions go.
//!
//! The UI thread never waits on I/O: [`LiveCluster`] owns a tokio runtime with the
//! [`ClusterHandle`]; a window reads snapshots (a lock and a clone, no I/O) and hands
//! [`Action`]s over, which run on the runtime and come back later as [`Outcome`]s, each
//! with the [`Ticket`] its action was given. Every change marks the window dirty, and the
//! window is repainted a few times a second at most, however many nodes report
//! ([`crate::repaint`]).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use openmosix_client::migrate::{
    MigrateOptions, Migrated, Progress, Target, bring_in, expel_in, migrate_in,
};
use openmosix_client::{ClientOptions, ClusterHandle, NodeView};
use openmosix_hpc::bytes::BytesOrText;
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::{AdminChange, AdminState, NodeId, ProcInfo, RunOptions, Signal};
use openmosix_hpc::protocol::{Request, Started};

use crate::repaint::{Dirty, ONE_FRAME, REPAINT_EVERY, spawn_waker};
use crate::wake::Wake;

/// Identifies an action so that its outcome can be matched to it.
pub type Ticket = u64;

/// Something a window asks of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Read a node's admin switches (to preselect a dialog).
    ReadAdmin {
        /// The node.
        node: NodeId,
    },
    /// Apply admin changes in order, then optionally expel guests / bring processes home.
    Apply {
        /// The node.
        node: NodeId,
        /// Changes to apply.
        changes: Vec<AdminChange>,
        /// Send guests home afterwards.
        expel: bool,
        /// Bring migrated processes home afterwards.
        bring: bool,
    },
    /// Start a program on a node (the agent's `run`).
    Run {
        /// The node.
        node: NodeId,
        /// Program and arguments.
        argv: Vec<BytesOrText>,
        /// mosrun options.
        options: RunOptions,
    },
    /// Read a node's process list.
    Procs {
        /// The node.
        node: NodeId,
    },
    /// Send a signal to processes of a node (one, or a whole tree).
    Signal {
        /// The node.
        node: NodeId,
        /// The processes.
        pids: Vec<i32>,
        /// The signal.
        signal: Signal,
    },
    /// Set a process's nice value.
    Renice {
        /// The node.
        node: NodeId,
        /// The process.
        pid: i32,
        /// -20..=19.
        nice: i32,
    },
    /// Move a process (CRIU); progress arrives as [`Outcome::Progress`].
    Migrate {
        /// The node it runs on.
        node: NodeId,
        /// Its pid there.
        pid: i32,
        /// Where to.
        target: Target,
        /// Post-copy (docs/migration.md).
        postcopy: bool,
    },
}

impl Action {
    /// The node the action goes to.
    pub fn node(&self) -> NodeId {
        match self {
            Action::ReadAdmin { node }
            | Action::Apply { node, .. }
            | Action::Run { node, .. }
            | Action::Procs { node }
            | Action::Signal { node, .. }
            | Action::Renice { node, .. }
            | Action::Migrate { node, .. } => *node,
        }
    }
}

/// What came of an action.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The admin switches, after `ReadAdmin` or `Apply`.
    Admin {
        /// The node.
        node: NodeId,
        /// The state, or the error in words.
        result: Result<AdminState, String>,
    },
    /// A started job.
    Started {
        /// The node.
        node: NodeId,
        /// The pid and node, or the error in words.
        result: Result<Started, String>,
    },
    /// A node's process list.
    Procs {
        /// The node.
        node: NodeId,
        /// The processes, or the error in words.
        result: Result<Vec<ProcInfo>, String>,
    },
    /// A signal or renice was applied (a sentence saying what), or why not.
    Done {
        /// The node.
        node: NodeId,
        /// What happened.
        result: Result<String, String>,
    },
    /// A phase of a running migration (more outcomes follow for the same ticket).
    Progress {
        /// The phase.
        progress: Progress,
    },
    /// The end of a migration.
    Migrated {
        /// Where it went, or why it stayed.
        result: Result<Migrated, String>,
    },
}

/// The data source and action sink of a window.
pub trait ClusterSource {
    /// Every node's snapshot, ordered by id.
    fn nodes(&self) -> Vec<NodeView>;
    /// Starts an action; its outcome arrives later through [`outcomes`](Self::outcomes).
    fn act(&self, action: Action) -> Ticket;
    /// Outcomes that arrived since the last call.
    fn outcomes(&self) -> Vec<(Ticket, Outcome)>;
    /// Lets the source wake the UI when something changes.
    fn set_repaint(&self, ctx: &egui::Context);
    /// A standing problem of the source that the user should see (discovery that cannot
    /// listen), if any.
    fn notice(&self) -> Option<String> {
        None
    }
    /// The gateway node a node is reached through (`via` in the cluster file,
    /// docs/fan-out.md), if any.
    fn via(&self, _node: openmosix_hpc::model::NodeId) -> Option<openmosix_hpc::model::NodeId> {
        None
    }
}

type Inbox = Arc<Mutex<Vec<(Ticket, Outcome)>>>;

/// Runs a migration, passing each phase to `report` as it happens.
async fn run_migration(
    handle: &ClusterHandle,
    node: NodeId,
    pid: i32,
    target: Target,
    postcopy: bool,
    report: impl Fn(Outcome) + Send + Sync + 'static,
) -> Outcome {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let forward = tokio::spawn(async move {
        while let Some(progress) = rx.recv().await {
            report(Outcome::Progress { progress });
        }
    });
    let result = migrate_in(
        handle,
        node,
        pid,
        target,
        MigrateOptions {
            postcopy,
            ..MigrateOptions::default()
        },
        Some(&tx),
    )
    .await;
    drop(tx);
    let _ = forward.await;
    Outcome::Migrated {
        result: result.map_err(|e| format!("process {pid} stays on node {node}: {e}")),
    }
}

/// Live agents: a background runtime keeps every node connected.
#[derive(Debug)]
pub struct LiveCluster {
    runtime: tokio::runtime::Runtime,
    handle: Arc<ClusterHandle>,
    inbox: Inbox,
    next: AtomicU64,
    repaint: Arc<Mutex<Option<egui::Context>>>,
    dirty: Dirty,
    /// Which changes wake the window (all when `None`).
    wake: WakeFilter,
    cluster: Cluster,
}

type WakeFilter = Arc<Mutex<Option<Arc<dyn Wake>>>>;

/// How often a window's [`Wake`] filter looks at the nodes at most.
const LOOK_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Whether `filter` lets a change wake the window (`asks`: what the filter is asked).
fn wakes(filter: &WakeFilter, asks: impl FnOnce(&dyn Wake) -> bool) -> bool {
    let filter = lock(filter).clone();
    filter.is_none_or(|f| asks(f.as_ref()))
}

impl LiveCluster {
    /// Connects to `cluster` in the background and returns at once.
    pub fn start(cluster: Cluster, options: &ClientOptions) -> std::io::Result<LiveCluster> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("openmosix-io")
            .enable_all()
            .build()?;
        let handle =
            Arc::new(runtime.block_on(async { ClusterHandle::connect(&cluster, options) }));
        let repaint: Arc<Mutex<Option<egui::Context>>> = Arc::default();
        let dirty = {
            let repaint = Arc::clone(&repaint);
            spawn_waker(runtime.handle(), REPAINT_EVERY, move || {
                if let Some(ctx) = lock(&repaint).as_ref() {
                    ctx.request_repaint_after(ONE_FRAME);
                }
            })
        };
        let wake: WakeFilter = Arc::default();
        {
            // Marks the window dirty for the nodes' changes it draws.
            let (handle, wake, dirty) = (Arc::clone(&handle), Arc::clone(&wake), dirty.clone());
            let mut changes = handle.changes();
            runtime.spawn(async move {
                while changes.changed().await.is_ok() {
                    if lock(&wake).is_some() {
                        // The filter reads a snapshot of every node, and 250 nodes report
                        // 250 times a second: one look for the reports of a short spell.
                        tokio::time::sleep(LOOK_EVERY).await;
                        changes.borrow_and_update();
                    }
                    if wakes(&wake, |w| w.nodes(&handle.nodes())) {
                        dirty.mark();
                    }
                }
            });
        }
        Ok(LiveCluster {
            runtime,
            handle,
            inbox: Arc::default(),
            next: AtomicU64::new(1),
            repaint,
            dirty,
            wake,
            cluster,
        })
    }

    /// From now on only the changes `wake` picks wake the window (the others are shown
    /// at its next frame).
    pub fn wake_only_for(&self, wake: impl Wake + 'static) {
        *lock(&self.wake) = Some(Arc::new(wake));
    }

    /// The cluster this source watches.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `action` to its outcome; a migration passes each phase to `report` on the way.
async fn perform(
    handle: &ClusterHandle,
    action: Action,
    report: impl Fn(Outcome) + Send + Sync + 'static,
) -> Outcome {
    match action {
        Action::ReadAdmin { node } => Outcome::Admin {
            node,
            result: words(handle.request(node, Request::AdminGet).await),
        },
        Action::Apply {
            node,
            changes,
            expel,
            bring,
        } => Outcome::Admin {
            node,
            result: words(apply(handle, node, changes, expel, bring).await),
        },
        Action::Run {
            node,
            argv,
            options,
        } => Outcome::Started {
            node,
            result: words(handle.request(node, Request::Run { argv, options }).await),
        },
        // From the node's watched list (deltas from the agent, kept by the client).
        Action::Procs { node } => Outcome::Procs {
            node,
            result: words(handle.procs(node).await),
        },
        Action::Signal { node, pids, signal } => Outcome::Done {
            node,
            result: openmosix_client::actions::signal(handle, node, &pids, signal).await,
        },
        Action::Renice { node, pid, nice } => Outcome::Done {
            node,
            result: words(openmosix_client::actions::renice(handle, node, pid, nice).await),
        },
        Action::Migrate {
            node,
            pid,
            target,
            postcopy,
        } => run_migration(handle, node, pid, target, postcopy, report).await,
    }
}

/// A client result with its error in words, as outcomes carry it.
fn words<T>(result: Result<T, openmosix_client::ClientError>) -> Result<T, String> {
    result.map_err(|e| e.to_string())
}

/// Applies admin `changes` in order, then sends guests home (`expel`) and brings
/// emigrants back (`bring`); the switches as they are afterwards.
async fn apply(
    handle: &ClusterHandle,
    node: NodeId,
    changes: Vec<AdminChange>,
    expel: bool,
    bring: bool,
) -> Result<AdminState, openmosix_client::ClientError> {
    for change in changes {
        handle
            .request::<AdminState>(node, Request::AdminSet { change })
            .await?;
    }
    // Guests go home and emigrants come back by migration (or by the
    // kernel itself on an openMosix node).
    let mut stayed = Vec::new();
    if expel {
        stayed.extend(expel_in(handle, node).await?.1);
    }
    if bring {
        stayed.extend(bring_in(handle, node).await?.1);
    }
    if !stayed.is_empty() {
        return Err(openmosix_client::ClientError::Protocol(format!(
            "applied, but {} process(es) did not move: {}",
            stayed.len(),
            stayed.join("; ")
        )));
    }
    handle.request::<AdminState>(node, Request::AdminGet).await
}

impl ClusterSource for LiveCluster {
    fn nodes(&self) -> Vec<NodeView> {
        self.handle.nodes()
    }

    fn via(&self, node: NodeId) -> Option<NodeId> {
        self.cluster
            .node(node)
            .and_then(openmosix_hpc::map::gateway_of)
    }

    fn act(&self, action: Action) -> Ticket {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::clone(&self.handle);
        let inbox = Arc::clone(&self.inbox);
        let dirty = self.dirty.clone();
        let wake = Arc::clone(&self.wake);
        self.runtime.spawn(async move {
            let deliver = {
                let inbox = Arc::clone(&inbox);
                move |outcome: Outcome| {
                    let new = wakes(&wake, |w| w.outcome(&outcome));
                    lock(&inbox).push((ticket, outcome));
                    if new {
                        dirty.mark();
                    }
                }
            };
            let outcome = perform(&handle, action, deliver.clone()).await;
            deliver(outcome);
        });
        ticket
    }

    fn outcomes(&self) -> Vec<(Ticket, Outcome)> {
        std::mem::take(&mut *lock(&self.inbox))
    }

    fn set_repaint(&self, ctx: &egui::Context) {
        *lock(&self.repaint) = Some(ctx.clone());
    }

    fn notice(&self) -> Option<String> {
        let discovery = self.handle.discovery().and_then(|status| {
            let error = status.error?;
            let on = status
                .interface
                .unwrap_or_else(|| "the default interface".to_owned());
            Some(format!("discovery on {on}: {error} (retrying)"))
        });
        // Moves waiting for a decision (docs/migration.md): where, why, what to do.
        let waiting = self.handle.unsettled();
        let handoffs = waiting.first().map(|u| {
            let more = match waiting.len() {
                1 => String::new(),
                n => format!(" (and {} more: `openmosix handoffs` lists them)", n - 1),
            };
            format!("node {}: {}{more}", u.node, u.why)
        });
        match (discovery, handoffs) {
            (Some(d), Some(h)) => Some(format!("{d} · {h}")),
            (d, h) => d.or(h),
        }
    }
}

/// Fixed snapshots, for benchmarks and layout tests; actions are recorded, not run.
#[derive(Debug, Default)]
pub struct StaticSource {
    /// The nodes shown.
    pub nodes: Vec<NodeView>,
    /// Actions asked for, in order.
    pub actions: Mutex<Vec<Action>>,
}

impl ClusterSource for StaticSource {
    fn nodes(&self) -> Vec<NodeView> {
        self.nodes.clone()
    }

    fn act(&self, action: Action) -> Ticket {
        let mut a = lock(&self.actions);
        a.push(action);
        a.len() as Ticket
    }

    fn outcomes(&self) -> Vec<(Ticket, Outcome)> {
        Vec::new()
    }

    fn set_repaint(&self, _ctx: &egui::Context) {}
}
