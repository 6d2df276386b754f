//! The writer thread: it owns the [`Store`] and commits what the collecting loop sends,
//! one transaction per tick; it rotates the history when told or when it is due, and
//! checkpoints the WAL every minute.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use openmosix_hpc::model::NodeId;
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
    while let Some(msg) = rx.blocking_recv() {
        store = match msg {
            ToWriter::Rotate => rotate(store, config, metrics),
            msg => {
                write(&mut store, msg, metrics);
                store
            }
        };
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
        ToWriter::Rotate => {}
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
            reopen(config)
        }
    }
}

/// The live history, opened again after a failed rotation (retried every second).
fn reopen(config: &Config) -> Store {
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
