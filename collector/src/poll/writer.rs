//! The writer thread: it owns the [`Store`] and commits what the collecting loop sends,
//! one transaction per tick; it rotates the history when told or when it is due, and
//! checkpoints the WAL every minute.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use openmosix_hpc::model::NodeId;
use openmosix_store::History;
use openmosix_store::store::{Store, Tick};
use tokio::sync::{mpsc, oneshot};

use super::{Config, prepare};
use crate::metrics::Metrics;

/// What the collecting loop sends the writer.
pub(super) enum ToWriter {
    /// Nodes that joined (id, address): recorded in the node table (a rotation keeps them).
    Nodes(Vec<(NodeId, String)>),
    Tick(Box<Tick>),
    Checkpoint(String),
    Rotate,
}

/// What the writer tells the loop once it has the history.
pub(super) struct Opened {
    /// The last agent event seq stored, per node.
    pub seqs: HashMap<NodeId, u64>,
    /// When the history began (ms).
    pub created_ms: i64,
}

/// Starts the writer thread on `store`; its handle and what it found in the history.
pub(super) async fn start(
    store: Store,
    config: &Config,
    metrics: &Arc<Metrics>,
    rx: mpsc::Receiver<ToWriter>,
) -> Result<(std::thread::JoinHandle<()>, Opened)> {
    let (opened_tx, opened_rx) = oneshot::channel();
    let thread = {
        let config = config.clone();
        let metrics = Arc::clone(metrics);
        std::thread::Builder::new()
            .name("collector-writer".into())
            .spawn(move || writer(store, &config, &metrics, rx, opened_tx))
            .context("starting the writer thread")?
    };
    let opened = opened_rx.await.context("the writer thread ended")?;
    Ok((thread, opened))
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
    let mut marks = Checkpoints::default();
    let mut retry = Retry::default();
    while let Some(msg) = rx.blocking_recv() {
        store = match msg {
            ToWriter::Rotate => rotate(store, config, metrics, &mut retry),
            msg => {
                write(&mut store, msg, metrics);
                store
            }
        };
        marks.look(&store, metrics);
        let due = config
            .rotate_after
            .is_some_and(|d| openmosix_store::now() - store.created() >= d.as_secs() as i64);
        if due && retry.at.is_none_or(|at| Instant::now() >= at) {
            store = rotate(store, config, metrics, &mut retry);
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

/// Writes what `msg` brings (all but [`ToWriter::Rotate`]); failures are logged.
fn write(store: &mut Store, msg: ToWriter, metrics: &Metrics) {
    match msg {
        // A rotation copies the node table into the new history, joined nodes too.
        ToWriter::Nodes(nodes) => {
            if let Err(e) = store.set_nodes(&nodes) {
                tracing::error!("cannot record the nodes that joined: {e}");
            }
        }
        ToWriter::Tick(tick) => match store.write_tick(&tick) {
            Ok(r) => {
                metrics.events(
                    tick.events
                        .iter()
                        .map(|e| (e.node, e.kind.as_str(), e.time_ms)),
                );
                metrics.tick_written(tick.time, &r);
            }
            Err(e) => {
                metrics.error();
                tracing::error!("cannot write the tick of {}: {e}", tick.time);
            }
        },
        ToWriter::Checkpoint(note) => match store.add_checkpoint(&note) {
            Ok(_) => tracing::info!("checkpoint {note:?} written"),
            Err(e) => tracing::error!("cannot write a checkpoint: {e}"),
        },
        ToWriter::Rotate => {}
    }
}

/// Finds the checkpoints written to the history (by this writer, or by
/// `openmosixcollector -n` in another process) for the metrics, through the read API.
#[derive(Debug, Default)]
struct Checkpoints {
    /// The file read, and a read handle on it.
    history: Option<History>,
    /// The newest checkpoint counted (ms).
    after_ms: i64,
}

impl Checkpoints {
    /// Counts the checkpoints newer than the last one counted.
    fn look(&mut self, store: &Store, metrics: &Metrics) {
        if self
            .history
            .as_ref()
            .is_none_or(|h| h.file() != store.file())
        {
            self.history = History::open(store.file()).ok();
        }
        let Some(h) = &self.history else { return };
        let from = self.after_ms.div_euclid(1000);
        match h.checkpoints(from, openmosix_store::now() + 1) {
            Ok(list) => {
                let after = self.after_ms;
                for c in list.iter().filter(|c| c.time_ms > after) {
                    metrics.checkpoint(c.time_ms, &c.note);
                    self.after_ms = c.time_ms;
                }
            }
            Err(e) => tracing::debug!("reading the checkpoints for the metrics: {e}"),
        }
    }
}

/// When a rotation that failed is tried again: after 10 s, then twice as long each time
/// up to an hour (a `-r` tries at once whatever the wait).
#[derive(Debug, Default)]
struct Retry {
    at: Option<Instant>,
    wait: Duration,
}

/// The first wait after a failed rotation, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(3600);

/// Starts a new history; if that fails, collection goes on in the current file and the
/// rotation is tried again later.
fn rotate(store: Store, config: &Config, metrics: &Metrics, retry: &mut Retry) -> Store {
    match store.try_rotate() {
        Ok((mut new, saved)) => {
            *retry = Retry::default();
            if let Err(e) = prepare(&mut new, config) {
                tracing::error!("preparing the new history: {e}");
            }
            metrics.rotated();
            tracing::info!(
                "saved the history as {}; now writing {}",
                saved.display(),
                new.file().display()
            );
            super::prune(config, new.file());
            new
        }
        Err(failed) => {
            metrics.error();
            retry.wait = if retry.wait.is_zero() {
                RETRY_FIRST
            } else {
                (retry.wait * 2).min(RETRY_MAX)
            };
            retry.at = Some(Instant::now() + retry.wait);
            tracing::error!(
                "cannot start a new history: {}; collecting on into {}, and trying again in {} s",
                failed.error,
                failed.store.file().display(),
                retry.wait.as_secs()
            );
            let mut store = *failed.store;
            if let Err(e) = prepare(&mut store, config) {
                tracing::error!("preparing the history: {e}");
            }
            store
        }
    }
}
