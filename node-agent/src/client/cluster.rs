//! A cluster of nodes, each kept connected by its own supervisor task.
//!
//! The supervisor opens the node's channel, then polls `node` every second (the
//! heartbeat doubles as the figures a window shows). A closed channel or a heartbeat that
//! times out marks the node down at once; reconnecting backs off from 250 ms to 2 s, so
//! a node that comes back is up again within a couple of seconds. Nothing waits on
//! another node: every call goes to one node's own connection with its own time-out.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::ClientError;
use super::conn::AgentConn;
use super::transport::{ClientOptions, connect_node};
use crate::map::{Cluster, ClusterNode};
use crate::model::{NodeId, NodeInfo};
use crate::protocol::{Hello, Request};

/// Whether a node can be talked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Opening the channel.
    Connecting,
    /// Answering.
    Up,
    /// Not answering; the supervisor retries.
    Down,
}

/// A snapshot of one node for display.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// The node's id.
    pub id: NodeId,
    /// Its address (or `localhost`).
    pub address: String,
    /// Link state.
    pub state: LinkState,
    /// Why it is down, when it is.
    pub reason: Option<String>,
    /// The agent's hello, once connected.
    pub hello: Option<Hello>,
    /// The latest figures (kept while down, marked stale by `state`).
    pub info: Option<NodeInfo>,
    /// When `info` was read.
    pub updated: Option<Instant>,
}

#[derive(Debug)]
struct Slot {
    view: NodeView,
    conn: Option<Arc<AgentConn>>,
}

/// The handle the programs hold: snapshots, per-node calls, change notifications.
#[derive(Debug)]
pub struct ClusterHandle {
    slots: Arc<RwLock<BTreeMap<NodeId, Slot>>>,
    changed: watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
    request_timeout: Duration,
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_secs(1);

fn write_slots(
    slots: &RwLock<BTreeMap<NodeId, Slot>>,
) -> std::sync::RwLockWriteGuard<'_, BTreeMap<NodeId, Slot>> {
    slots
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ClusterHandle {
    /// Starts a supervisor per node and returns at once; nodes start as `Connecting`.
    /// Must be called within a tokio runtime.
    pub fn connect(cluster: &Cluster, options: &ClientOptions) -> ClusterHandle {
        let (tx, rx) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let slots: BTreeMap<NodeId, Slot> = cluster
            .nodes
            .iter()
            .map(|n| {
                let view = NodeView {
                    id: n.id,
                    address: n.addresses.first().cloned().unwrap_or_default(),
                    state: LinkState::Connecting,
                    reason: None,
                    hello: None,
                    info: None,
                    updated: None,
                };
                (n.id, Slot { view, conn: None })
            })
            .collect();
        let slots = Arc::new(RwLock::new(slots));
        let tasks = cluster
            .nodes
            .iter()
            .map(|n| {
                tokio::spawn(supervise(
                    n.clone(),
                    options.clone(),
                    Arc::clone(&slots),
                    Arc::clone(&tx),
                ))
            })
            .collect();
        ClusterHandle {
            slots,
            changed: rx,
            tasks,
            request_timeout: options.request_timeout,
        }
    }

    /// Every node's snapshot, by id.
    pub fn nodes(&self) -> Vec<NodeView> {
        let slots = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.values().map(|s| s.view.clone()).collect()
    }

    /// One node's snapshot.
    pub fn node(&self, id: NodeId) -> Option<NodeView> {
        let slots = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.get(&id).map(|s| s.view.clone())
    }

    /// A receiver that changes whenever any node's snapshot changes (for repaints).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }

    /// Waits until no node is `Connecting` any more, or `timeout` passes.
    pub async fn settled(&self, timeout: Duration) {
        let mut rx = self.changed.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        while self
            .nodes()
            .iter()
            .any(|n| n.state == LinkState::Connecting)
        {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// The live connection of a node.
    pub fn conn(&self, id: NodeId) -> Result<Arc<AgentConn>, ClientError> {
        let slots = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = slots.get(&id).ok_or(ClientError::UnknownNode(id))?;
        match &slot.conn {
            Some(c) if !c.is_closed() => Ok(Arc::clone(c)),
            _ => Err(ClientError::NodeDown {
                node: id,
                reason: slot
                    .view
                    .reason
                    .clone()
                    .unwrap_or_else(|| "not connected yet".into()),
            }),
        }
    }

    /// Sends one request to one node.
    pub async fn request<T: DeserializeOwned>(
        &self,
        id: NodeId,
        request: Request,
    ) -> Result<T, ClientError> {
        let conn = self.conn(id)?;
        conn.request_within(request, self.request_timeout).await
    }
}

fn update(
    slots: &RwLock<BTreeMap<NodeId, Slot>>,
    tx: &watch::Sender<u64>,
    id: NodeId,
    f: impl FnOnce(&mut Slot),
) {
    if let Some(slot) = write_slots(slots).get_mut(&id) {
        f(slot);
    }
    tx.send_modify(|g| *g = g.wrapping_add(1));
}

async fn supervise(
    node: ClusterNode,
    options: ClientOptions,
    slots: Arc<RwLock<BTreeMap<NodeId, Slot>>>,
    tx: Arc<watch::Sender<u64>>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        // A node that is down stays down (red) while it is retried; only the first
        // attempt shows as connecting.
        update(&slots, &tx, node.id, |s| {
            if s.view.state != LinkState::Down {
                s.view.state = LinkState::Connecting;
            }
        });
        match connect_node(&node, &options).await {
            Ok(conn) => {
                backoff = BACKOFF_MIN;
                let conn = Arc::new(conn);
                let reason = heartbeat(&node, &conn, &slots, &tx, options.request_timeout).await;
                update(&slots, &tx, node.id, |s| {
                    s.conn = None;
                    s.view.state = LinkState::Down;
                    s.view.reason = Some(reason);
                });
            }
            Err(e) => {
                tracing::debug!(node = node.id, "connect failed: {e}");
                update(&slots, &tx, node.id, |s| {
                    s.conn = None;
                    s.view.state = LinkState::Down;
                    s.view.reason = Some(e.to_string());
                });
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Polls the node until the channel fails; returns why.
async fn heartbeat(
    node: &ClusterNode,
    conn: &Arc<AgentConn>,
    slots: &RwLock<BTreeMap<NodeId, Slot>>,
    tx: &watch::Sender<u64>,
    timeout: Duration,
) -> String {
    let mut first = true;
    loop {
        let polled = tokio::select! {
            r = conn.request_within::<NodeInfo>(Request::Node, timeout) => r,
            () = conn.closed() => Err(ClientError::Closed),
        };
        match polled {
            Ok(info) => {
                update(slots, tx, node.id, |s| {
                    if first {
                        s.conn = Some(Arc::clone(conn));
                        s.view.hello = Some(conn.hello().clone());
                        s.view.reason = None;
                    }
                    s.view.state = LinkState::Up;
                    s.view.info = Some(info);
                    s.view.updated = Some(Instant::now());
                });
                first = false;
            }
            Err(e) => return e.to_string(),
        }
        tokio::select! {
            () = tokio::time::sleep(HEARTBEAT) => {}
            () = conn.closed() => return ClientError::Closed.to_string(),
        }
    }
}
