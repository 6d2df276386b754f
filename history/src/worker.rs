//! Every query of the history browser off the UI thread, through a
//! [`openmosix_store::worker::Worker`]: one long-lived thread owns the [`History`]
//! connection and wakes the window (`request_repaint`) when an answer is in. The window
//! keeps drawing meanwhile ("loading…").
//!
//! Of the requests waiting when the thread gets to them, only the newest open, show and
//! poll are answered (a slider drag asks hundreds of times; only the last time counts),
//! in the order they were asked; the window drops answers it no longer waits for.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use openmosix_store::worker::{self, Change, Query, Watched};
use openmosix_store::{History, ProcRow, Time};

/// What opening a history read: the file (the link's target), its range, snapshot
/// times and the newest process list.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// The path asked for (the live link, or a saved file).
    pub path: PathBuf,
    pub file: PathBuf,
    pub range: Option<(Time, Time)>,
    pub stops: Vec<Time>,
    /// The newest snapshot time (or the last sample time) and its processes.
    pub newest: Option<(Time, Vec<ProcRow>)>,
}

/// The processes at a time and where a pid was then.
#[derive(Debug)]
pub(crate) struct Shown {
    pub time: Time,
    /// The processes (when asked for).
    pub rows: Option<Result<Vec<ProcRow>, String>>,
    /// Where the pid asked about was (when one was asked about).
    pub place: Option<(i32, Result<Vec<ProcRow>, String>)>,
}

/// A request to the worker.
#[derive(Debug)]
pub(crate) enum Request {
    /// Open `path` in place of the history open now (which stays if this one fails).
    Open(PathBuf),
    /// The processes at `time` (if `rows`) and where `pid` was then.
    Show {
        time: Time,
        rows: bool,
        pid: Option<i32>,
    },
    /// "refresh": has the live link moved on, or has the collector written? If so, the
    /// range, the stops, and what [`Request::Show`] would answer at `time` (the newest
    /// snapshot when `follow`).
    Poll {
        time: Time,
        follow: bool,
        pid: Option<i32>,
    },
}

impl Query for Request {
    type Kind = std::mem::Discriminant<Request>;

    /// The newest open, show and poll.
    fn kind(&self) -> Self::Kind {
        std::mem::discriminant(self)
    }

    /// A show asks for the processes if any show it replaced did.
    fn absorb(&mut self, older: Request) {
        if let (Request::Show { rows, .. }, Request::Show { rows: before, .. }) = (self, older) {
            *rows |= before;
        }
    }
}

/// The answer to [`Request::Poll`].
#[derive(Debug)]
pub(crate) enum Polled {
    /// Nothing new.
    Same,
    /// The live link leads to another file now: open it again.
    Rotated,
    /// New data: the range, the stops and the processes at the time shown (or newest).
    Changed {
        range: Option<(Time, Time)>,
        stops: Vec<Time>,
        shown: Option<Shown>,
    },
    Failed(String),
}

/// The worker's answers (each with the id of its request).
#[derive(Debug)]
pub(crate) enum Reply {
    Opened(Result<Loaded, String>),
    Shown(Shown),
    Polled(Polled),
}

/// The UI's end of the worker thread.
pub(crate) type Worker = worker::Worker<Request, Reply>;

/// Starts the thread; it wakes the window of `ctx` (once the first frame set it)
/// whenever answers are in. It ends when the window drops its end.
pub(crate) fn spawn(ctx: Arc<OnceLock<egui::Context>>) -> Worker {
    let mut state = Thread::default();
    Worker::spawn(
        "openmosixhistory queries",
        worker::once_set(ctx, egui::Context::request_repaint),
        move |req: Request| state.answer(req),
    )
}

/// The thread's state: the history open.
#[derive(Default)]
struct Thread {
    history: Option<Watched>,
}

impl Thread {
    fn answer(&mut self, req: Request) -> Reply {
        match req {
            Request::Open(path) => Reply::Opened(self.open(&path)),
            Request::Show { time, rows, pid } => Reply::Shown(match &self.history {
                Some(h) => show(h.history(), time, rows, pid),
                None => Shown {
                    time,
                    rows: rows.then(|| Err(NOTHING_OPEN.to_owned())),
                    place: pid.map(|p| (p, Err(NOTHING_OPEN.to_owned()))),
                },
            }),
            Request::Poll { time, follow, pid } => Reply::Polled(self.poll(time, follow, pid)),
        }
    }

    /// Opens `path`; the history open before stays if it cannot be read.
    fn open(&mut self, path: &Path) -> Result<Loaded, String> {
        let watched = Watched::open(path)?;
        let history = watched.history();
        let read = |e: openmosix_store::Error| format!("cannot read {}: {e}", path.display());
        let (range, stops) = range_and_stops(history).map_err(read)?;
        let newest = match range {
            Some((_, hi)) => {
                let t = stops.last().copied().unwrap_or(hi);
                Some((t, history.procs_at(t).map_err(read)?))
            }
            None => None,
        };
        let loaded = Loaded {
            path: path.to_path_buf(),
            file: history.file().to_path_buf(),
            range,
            stops,
            newest,
        };
        self.history = Some(watched);
        Ok(loaded)
    }

    fn poll(&mut self, time: Time, follow: bool, pid: Option<i32>) -> Polled {
        let Some(w) = &mut self.history else {
            return Polled::Failed(NOTHING_OPEN.to_owned());
        };
        let version = match w.look(false) {
            Ok(Change::Written(v)) => v,
            Ok(Change::Same) => return Polled::Same,
            Ok(Change::Rotated) => return Polled::Rotated,
            Err(e) => return Polled::Failed(e),
        };
        let (range, stops) = match range_and_stops(w.history()) {
            Ok(r) => r,
            Err(e) => return Polled::Failed(e.to_string()),
        };
        w.saw(version);
        let h = w.history();
        let shown = range.map(|(lo, hi)| {
            let t = if follow {
                stops.last().copied().unwrap_or(hi)
            } else {
                time.clamp(lo, hi)
            };
            show(h, t, true, pid)
        });
        Polled::Changed {
            range,
            stops,
            shown,
        }
    }
}

const NOTHING_OPEN: &str = "no history is open (File → open… opens one)";

/// First and last sample time, and the snapshot times between them.
type RangeAndStops = (Option<(Time, Time)>, Vec<Time>);

fn range_and_stops(h: &History) -> openmosix_store::Result<RangeAndStops> {
    let range = h.range()?;
    let stops = match range {
        Some((lo, hi)) => h.snapshot_times(lo, hi)?,
        None => Vec::new(),
    };
    Ok((range, stops))
}

fn show(h: &History, time: Time, rows: bool, pid: Option<i32>) -> Shown {
    Shown {
        time,
        rows: rows.then(|| h.procs_at(time).map_err(|e| e.to_string())),
        place: pid.map(|p| (p, h.where_was(p, time).map_err(|e| e.to_string()))),
    }
}
