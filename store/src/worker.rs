//! A window's queries off its UI thread: one long-lived thread answers them, so that the
//! window keeps drawing ("loading…") while the history file is read.
//!
//! The thread owns what answers (a closure holding its own read-only [`History`], see
//! [`Watched`]), takes requests from a channel and answers through another, then wakes
//! the window through a callback (egui's `request_repaint`, say) when answers are in.
//!
//! Requests get rising ids. Of the requests waiting when the thread gets to them, only
//! the newest of each [`Query::kind`] is answered (a slider drag asks hundreds of times;
//! only the last time counts), in the order they were asked; the window drops answers
//! it no longer waits for.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::History;

/// What went wrong when the thread is gone.
pub const STOPPED: &str = "the history thread stopped";

/// A request to a [`Worker`].
pub trait Query: Sized + Send + 'static {
    /// What tells requests that replace each other apart.
    type Kind: PartialEq;

    /// The request's kind: a newer request of the same kind, waiting behind this one,
    /// is answered in its place.
    fn kind(&self) -> Self::Kind;

    /// Takes over what `older`, the request of the same kind this one replaces, asked
    /// for and must still be answered (by default nothing).
    fn absorb(&mut self, older: Self) {
        let _ = older;
    }
}

/// The UI's end of a query thread: requests of type `Q`, answers of type `R`.
#[derive(Debug)]
pub struct Worker<Q, R> {
    tx: Sender<(u64, Q)>,
    rx: Receiver<(u64, R)>,
    next_id: u64,
}

impl<Q: Query, R: Send + 'static> Worker<Q, R> {
    /// Starts the thread `name`: it answers each request with `answer` and calls `wake`
    /// whenever answers are in. It ends when the window drops this end.
    pub fn spawn(
        name: &str,
        wake: Box<dyn Fn() + Send>,
        mut answer: impl FnMut(Q) -> R + Send + 'static,
    ) -> Self {
        let (tx, req_rx) = mpsc::channel::<(u64, Q)>();
        let (reply_tx, rx) = mpsc::channel::<(u64, R)>();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                while let Ok(first) = req_rx.recv() {
                    for (id, req) in newest_of_each_kind(first, &req_rx) {
                        if reply_tx.send((id, answer(req))).is_err() {
                            return;
                        }
                    }
                    wake();
                }
            });
        // Should the thread not start, its ends of the channels are gone with the
        // closure: every request then fails with STOPPED.
        drop(spawned);
        Worker { tx, rx, next_id: 0 }
    }

    /// Sends a request; its id, or [`STOPPED`].
    pub fn ask(&mut self, query: Q) -> Result<u64, String> {
        self.next_id += 1;
        let id = self.next_id;
        self.tx.send((id, query)).map_err(|_| STOPPED.to_owned())?;
        Ok(id)
    }

    /// An answer and the id of its request, if one is in (`Err` once the thread is gone).
    pub fn try_take(&self) -> Option<Result<(u64, R), String>> {
        match self.rx.try_recv() {
            Ok(r) => Some(Ok(r)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(STOPPED.to_owned())),
        }
    }

    /// Waits up to `timeout` for an answer (tests: the window never waits).
    pub fn wait(&self, timeout: Duration) -> Option<Result<(u64, R), String>> {
        match self.rx.recv_timeout(timeout) {
            Ok(r) => Some(Ok(r)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(STOPPED.to_owned())),
        }
    }
}

/// A wake callback for a window whose handle (egui's `Context`, say) is known only from
/// its first frame on: `wake` is called with it once `handle` is set, nothing before.
pub fn once_set<T: Send + Sync + 'static>(
    handle: Arc<OnceLock<T>>,
    wake: fn(&T),
) -> Box<dyn Fn() + Send> {
    Box::new(move || {
        if let Some(h) = handle.get() {
            wake(h);
        }
    })
}

/// `first` and every request waiting behind it, keeping the newest of each kind (which
/// absorbs the one it replaces), oldest first.
fn newest_of_each_kind<Q: Query>(first: (u64, Q), rx: &Receiver<(u64, Q)>) -> Vec<(u64, Q)> {
    let mut kept: Vec<(u64, Q)> = Vec::new();
    for (id, mut req) in std::iter::once(first).chain(rx.try_iter()) {
        let kind = req.kind();
        if let Some(at) = kept.iter().position(|(_, k)| k.kind() == kind) {
            req.absorb(kept.remove(at).1);
        }
        kept.push((id, req));
    }
    kept
}

/// A history a query thread reads, and the data version it saw last.
#[derive(Debug)]
pub struct Watched {
    history: History,
    version: Option<i64>,
}

/// What [`Watched::look`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing was written since the last look.
    Same,
    /// The live link leads to another file now: open it again.
    Rotated,
    /// Something was written: this data version, to be marked seen
    /// ([`Watched::saw`]) once what changed is read.
    Written(i64),
}

impl Watched {
    /// Opens the history at `path`; the error as a sentence naming the path.
    pub fn open(path: &Path) -> Result<Watched, String> {
        let history = History::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let version = history.data_version().ok();
        Ok(Watched { history, version })
    }

    /// The history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Whether the live link moved on, or the collector wrote since the version last
    /// seen (with `force`: as if it had).
    pub fn look(&self, force: bool) -> Result<Change, String> {
        if !self.history.is_current() {
            return Ok(Change::Rotated);
        }
        let version = self.history.data_version().map_err(|e| e.to_string())?;
        if !force && self.version == Some(version) {
            return Ok(Change::Same);
        }
        Ok(Change::Written(version))
    }

    /// Marks `version` seen.
    pub fn saw(&mut self, version: i64) {
        self.version = Some(version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Q {
        Show { time: i64, rows: bool },
        Poll,
    }

    impl Query for Q {
        /// Whether it is a poll.
        type Kind = bool;
        fn kind(&self) -> bool {
            *self == Q::Poll
        }
        fn absorb(&mut self, older: Q) {
            if let (Q::Show { rows, .. }, Q::Show { rows: true, .. }) = (self, older) {
                *rows = true;
            }
        }
    }

    #[test]
    fn only_the_newest_of_each_kind_in_the_order_asked() {
        let (tx, rx) = mpsc::channel();
        for (id, q) in [
            (
                2,
                Q::Show {
                    time: 2,
                    rows: true,
                },
            ),
            (3, Q::Poll),
            (
                4,
                Q::Show {
                    time: 4,
                    rows: false,
                },
            ),
        ] {
            tx.send((id, q)).unwrap();
        }
        let first = (1, Q::Poll);
        assert_eq!(
            newest_of_each_kind(first, &rx),
            vec![
                (3, Q::Poll),
                (
                    4,
                    Q::Show {
                        time: 4,
                        rows: true
                    }
                )
            ]
        );
    }
}
