//! Every query of the history browser off the UI thread: one long-lived thread owns the
//! [`History`] connection, takes requests from a channel and answers through another,
//! waking the window (`request_repaint`) when an answer is in. The window keeps drawing
//! meanwhile ("loading…").
//!
//! Requests carry rising ids. Of the requests waiting when the thread gets to them, only
//! the newest of each kind is answered (a slider drag asks hundreds of times; only the
//! last time counts), in the order they were asked; the window drops answers it no
//! longer waits for. The same style as openmosixanalyzer's worker.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

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
    Open { id: u64, path: PathBuf },
    /// The processes at `time` (if `rows`) and where `pid` was then.
    Show {
        id: u64,
        time: Time,
        rows: bool,
        pid: Option<i32>,
    },
    /// "refresh": has the live link moved on, or has the collector written? If so, the
    /// range, the stops, and what [`Request::Show`] would answer at `time` (the newest
    /// snapshot when `follow`).
    Poll {
        id: u64,
        time: Time,
        follow: bool,
        pid: Option<i32>,
    },
}

impl Request {
    fn id(&self) -> u64 {
        match self {
            Request::Open { id, .. } | Request::Show { id, .. } | Request::Poll { id, .. } => *id,
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

/// The worker's answers.
#[derive(Debug)]
pub(crate) enum Reply {
    Opened {
        id: u64,
        loaded: Result<Loaded, String>,
    },
    Shown {
        id: u64,
        shown: Shown,
    },
    Polled {
        id: u64,
        polled: Polled,
    },
}

/// What went wrong when the thread is gone.
pub(crate) const STOPPED: &str = "the history thread stopped";

/// The UI's end of the worker thread.
#[derive(Debug)]
pub(crate) struct Worker {
    tx: Sender<Request>,
    rx: Receiver<Reply>,
    next_id: u64,
}

impl Worker {
    /// Starts the thread; it wakes the window of `ctx` (once the first frame set it)
    /// whenever answers are in. It ends when the window drops this end.
    pub fn spawn(ctx: Arc<OnceLock<egui::Context>>) -> Worker {
        let (tx, req_rx) = mpsc::channel::<Request>();
        let (reply_tx, rx) = mpsc::channel::<Reply>();
        let spawned = std::thread::Builder::new()
            .name("openmosixhistory queries".into())
            .spawn(move || {
                let mut state = Thread::default();
                while let Ok(first) = req_rx.recv() {
                    for req in newest_of_each_kind(first, &req_rx) {
                        let reply = state.answer(req);
                        if reply_tx.send(reply).is_err() {
                            return;
                        }
                    }
                    if let Some(ctx) = ctx.get() {
                        ctx.request_repaint();
                    }
                }
            });
        // Should the thread not start, its ends of the channels are gone with the
        // closure: every request then fails with STOPPED.
        drop(spawned);
        Worker { tx, rx, next_id: 0 }
    }

    /// Sends a request made from its id; the id, or STOPPED.
    pub fn ask(&mut self, make: impl FnOnce(u64) -> Request) -> Result<u64, String> {
        self.next_id += 1;
        let id = self.next_id;
        self.tx.send(make(id)).map_err(|_| STOPPED.to_owned())?;
        Ok(id)
    }

    /// An answer, if one is in (`Err` once the thread is gone).
    pub fn try_take(&self) -> Option<Result<Reply, String>> {
        match self.rx.try_recv() {
            Ok(r) => Some(Ok(r)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(STOPPED.to_owned())),
        }
    }

    /// Waits up to `timeout` for an answer (tests).
    pub fn wait(&self, timeout: Duration) -> Option<Result<Reply, String>> {
        match self.rx.recv_timeout(timeout) {
            Ok(r) => Some(Ok(r)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(STOPPED.to_owned())),
        }
    }
}

/// `first` and every request waiting behind it, keeping the newest open, show and poll
/// (a show asks for the processes if any show it replaced did), oldest first.
fn newest_of_each_kind(first: Request, rx: &Receiver<Request>) -> Vec<Request> {
    let (mut open, mut show, mut poll) = (None, None, None);
    for req in std::iter::once(first).chain(rx.try_iter()) {
        match req {
            Request::Open { .. } => open = Some(req),
            Request::Show {
                id,
                time,
                rows,
                pid,
            } => {
                let before = matches!(show, Some(Request::Show { rows: true, .. }));
                show = Some(Request::Show {
                    id,
                    time,
                    rows: rows || before,
                    pid,
                });
            }
            Request::Poll { .. } => poll = Some(req),
        }
    }
    let mut all: Vec<Request> = [open, show, poll].into_iter().flatten().collect();
    all.sort_by_key(Request::id);
    all
}

/// The thread's state: the history open and the data version last seen.
#[derive(Default)]
struct Thread {
    history: Option<History>,
    version: Option<i64>,
}

impl Thread {
    fn answer(&mut self, req: Request) -> Reply {
        match req {
            Request::Open { id, path } => Reply::Opened {
                id,
                loaded: self.open(&path),
            },
            Request::Show {
                id,
                time,
                rows,
                pid,
            } => Reply::Shown {
                id,
                shown: match &self.history {
                    Some(h) => show(h, time, rows, pid),
                    None => Shown {
                        time,
                        rows: rows.then(|| Err(NOTHING_OPEN.to_owned())),
                        place: pid.map(|p| (p, Err(NOTHING_OPEN.to_owned()))),
                    },
                },
            },
            Request::Poll {
                id,
                time,
                follow,
                pid,
            } => Reply::Polled {
                id,
                polled: self.poll(time, follow, pid),
            },
        }
    }

    /// Opens `path`; the history open before stays if it cannot be read.
    fn open(&mut self, path: &Path) -> Result<Loaded, String> {
        let history = History::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let read = |e: openmosix_store::Error| format!("cannot read {}: {e}", path.display());
        let version = history.data_version().ok();
        let (range, stops) = range_and_stops(&history).map_err(read)?;
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
        self.history = Some(history);
        self.version = version;
        Ok(loaded)
    }

    fn poll(&mut self, time: Time, follow: bool, pid: Option<i32>) -> Polled {
        let Some(h) = &self.history else {
            return Polled::Failed(NOTHING_OPEN.to_owned());
        };
        if !h.is_current() {
            return Polled::Rotated;
        }
        let version = match h.data_version() {
            Ok(v) => v,
            Err(e) => return Polled::Failed(e.to_string()),
        };
        if self.version == Some(version) {
            return Polled::Same;
        }
        let (range, stops) = match range_and_stops(h) {
            Ok(r) => r,
            Err(e) => return Polled::Failed(e.to_string()),
        };
        self.version = Some(version);
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
