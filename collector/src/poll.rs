//! The collecting loop: every interval, read every node through one
//! [`ClusterHandle`], and hand the tick to the writer thread, which commits it in one
//! transaction.
//!
//! - Samples: the handle's supervisors poll each node's figures every second; a node
//!   that is up and whose figures are fresh gets a sample, any other node a gap.
//! - Link changes: a node going down (or unreachable at start) and coming back up are
//!   `down` and `up` events.
//! - Events: each tick asks every up node for its agent events after the last seq stored.
//! - Processes: the lists are fetched every `procs_poll` seconds; the store writes a
//!   node's list when its pid set changed or its last one is `snapshot_every` old.
//! - Nodes: a cluster with `[discovery]` gains and loses nodes while the collector runs
//!   (the handle follows discovery); a node seen for the first time is added to the
//!   history's node table before its first tick, and stays there after it leaves.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use openmosix_client::{ClientOptions, ClusterHandle, LinkState, NodeView};
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::{NodeId, NodeInfo, ProcInfo};
use openmosix_hpc::protocol::{Event, Request};
use openmosix_store::store::{EventIn, ProcIn, Store, Tick};
use tokio::sync::mpsc;

use crate::metrics::Metrics;
use writer::{Opened, ToWriter};

mod writer;

/// What the collector is told while it runs (from signals).
#[derive(Debug)]
pub enum Control {
    /// Finish the tick, close the history and return.
    Stop,
    /// Write a checkpoint with this note.
    Checkpoint(String),
    /// Save the history and start a new one.
    Rotate,
}

/// How to collect.
#[derive(Debug, Clone)]
pub struct Config {
    /// The nodes.
    pub cluster: Cluster,
    /// The live history path (a link to the dated file written).
    pub db: PathBuf,
    /// Seconds between ticks.
    pub interval: u64,
    /// Seconds between full process lists of a node.
    pub snapshot_every: u64,
    /// Seconds between fetches of the process lists.
    pub procs_poll: u64,
    /// Start a new history when the current one is this old (none: never).
    pub rotate_after: Option<Duration>,
    /// Rotated histories kept beside the live one; older ones are removed (0: all kept).
    pub keep: usize,
}

/// Opens the history; errors here end the collector before it reports itself started.
/// A damaged history is moved aside and a new one started (said in the log, and in the
/// new file's meta for the analyzer); rotated files beyond `keep` are removed.
pub fn open_store(config: &Config) -> Result<Store> {
    let (mut store, set_aside) = openmosix_store::store::open_live_healing(&config.db)
        .with_context(|| format!("cannot open the history {}", config.db.display()))?;
    if let Some(aside) = set_aside {
        tracing::error!("{}", aside.sentence());
    }
    prepare(&mut store, config)?;
    prune(config, store.file());
    Ok(store)
}

/// Removes the rotated histories beyond `config.keep`, saying which.
pub(crate) fn prune(config: &Config, current: &std::path::Path) {
    for gone in openmosix_store::store::prune_rotated(&config.db, current, config.keep) {
        tracing::info!(
            "removed the old history {} (--keep {})",
            gone.display(),
            config.keep
        );
    }
}

/// Applies the settings and the configured node list to a history.
fn prepare(store: &mut Store, config: &Config) -> Result<()> {
    store.set_snapshot_every(i64::try_from(config.snapshot_every).unwrap_or(i64::MAX));
    store.set_nodes(&configured_nodes(&config.cluster).collect::<Vec<_>>())?;
    store.connection().execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('interval', ?1)",
        [config.interval.to_string()],
    )?;
    Ok(())
}

/// The nodes of the cluster map, each with its first address.
fn configured_nodes(cluster: &Cluster) -> impl Iterator<Item = (NodeId, String)> + '_ {
    cluster
        .nodes
        .iter()
        .map(|n| (n.id, n.addresses.first().cloned().unwrap_or_default()))
}

/// Sleeps until the next multiple of `interval` seconds of the wall clock; returns it.
async fn next_tick(interval: u64) -> i64 {
    let step = i64::try_from(interval.max(1) * 1000).unwrap_or(1000);
    let now = openmosix_store::now_ms();
    let next = (now.div_euclid(step) + 1) * step;
    tokio::time::sleep(Duration::from_millis(
        u64::try_from(next - now).unwrap_or(0),
    ))
    .await;
    next / 1000
}

/// What one up node answered this tick: its new agent events (`None`: it does not
/// keep any) and its process list (`None`: not due, or no answer).
struct Fetched {
    id: NodeId,
    events: Option<Result<Vec<Event>, String>>,
    procs: Option<Vec<ProcInfo>>,
}

