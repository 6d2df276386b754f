//! What the analyzer asks of the history, and the thread that asks it: an
//! [`openmosix_store::worker::Worker`] with a read-only [`History`] of its own, so that
//! the UI thread never waits for the database.
//!
//! Of the requests waiting when the thread gets to them, only the newest plot, the
//! newest "find out" of each node (and of the cluster) and the newest "refresh" poll
//! are answered.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use openmosix_hpc::model::NodeId;
use openmosix_store::query::NodeStatic;
use openmosix_store::worker::{self, Change, Query, Watched};
use openmosix_store::{Bucket, Checkpoint, EventRow, History, NodeRow, Time};

use crate::FindOut;

/// What the history answered for one range.
#[derive(Debug, Default)]
pub(crate) struct Data {
    /// The range asked for (s, inclusive).
    pub from: Time,
    pub to: Time,
    /// Seconds per bucket asked for.
    pub bucket: Time,
    pub buckets: BTreeMap<NodeId, Vec<Bucket>>,
    pub statics: BTreeMap<NodeId, Vec<NodeStatic>>,
    pub checkpoints: Vec<Checkpoint>,
    pub events: Vec<EventRow>,
}

/// A request to the worker.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request {
    /// The data of `from..=to` in buckets of `bucket` seconds.
    Plot { from: Time, to: Time, bucket: Time },
    /// "find out" for a node (`None`: the cluster) over `from..=to`.
    FindOut {
        node: Option<NodeId>,
        from: Time,
        to: Time,
    },
    /// "refresh": has the database changed (or the live link moved on)? With `force`
    /// ("reload"), read the nodes and the range anyway.
    Poll { force: bool },
}

/// Which requests replace each other while they wait.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Plot,
    /// One "find out" window per node (and one for the cluster).
    FindOut(Option<NodeId>),
    Poll,
}

impl Query for Request {
    type Kind = Kind;

    fn kind(&self) -> Kind {
        match self {
            Request::Plot { .. } => Kind::Plot,
            Request::FindOut { node, .. } => Kind::FindOut(*node),
            Request::Poll { .. } => Kind::Poll,
        }
    }

    /// A poll that replaces a "reload" reloads.
    fn absorb(&mut self, older: Request) {
        if let (Request::Poll { force }, Request::Poll { force: before }) = (self, older) {
            *force |= before;
        }
    }
}

/// The answer to [`Request::Poll`].
#[derive(Debug)]
pub(crate) enum Polled {
    /// Nothing new.
    Same,
    /// The live link points to another file now.
    Rotated,
    /// New data (or the first look): the file read, the nodes and the range, and the
    /// collector's note when it moved a damaged history aside to start this one.
    Changed(PathBuf, Vec<NodeRow>, Option<(Time, Time)>, Option<String>),
    Failed(String),
}

/// The worker's answers (each with the id of its request).
#[derive(Debug)]
pub(crate) enum Reply {
    Plot(Result<Data, String>),
    FindOut(FindOut),
    Polled(Polled),
}

/// The UI's end of the thread.
pub(crate) type Worker = worker::Worker<Request, Reply>;

/// Starts a worker on the history at `path` (it opens the file itself); it wakes the
/// window up through `ctx` (once the first frame set it) when an answer is in.
pub(crate) fn spawn(path: PathBuf, ctx: Arc<OnceLock<egui::Context>>) -> Worker {
    let mut reader = Reader {
        path,
        history: Err(String::new()),
    };
    Worker::spawn(
        "openmosixanalyzer history",
        worker::once_set(ctx, egui::Context::request_repaint),
        move |req: Request| reader.answer(req),
    )
}

/// The thread's state: the history, or why it could not be opened.
struct Reader {
    path: PathBuf,
    history: Result<Watched, String>,
}

impl Reader {
    fn answer(&mut self, req: Request) -> Reply {
        // Opened at the first request (Analyzer::open sends a poll at once); tried again
        // at every later one until it works (a locked file, a link the collector has not
        // made yet).
        if self.history.is_err() {
            self.history = Watched::open(&self.path);
        }
        let w = match &mut self.history {
            Ok(w) => w,
            Err(e) => return failed(req, e.clone()),
        };
        match req {
            Request::Plot { from, to, bucket } => {
                Reply::Plot(query(w.history(), from, to, bucket).map_err(|e| e.to_string()))
            }
            Request::FindOut { node, from, to } => {
                Reply::FindOut(FindOut::new(w.history(), node, from, to))
            }
            Request::Poll { force } => Reply::Polled(poll(w, force)),
        }
    }
}

/// The answer to `req` when the history cannot be opened.
fn failed(req: Request, error: String) -> Reply {
    match req {
        Request::Plot { .. } => Reply::Plot(Err(error)),
        Request::FindOut { node, from, to } => {
            Reply::FindOut(FindOut::failed(node, from, to, error))
        }
        Request::Poll { .. } => Reply::Polled(Polled::Failed(error)),
    }
}

/// [`Request::Poll`].
fn poll(w: &mut Watched, force: bool) -> Polled {
    let version = match w.look(force) {
        Ok(Change::Written(v)) => v,
        Ok(Change::Same) => return Polled::Same,
        Ok(Change::Rotated) => return Polled::Rotated,
        Err(e) => return Polled::Failed(e),
    };
    let h = w.history();
    let (nodes, range) = match (h.nodes(), h.range()) {
        (Ok(n), Ok(r)) => (n, r),
        (Err(e), _) | (_, Err(e)) => return Polled::Failed(e.to_string()),
    };
    let file = h.file().to_path_buf();
    let set_aside = h
        .meta(openmosix_store::store::heal::META_SET_ASIDE)
        .ok()
        .flatten();
    w.saw(version);
    Polled::Changed(file, nodes, range, set_aside)
}

/// [`Request::Plot`]: the buckets of every node, its static data, checkpoints and events.
fn query(history: &History, from: Time, to: Time, bucket: Time) -> openmosix_store::Result<Data> {
    let n = usize::try_from((to - from + 1).max(1) / bucket.max(1) + 1).unwrap_or(1);
    let buckets = history.aggregate_all(from, to, n)?;
    let mut statics = BTreeMap::new();
    for &id in buckets.keys() {
        statics.insert(id, history.node_statics(id, from, to)?);
    }
    Ok(Data {
        from,
        to,
        bucket,
        buckets,
        statics,
        checkpoints: history.checkpoints(from, to)?,
        events: history.events(from, to)?,
    })
}
