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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use openmosix_client::{ClientOptions, ClusterHandle, LinkState};
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::{NodeId, ProcInfo};
use openmosix_hpc::protocol::{Event, Request};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use openmosix_store::store::{EventIn, ProcIn, Store, Tick};

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
}

enum ToWriter {
    /// Nodes that joined (id, address): recorded in the node table (a rotation keeps them).
    Nodes(Vec<(NodeId, String)>),
    Tick(Box<Tick>),
    Checkpoint(String),
    Rotate,
}

struct Opened {
    seqs: HashMap<NodeId, u64>,
    created_ms: i64,
}

/// Opens the history; errors here end the collector before it reports itself started.
pub fn open_store(config: &Config) -> Result<Store> {
    let mut store = Store::open_live(&config.db)
        .with_context(|| format!("cannot open the history {}", config.db.display()))?;
    prepare(&mut store, config)?;
    Ok(store)
}

fn prepare(store: &mut Store, config: &Config) -> Result<()> {
    store.set_snapshot_every(i64::try_from(config.snapshot_every).unwrap_or(i64::MAX));
    let nodes: Vec<(NodeId, String)> = config
        .cluster
        .nodes
        .iter()
        .map(|n| (n.id, n.addresses.first().cloned().unwrap_or_default()))
        .collect();
    store.set_nodes(&nodes)?;
    store.connection().execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('interval', ?1)",
        [config.interval.to_string()],
    )?;
    Ok(())
}

fn writer(
    mut store: Store,
    config: &Config,
    metrics: &Metrics,
    mut rx: mpsc::Receiver<ToWriter>,
    opened: oneshot::Sender<Opened>,
) {
    let seqs = store.event_seqs().unwrap_or_default();
    let _ = opened.send(Opened {
        seqs,
        created_ms: store.created() * 1000,
    });
    let mut last_wal = Instant::now();
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            // A rotation copies the node table into the new history, joined nodes too.
            ToWriter::Nodes(nodes) => {
                if let Err(e) = store.set_nodes(&nodes) {
                    tracing::error!("cannot record the nodes that joined: {e}");
                }
            }
            ToWriter::Tick(tick) => match store.write_tick(&tick) {
                Ok(r) => metrics.tick_written(tick.time, &r),
                Err(e) => {
                    metrics.error();
                    tracing::error!("cannot write the tick of {}: {e}", tick.time);
                }
            },
            ToWriter::Checkpoint(note) => match store.add_checkpoint(&note) {
                Ok(_) => tracing::info!("checkpoint {note:?} written"),
                Err(e) => tracing::error!("cannot write a checkpoint: {e}"),
            },
            ToWriter::Rotate => store = rotate(store, config, metrics),
        }
        let due = config
            .rotate_after
            .is_some_and(|d| openmosix_store::now() - store.created() >= d.as_secs() as i64);
        if due {
            store = rotate(store, config, metrics);
        }
        if last_wal.elapsed() >= Duration::from_secs(60) {
            last_wal = Instant::now();
            if let Err(e) = store.wal_checkpoint() {
                tracing::warn!("WAL checkpoint: {e}");
            }
        }
    }
    if let Err(e) = store.wal_checkpoint() {
        tracing::warn!("WAL checkpoint at exit: {e}");
    }
}