/// The writer thread is gone: the loop ends.
struct WriterGone;

/// Runs the collector until [`Control::Stop`] (or the end of `control`).
pub async fn collect(
    config: Config,
    store: Store,
    metrics: Arc<Metrics>,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> Result<()> {
    let (tx, rx) = mpsc::channel::<ToWriter>(16);
    let (writer_thread, opened) = writer::start(store, &config, &metrics, rx).await?;
    let mut poller = Poller::new(config, metrics, tx, opened);
    loop {
        let time = tokio::select! {
            t = next_tick(poller.config.interval) => t,
            c = control.recv() => {
                match c {
                    None | Some(Control::Stop) => break,
                    Some(Control::Checkpoint(note)) => {
                        let _ = poller.tx.send(ToWriter::Checkpoint(note)).await;
                    }
                    Some(Control::Rotate) => {
                        let _ = poller.tx.send(ToWriter::Rotate).await;
                    }
                }
                continue;
            }
        };
        if poller.tick(time).await.is_err() {
            break;
        }
    }
    // The writer ends when its channel closes.
    drop(poller.tx);
    tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .ok();
    Ok(())
}

/// The collecting loop's state from tick to tick.
struct Poller {
    config: Config,
    metrics: Arc<Metrics>,
    handle: Arc<ClusterHandle>,
    tx: mpsc::Sender<ToWriter>,
    /// The last agent event seq stored, per node.
    seqs: HashMap<NodeId, u64>,
    /// Nodes this history has no seq for: their older events belong to older histories.
    fresh: HashSet<NodeId>,
    /// When the history began (ms): a fresh node's events before it are left out.
    created_ms: i64,
    /// Whether each node was up at the last tick (none yet while it connects).
    was_up: HashMap<NodeId, bool>,
    /// The nodes in the history's node table, with their addresses.
    known: HashMap<NodeId, String>,
    /// When the process lists are fetched next (s).
    next_procs: i64,
    /// How long a tick waits for a node's answers.
    budget: Duration,
    /// How old a node's figures may be to count as a sample.
    fresh_for: Duration,
}

impl Poller {
    fn new(config: Config, metrics: Arc<Metrics>, tx: mpsc::Sender<ToWriter>, o: Opened) -> Self {
        let fresh = config
            .cluster
            .nodes
            .iter()
            .map(|n| n.id)
            .filter(|id| o.seqs.get(id).copied().unwrap_or(0) == 0)
            .collect();
        let handle = Arc::new(ClusterHandle::connect(
            &config.cluster,
            &ClientOptions::for_cluster(&config.cluster),
        ));
        let known = configured_nodes(&config.cluster).collect();
        Poller {
            budget: Duration::from_millis((config.interval * 750).clamp(700, 5000)),
            fresh_for: Duration::from_secs((2 * config.interval).max(3)),
            config,
            metrics,
            handle,
            tx,
            seqs: o.seqs,
            fresh,
            created_ms: o.created_ms,
            was_up: HashMap::new(),
            known,
            next_procs: 0,
        }
    }

    /// One tick: the nodes that joined, link events, samples, then every up node's new
    /// events and (when due) process lists; all handed to the writer.
    async fn tick(&mut self, time: i64) -> Result<(), WriterGone> {
        let mut tick = Tick {
            time,
            ..Tick::default()
        };
        let views = self.handle.nodes();
        self.record_joined(&views).await?;
        self.metrics
            .keep_nodes(&views.iter().map(|v| v.id).collect::<Vec<_>>());
        let now_ms = openmosix_store::now_ms();
        let procs_due = time >= self.next_procs;
        if procs_due {
            self.next_procs = time + i64::try_from(self.config.procs_poll.max(1)).unwrap_or(1);
        }
        let mut asks: tokio::task::JoinSet<Fetched> = tokio::task::JoinSet::new();
        for v in &views {
            tick.events.extend(self.link_event(v, now_ms));
            if let Some(info) = self.sample(v) {
                tick.samples.push((v.id, info));
            }
            if v.state == LinkState::Up {
                asks.spawn(self.fetch(v, procs_due));
            }
        }
        while let Some(done) = asks.join_next().await {
            if let Ok(fetched) = done {
                self.take(fetched, &mut tick);
            }
        }
        tick.events.sort_by_key(|e| e.time_ms);
        self.tx
            .send(ToWriter::Tick(Box::new(tick)))
            .await
            .map_err(|_| WriterGone)
    }

    /// Adds the nodes seen for the first time (or at a new address) to the node table.
    async fn record_joined(&mut self, views: &[NodeView]) -> Result<(), WriterGone> {
        let joined: Vec<(NodeId, String)> = views
            .iter()
            .filter(|v| self.known.get(&v.id) != Some(&v.address))
            .map(|v| (v.id, v.address.clone()))
            .collect();
        if joined.is_empty() {
            return Ok(());
        }
        for (id, address) in &joined {
            tracing::info!("node {id} ({address}) joined");
            if self.seqs.get(id).copied().unwrap_or(0) == 0 {
                self.fresh.insert(*id);
            }
            self.known.insert(*id, address.clone());
        }
        self.tx
            .send(ToWriter::Nodes(joined))
            .await
            .map_err(|_| WriterGone)
    }

    /// The `up` or `down` event of a node whose link changed since the last tick (a
    /// node down at the start counts as going down).
    fn link_event(&mut self, v: &NodeView, now_ms: i64) -> Option<EventIn> {
        let before = self.was_up.get(&v.id).copied();
        if v.state != LinkState::Connecting {
            self.was_up.insert(v.id, v.state == LinkState::Up);
        }
        let (kind, text) = match (v.state, before) {
            (LinkState::Up, Some(false)) => ("up", format!("node {} is up again", v.id)),
            (LinkState::Down, None | Some(true)) => (
                "down",
                format!(
                    "node {} is down: {}",
                    v.id,
                    v.reason.as_deref().unwrap_or("no answer")
                ),
            ),
            _ => return None,
        };
        Some(EventIn {
            node: v.id,
            time_ms: now_ms,
            kind: kind.into(),
            text,
            pid: None,
            seq: None,
        })
    }

    /// The node's figures if it is up and they are fresh (else a gap); shown in the
    /// metrics either way.
    fn sample(&self, v: &NodeView) -> Option<NodeInfo> {
        let up = v.state == LinkState::Up;
        let info = v
            .info
            .clone()
            .filter(|_| up && v.updated.is_some_and(|u| u.elapsed() <= self.fresh_for));
        self.metrics.set_node(v.id, &v.address, up, info.clone());
        info
    }

    /// Asks an up node for its events after the last seq stored (if its agent keeps
    /// any) and, when due, for its process list; each within the budget.
    fn fetch(&self, v: &NodeView, procs_due: bool) -> impl Future<Output = Fetched> + use<> {
        let has_events = v
            .hello
            .as_ref()
            .is_some_and(|h| h.ops.iter().any(|o| o == "events"));
        let after = self.seqs.get(&v.id).copied().unwrap_or(0);
        let (handle, id, budget) = (Arc::clone(&self.handle), v.id, self.budget);
        async move {
            let events = if has_events {
                let r = tokio::time::timeout(
                    budget,
                    handle.request::<Vec<Event>>(id, Request::Events { after }),
                )
                .await;
                Some(match r {
                    Ok(Ok(ev)) => Ok(ev),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer in time".to_owned()),
                })
            } else {
                None
            };
            // From the node's watched list (deltas after the first whole list, with an
            // agent of protocol 2), not a whole `procs` answer every few seconds: a
            // quiet node then sends the collector a few hundred bytes a second.
            let procs = if procs_due {
                tokio::time::timeout(budget, handle.procs(id))
                    .await
                    .ok()
                    .and_then(Result::ok)
            } else {
                None
            };
            Fetched { id, events, procs }
        }
    }

    /// Puts what a node answered into the tick.
    fn take(&mut self, fetched: Fetched, tick: &mut Tick) {
        let Fetched { id, events, procs } = fetched;
        if let Some(procs) = procs {
            tick.procs
                .push((id, procs.iter().map(ProcIn::from).collect()));
        }
        match events {
            Some(Ok(list)) => self.agent_events(id, list, tick),
            Some(Err(e)) => tracing::debug!(node = id, "events: {e}"),
            None => {}
        }
    }

    /// A node's new agent events, and its last seq now stored. A fresh node's events
    /// from before this history began are left out.
    fn agent_events(&mut self, id: NodeId, list: Vec<Event>, tick: &mut Tick) {
        let Some(last) = list.last().map(|e| e.seq) else {
            self.fresh.remove(&id);
            return;
        };
        let keep_from = if self.fresh.remove(&id) {
            self.created_ms
        } else {
            i64::MIN
        };
        for e in list {
            let time_ms = i64::try_from(e.time).unwrap_or(i64::MAX);
            if time_ms < keep_from {
                continue;
            }
            tick.events.push(EventIn {
                node: id,
                time_ms,
                kind: e.kind.as_str().to_owned(),
                text: e.text,
                pid: e.pid,
                seq: Some(e.seq),
            });
        }
        self.seqs.insert(id, last);
        tick.event_seqs.push((id, last));
    }
}
