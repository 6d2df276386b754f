//! Opening a history off the UI thread: a thread of its own opens the file and reads its
//! range, its snapshot times and the newest process list, then hands the open
//! [`History`] to the window, which keeps drawing ("loading…") meanwhile.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openmosix_collector::{History, ProcRow, Time};

/// What the thread read.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub history: History,
    pub range: Option<(Time, Time)>,
    pub stops: Vec<Time>,
    pub version: Option<i64>,
    /// The newest snapshot time (or the last sample time) and its processes.
    pub newest: Option<(Time, Vec<ProcRow>)>,
}

/// A history being opened.
#[derive(Debug)]
pub(crate) struct Loading {
    pub path: PathBuf,
    rx: Receiver<Result<Loaded, String>>,
}

fn load(path: &Path) -> Result<Loaded, String> {
    let history = History::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let read = |e: openmosix_collector::Error| format!("cannot read {}: {e}", path.display());
    let version = history.data_version().ok();
    let range = history.range().map_err(read)?;
    let stops = match range {
        Some((lo, hi)) => history.snapshot_times(lo, hi).map_err(read)?,
        None => Vec::new(),
    };
    let newest = match range {
        Some((_, hi)) => {
            let t = stops.last().copied().unwrap_or(hi);
            Some((t, history.procs_at(t).map_err(read)?))
        }
        None => None,
    };
    Ok(Loaded {
        history,
        range,
        stops,
        version,
        newest,
    })
}

impl Loading {
    /// Starts opening `path`; the window of `ctx` (once set) is woken when it is done.
    pub fn start(path: PathBuf, ctx: Arc<OnceLock<egui::Context>>) -> Loading {
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        let spawned = std::thread::Builder::new()
            .name("openmosixhistory open".into())
            .spawn(move || {
                let _ = tx.send(load(&p));
                if let Some(c) = ctx.get() {
                    c.request_repaint();
                }
            });
        if let Err(e) = spawned {
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(Err(format!("cannot start a thread: {e}")));
            return Loading { path, rx };
        }
        Loading { path, rx }
    }

    /// The answer, if it is in.
    pub fn try_take(&self) -> Option<Result<Loaded, String>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(STOPPED.to_owned())),
        }
    }

    /// Waits up to `timeout` for the answer (tests).
    pub fn wait(&self, timeout: Duration) -> Option<Result<Loaded, String>> {
        match self.rx.recv_timeout(timeout) {
            Ok(r) => Some(r),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(STOPPED.to_owned())),
        }
    }
}

const STOPPED: &str = "the thread opening the history stopped";