fn rotate(store: Store, config: &Config, metrics: &Metrics) -> Store {
    let file = store.file().to_path_buf();
    match store.rotate() {
        Ok((mut new, saved)) => {
            if let Err(e) = prepare(&mut new, config) {
                tracing::error!("preparing the new history: {e}");
            }
            metrics.rotated();
            tracing::info!(
                "saved the history as {}; now writing {}",
                saved.display(),
                new.file().display()
            );
            new
        }
        Err(e) => {
            // The old store was closed: go on in whatever the link now names.
            tracing::error!("cannot rotate {}: {e}", file.display());
            loop {
                match Store::open_live(&config.db) {
                    Ok(mut s) => {
                        // Whatever file that is, it gets the same settings and node list.
                        if let Err(e) = prepare(&mut s, config) {
                            tracing::error!("preparing the reopened history: {e}");
                        }
                        return s;
                    }
                    Err(e) => {
                        tracing::error!("cannot reopen the history: {e}");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        }
    }
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

type Fetched = (
    NodeId,
    Option<Result<Vec<Event>, String>>,
    Option<Vec<ProcInfo>>,
);

/// Runs the collector until [`Control::Stop`] (or the end of `control`).
pub async fn collect(
    config: Config,
    store: Store,
    metrics: Arc<Metrics>,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> Result<()> {
    let (tx, rx) = mpsc::channel::<ToWriter>(16);
    let (opened_tx, opened_rx) = oneshot::channel();
    let writer_thread = {
        let config = config.clone();
        let metrics = Arc::clone(&metrics);
        std::thread::Builder::new()
            .name("collector-writer".into())
            .spawn(move || writer(store, &config, &metrics, rx, opened_tx))
            .context("starting the writer thread")?
    };
    let opened = opened_rx.await.context("the writer thread ended")?;
    let mut seqs = opened.seqs;
    // Nodes this history has no seq for: their older events belong to older histories.
    let mut fresh: HashSet<NodeId> = config
        .cluster
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|id| seqs.get(id).copied().unwrap_or(0) == 0)
        .collect();

    let handle = Arc::new(ClusterHandle::connect(
        &config.cluster,
        &ClientOptions::for_cluster(&config.cluster),
    ));
    let mut was_up: HashMap<NodeId, bool> = HashMap::new();
    let mut known: HashMap<NodeId, String> = config
        .cluster
        .nodes
        .iter()
        .map(|n| (n.id, n.addresses.first().cloned().unwrap_or_default()))
        .collect();
    let mut next_procs = 0i64;
    let budget = Duration::from_millis((config.interval * 750).clamp(700, 5000));
    let fresh_for = Duration::from_secs((2 * config.interval).max(3));

    loop {
        let time = tokio::select! {
            t = next_tick(config.interval) => t,
            c = control.recv() => {
                match c {
                    None | Some(Control::Stop) => break,
                    Some(Control::Checkpoint(note)) => {
                        let _ = tx.send(ToWriter::Checkpoint(note)).await;
                    }
                    Some(Control::Rotate) => {
                        let _ = tx.send(ToWriter::Rotate).await;
                    }
                }
                continue;
            }
        };
        let mut tick = Tick {
            time,
            ..Tick::default()
        };
        let views = handle.nodes();
        let joined: Vec<(NodeId, String)> = views
            .iter()
            .filter(|v| known.get(&v.id) != Some(&v.address))
            .map(|v| (v.id, v.address.clone()))
            .collect();
        if !joined.is_empty() {
            for (id, address) in &joined {
                tracing::info!("node {id} ({address}) joined");
                if seqs.get(id).copied().unwrap_or(0) == 0 {
                    fresh.insert(*id);
                }
                known.insert(*id, address.clone());
            }
            if tx.send(ToWriter::Nodes(joined)).await.is_err() {
                break;
            }
        }
        metrics.keep_nodes(&views.iter().map(|v| v.id).collect::<Vec<_>>());
        let now_ms = openmosix_store::now_ms();
        let procs_due = time >= next_procs;
        if procs_due {
            next_procs = time + i64::try_from(config.procs_poll.max(1)).unwrap_or(1);
        }
        let mut asks: tokio::task::JoinSet<Fetched> = tokio::task::JoinSet::new();
        for v in &views {
            let up = v.state == LinkState::Up;
            match (v.state, was_up.get(&v.id).copied()) {
                (LinkState::Up, Some(false)) => tick.events.push(EventIn {
                    node: v.id,
                    time_ms: now_ms,
                    kind: "up".into(),
                    text: format!("node {} is up again", v.id),
                    pid: None,
                    seq: None,
                }),
                (LinkState::Down, None | Some(true)) => tick.events.push(EventIn {
                    node: v.id,
                    time_ms: now_ms,
                    kind: "down".into(),
                    text: format!(
                        "node {} is down: {}",
                        v.id,
                        v.reason.as_deref().unwrap_or("no answer")
                    ),
                    pid: None,
                    seq: None,
                }),
                _ => {}
            }
            if v.state != LinkState::Connecting {
                was_up.insert(v.id, up);
            }
            let info = v
                .info
                .clone()
                .filter(|_| up && v.updated.is_some_and(|u| u.elapsed() <= fresh_for));
            metrics.set_node(v.id, &v.address, up, info.clone());
            if let Some(info) = info {
                tick.samples.push((v.id, info));
            }
            if !up {
                continue;
            }
            let has_events = v
                .hello
                .as_ref()
                .is_some_and(|h| h.ops.iter().any(|o| o == "events"));
            let after = seqs.get(&v.id).copied().unwrap_or(0);
            let handle = Arc::clone(&handle);
            let id = v.id;
            asks.spawn(async move {
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
                let procs = if procs_due {
                    tokio::time::timeout(
                        budget,
                        handle.request::<Vec<ProcInfo>>(id, Request::Procs),
                    )
                    .await
                    .ok()
                    .and_then(Result::ok)
                } else {
                    None
                };
                (id, events, procs)
            });
        }
        while let Some(done) = asks.join_next().await {
            let Ok((id, events, procs)) = done else {
                continue;
            };
            if let Some(procs) = procs {
                tick.procs
                    .push((id, procs.iter().map(ProcIn::from).collect()));
            }
            match events {
                Some(Ok(list)) => {
                    let Some(last) = list.last().map(|e| e.seq) else {
                        fresh.remove(&id);
                        continue;
                    };
                    let keep_from = if fresh.remove(&id) {
                        opened.created_ms
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
                    seqs.insert(id, last);
                    tick.event_seqs.push((id, last));
                }
                Some(Err(e)) => tracing::debug!(node = id, "events: {e}"),
                None => {}
            }
        }
        tick.events.sort_by_key(|e| e.time_ms);
        if tx.send(ToWriter::Tick(Box::new(tick))).await.is_err() {
            break;
        }
    }
    drop(tx);
    tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .ok();
    Ok(())
}
