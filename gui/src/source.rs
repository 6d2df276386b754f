//! Where a window's data comes from, and where its actions go.
//!
//! The UI thread never waits on I/O: [`LiveCluster`] owns a tokio runtime with the
//! [`ClusterHandle`]; a window reads snapshots (a lock and a clone, no I/O) and hands
//! [`Action`]s over, which run on the runtime and come back later as [`Outcome`]s, each
//! with the [`Ticket`] its action was given. Every change asks egui for a repaint.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use openmosix_agent::bytes::BytesOrText;
use openmosix_agent::client::{ClientOptions, ClusterHandle, NodeView};
use openmosix_agent::map::Cluster;
use openmosix_agent::model::{AdminChange, AdminState, NodeId, RunOptions};
use openmosix_agent::protocol::{Request, Started};

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
}

impl Action {
    /// The node the action goes to.
    pub fn node(&self) -> NodeId {
        match self {
            Action::ReadAdmin { node } | Action::Apply { node, .. } | Action::Run { node, .. } => {
                *node
            }
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
}

type Inbox = Arc<Mutex<Vec<(Ticket, Outcome)>>>;

/// Live agents: a background runtime keeps every node connected.
#[derive(Debug)]
pub struct LiveCluster {
    runtime: tokio::runtime::Runtime,
    handle: Arc<ClusterHandle>,
    inbox: Inbox,
    next: AtomicU64,
    repaint: Arc<Mutex<Option<egui::Context>>>,
    cluster: Cluster,
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
        {
            let mut changes = handle.changes();
            let repaint = Arc::clone(&repaint);
            runtime.spawn(async move {
                while changes.changed().await.is_ok() {
                    if let Some(ctx) = lock(&repaint).as_ref() {
                        ctx.request_repaint();
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
            cluster,
        })
    }

    /// The cluster this source watches.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn perform(handle: &ClusterHandle, action: Action) -> Outcome {
    match action {
        Action::ReadAdmin { node } => Outcome::Admin {
            node,
            result: handle
                .request::<AdminState>(node, Request::AdminGet)
                .await
                .map_err(|e| e.to_string()),
        },
        Action::Apply {
            node,
            changes,
            expel,
            bring,
        } => {
            let result = async {
                for change in changes {
                    handle
                        .request::<AdminState>(node, Request::AdminSet { change })
                        .await?;
                }
                if expel {
                    handle.request::<u32>(node, Request::Expel).await?;
                }
                if bring {
                    handle.request::<u32>(node, Request::Bring).await?;
                }
                handle.request::<AdminState>(node, Request::AdminGet).await
            }
            .await;
            Outcome::Admin {
                node,
                result: result.map_err(|e| e.to_string()),
            }
        }
        Action::Run {
            node,
            argv,
            options,
        } => Outcome::Started {
            node,
            result: handle
                .request::<Started>(node, Request::Run { argv, options })
                .await
                .map_err(|e| e.to_string()),
        },
    }
}

impl ClusterSource for LiveCluster {
    fn nodes(&self) -> Vec<NodeView> {
        self.handle.nodes()
    }

    fn act(&self, action: Action) -> Ticket {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let handle = Arc::clone(&self.handle);
        let inbox = Arc::clone(&self.inbox);
        let repaint = Arc::clone(&self.repaint);
        self.runtime.spawn(async move {
            let outcome = perform(&handle, action).await;
            lock(&inbox).push((ticket, outcome));
            if let Some(ctx) = lock(&repaint).as_ref() {
                ctx.request_repaint();
            }
        });
        ticket
    }

    fn outcomes(&self) -> Vec<(Ticket, Outcome)> {
        std::mem::take(&mut *lock(&self.inbox))
    }

    fn set_repaint(&self, ctx: &egui::Context) {
        *lock(&self.repaint) = Some(ctx.clone());
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
