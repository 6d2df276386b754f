//! A cluster of nodes, each kept connected by its own supervisor task.
//!
//! The supervisor opens the node's channel, then polls `node` every second (the
//! heartbeat doubles as the figures a window shows). A closed channel or a heartbeat that
//! times out marks the node down at once; reconnecting backs off from 250 ms to 2 s, so
//! a node that comes back is up again within a couple of seconds. Nothing waits on
//! another node: every call goes to one node's own connection with its own time-out.
//!
//! Process lists: [`ClusterHandle::procs`] answers from one watched list per node (`lists`).
//!
//! The node set can change while the handle lives: [`ClusterHandle::add_node`],
//! [`ClusterHandle::remove_node`] and [`ClusterHandle::set_nodes`]; a cluster with a
//! `[discovery]` section gets a follower task that listens on its interface and adds and
//! removes the nodes heard as they come and go.

mod lists;
pub use lists::{LIST_EVERY, LIST_IDLE};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::ClientError;
use super::conn::AgentConn;
use super::migrate::{Unsettled, settle_handoffs};
use super::transport::{ClientOptions, connect_node};
use openmosix_hpc::discovery::Listener;
use openmosix_hpc::map::{Cluster, ClusterNode};
use openmosix_hpc::model::{NodeId, NodeInfo};
use openmosix_hpc::protocol::{Hello, Request};

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

/// How discovery is going for a cluster that takes nodes from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryStatus {
    /// The interface listened on (as configured; `None`: the default route's).
    pub interface: Option<String>,
    /// Whether the listener runs.
    pub listening: bool,
    /// Why it does not (it retries every few seconds).
    pub error: Option<String>,
}

/// What the supervisors and the discovery follower share with the handle.
#[derive(Debug)]
struct Shared {
    slots: Arc<RwLock<BTreeMap<NodeId, Slot>>>,
    tx: Arc<watch::Sender<u64>>,
    options: ClientOptions,
    /// Each node's supervisor, with the node it was started for.
    tasks: Mutex<HashMap<NodeId, (ClusterNode, JoinHandle<()>)>>,
    discovery: Mutex<Option<DiscoveryStatus>>,
    /// Handoffs that wait for a decision (docs/migration.md), as last seen.
    unsettled: Mutex<Vec<Unsettled>>,
    /// The watched process lists.
    lists: lists::Lists,
    /// Permits to open a node's channel: at most [`connect_at_once`] handshakes at a time.
    connecting: Arc<Semaphore>,
}

/// The handle the programs hold: snapshots, per-node calls, change notifications.
#[derive(Debug)]
pub struct ClusterHandle {
    changed: watch::Receiver<u64>,
    shared: Arc<Shared>,
    follower: Option<JoinHandle<()>>,
    settler: JoinHandle<()>,
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        self.settler.abort();
        if let Some(f) = &self.follower {
            f.abort();
        }
        for (_, (_, t)) in lock(&self.shared.tasks).drain() {
            t.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long the follower waits before trying a listener that failed again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(3);

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How many nodes a handle connects to at a time, unless `OPENMOSIX_CONNECT_AT_ONCE`
/// says otherwise (0: all at once, the way before issue #16). An SSH handshake costs the
/// workstation and the node tens of milliseconds of CPU: 250 of them begun together share
/// the processors until each takes longer than the connect time-out, every one fails and
/// is retried, and the window starves meanwhile. A few at a time, each gets done within
/// its time-out, which counts from when it gets its turn (docs/benchmarks.md, "At scale").
const CONNECT_AT_ONCE: usize = 8;

fn connect_at_once() -> usize {
    std::env::var("OPENMOSIX_CONNECT_AT_ONCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(CONNECT_AT_ONCE, |n: usize| {
            if n == 0 { Semaphore::MAX_PERMITS } else { n }
        })
}

fn write_slots(
    slots: &RwLock<BTreeMap<NodeId, Slot>>,
) -> std::sync::RwLockWriteGuard<'_, BTreeMap<NodeId, Slot>> {
    slots
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ClusterHandle {
    /// Starts a supervisor per node and returns at once; nodes start as `Connecting`.
    /// A cluster with a `[discovery]` section also gets a follower that adds and removes
    /// the nodes heard. Must be called within a tokio runtime.
    pub fn connect(cluster: &Cluster, options: &ClientOptions) -> ClusterHandle {
        let (tx, rx) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            slots: Arc::new(RwLock::new(BTreeMap::new())),
            tx: Arc::new(tx),
            options: options.clone(),
            tasks: Mutex::new(HashMap::new()),
            discovery: Mutex::new(None),
            unsettled: Mutex::new(Vec::new()),
            lists: lists::Lists::default(),
            connecting: Arc::new(Semaphore::new(connect_at_once())),
        });
        for node in &cluster.nodes {
            shared.add(node);
        }
        let follower = cluster.discovery.as_ref().map(|source| {
            *lock(&shared.discovery) = Some(DiscoveryStatus {
                interface: source.config.interface.clone(),
                listening: false,
                error: None,
            });
            tokio::spawn(follow(cluster.clone(), Arc::clone(&shared)))
        });
        let settler = tokio::spawn(settle_every(Arc::clone(&shared)));
        ClusterHandle {
            changed: rx,
            shared,
            follower,
            settler,
        }
    }

    /// Handoffs that wait for a decision, and why (settled every few seconds).
    pub fn unsettled(&self) -> Vec<Unsettled> {
        lock(&self.shared.unsettled).clone()
    }

    /// Settles what can be settled now; returns what still waits.
    pub async fn settle_now(&self) -> Vec<Unsettled> {
        self.shared.settle().await
    }

    /// Adds a node (a supervisor starts connecting it); a node of the same id is
    /// replaced unless it is the same. Must be called within a tokio runtime.
    pub fn add_node(&self, node: &ClusterNode) {
        self.shared.add(node);
    }

    /// Removes a node: its connection closes and it leaves the snapshots. Returns
    /// whether it was there.
    pub fn remove_node(&self, id: NodeId) -> bool {
        self.shared.remove(id)
    }

    /// Makes the node set exactly `nodes`: adds the new ones, replaces changed ones,
    /// removes the others. Nodes that stay keep their connections.
    pub fn set_nodes(&self, nodes: &[ClusterNode]) {
        self.shared.set_nodes(nodes);
    }

    /// How discovery is going, for a cluster that takes nodes from it.
    pub fn discovery(&self) -> Option<DiscoveryStatus> {
        lock(&self.shared.discovery).clone()
    }

    /// Every node's snapshot, by id.
    pub fn nodes(&self) -> Vec<NodeView> {
        let slots = self
            .shared
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slots.values().map(|s| s.view.clone()).collect()
    }

    /// One node's snapshot.
    pub fn node(&self, id: NodeId) -> Option<NodeView> {
        let slots = self
            .shared
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
            .shared
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
        conn.request_within(request, self.shared.options.request_timeout)
            .await
    }
}

/// How often the handle settles handoffs that wait for a decision.
const SETTLE_EVERY: Duration = Duration::from_secs(3);

async fn settle_every(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(SETTLE_EVERY).await;
        shared.settle().await;
    }
}

impl Shared {
    /// Asks every node that answers for its handoffs and settles what it can.
    async fn settle(&self) -> Vec<Unsettled> {
        let conns: BTreeMap<NodeId, Arc<AgentConn>> = self
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|(&id, s)| {
                s.conn
                    .as_ref()
                    .filter(|c| !c.is_closed())
                    .map(|c| (id, Arc::clone(c)))
            })
            .collect();
        let waiting = settle_handoffs(&conns).await;
        let changed = {
            let mut u = lock(&self.unsettled);
            let changed = *u != waiting;
            u.clone_from(&waiting);
            changed
        };
        if changed {
            self.notify();
        }
        waiting
    }

    fn notify(&self) {
        self.tx.send_modify(|g| *g = g.wrapping_add(1));
    }

    fn add(&self, node: &ClusterNode) {
        let mut tasks = lock(&self.tasks);
        if let Some((old, task)) = tasks.get(&node.id) {
            if old == node {
                return;
            }
            task.abort();
        }
        let view = NodeView {
            id: node.id,
            address: node.addresses.first().cloned().unwrap_or_default(),
            state: LinkState::Connecting,
            reason: None,
            hello: None,
            info: None,
            updated: None,
        };
        write_slots(&self.slots).insert(node.id, Slot { view, conn: None });
        let task = tokio::spawn(supervise(
            node.clone(),
            self.options.clone(),
            Arc::clone(&self.slots),
            Arc::clone(&self.tx),
            Arc::clone(&self.connecting),
        ));
        tasks.insert(node.id, (node.clone(), task));
        drop(tasks);
        self.notify();
    }

    fn remove(&self, id: NodeId) -> bool {
        let Some((_, task)) = lock(&self.tasks).remove(&id) else {
            return false;
        };
        task.abort();
        write_slots(&self.slots).remove(&id);
        self.notify();
        true
    }

    fn set_nodes(&self, nodes: &[ClusterNode]) {
        let gone: Vec<NodeId> = lock(&self.tasks)
            .keys()
            .filter(|id| !nodes.iter().any(|n| n.id == **id))
            .copied()
            .collect();
        for id in gone {
            self.remove(id);
        }
        for node in nodes {
            self.add(node);
        }
    }

    fn set_discovery(&self, listening: bool, error: Option<String>) {
        if let Some(status) = lock(&self.discovery).as_mut() {
            status.listening = listening;
            status.error = error;
        }
        self.notify();
    }
}

/// Keeps the node set of `cluster` (its listed nodes and the ones heard) while the
/// handle lives; a listener that cannot start is retried.
async fn follow(cluster: Cluster, shared: Arc<Shared>) {
    let Some(source) = cluster.discovery.clone() else {
        return;
    };
    loop {
        match Listener::bind(&source.config) {
            Ok(listener) => {
                tracing::info!("discovery: listening on {}", listener.interface().name);
                shared.set_discovery(true, None);
                let (mut heard, task) = listener.spawn();
                loop {
                    let found = heard.borrow_and_update().clone();
                    shared.set_nodes(&cluster.with_discovered(&found).nodes);
                    if heard.changed().await.is_err() {
                        break;
                    }
                }
                task.abort();
                shared.set_discovery(false, Some("the listener stopped".to_owned()));
            }
            Err(e) => {
                tracing::warn!("discovery: {e}");
                shared.set_discovery(false, Some(e.to_string()));
            }
        }
        tokio::time::sleep(DISCOVERY_RETRY).await;
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
    connecting: Arc<Semaphore>,
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
        let connected = {
            // Never closed, so always a permit; held only while the channel is opened.
            let _turn = connecting.acquire().await;
            connect_node(&node, &options).await
        };
        match connected {
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

/// The node's agent still runs criu's checks: its view learns whether processes can
/// move there once they have ended (its lamp and figures do not wait for them).
fn readiness_later(
    id: NodeId,
    conn: &Arc<AgentConn>,
    slots: &Arc<RwLock<BTreeMap<NodeId, Slot>>>,
    tx: &Arc<watch::Sender<u64>>,
) {
    let (conn, slots, tx) = (Arc::clone(conn), Arc::clone(slots), Arc::clone(tx));
    tokio::spawn(async move {
        let known = tokio::select! {
            r = conn.readiness() => r,
            () = conn.closed() => return,
        };
        match known {
            Ok(_) => update(&slots, &tx, id, |s| {
                let same = s.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn));
                if same {
                    s.view.hello = Some(conn.hello_now());
                }
            }),
            Err(e) => tracing::debug!("node {id}: no word on migration: {e}"),
        }
    });
}

/// Polls the node until the channel fails; returns why.
async fn heartbeat(
    node: &ClusterNode,
    conn: &Arc<AgentConn>,
    slots: &Arc<RwLock<BTreeMap<NodeId, Slot>>>,
    tx: &Arc<watch::Sender<u64>>,
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
                if first && conn.hello().checking {
                    readiness_later(node.id, conn, slots, tx);
                }
                update(slots, tx, node.id, |s| {
                    if first {
                        s.conn = Some(Arc::clone(conn));
                        s.view.hello = Some(conn.hello_now());
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
