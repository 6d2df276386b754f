//! The browser's side of the worker: what it asks (the processes at a time, where a
//! pid was, whether the live history changed, a file to open) and how it takes the
//! answers in, dropping those it no longer waits for.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use openmosix_store::{ProcRow, Time};

use super::{HistoryBrowser, POLL_EVERY};
use crate::rows::where_sentence;
use crate::worker::{self, Loaded, Polled, Reply, Request, Shown, Worker};

impl HistoryBrowser {
    /// Takes in the answers that are in.
    pub(super) fn take_answers(&mut self) {
        while let Some(answer) = self.worker.as_ref().and_then(Worker::try_take) {
            self.take_in(answer);
        }
    }

    pub(super) fn take_in(&mut self, answer: Result<(u64, Reply), String>) {
        match answer {
            Ok((id, Reply::Opened(loaded))) => self.opened(id, loaded),
            Ok((id, Reply::Shown(shown))) => self.shown(id, shown),
            Ok((id, Reply::Polled(polled))) => self.polled(id, polled),
            Err(e) => {
                // The thread is gone: nothing more will come.
                self.error = Some(e);
                self.worker = None;
                self.opening = None;
                self.rows_asked = None;
                self.where_asked = None;
                self.poll_asked = None;
            }
        }
    }

    /// Shows a history the thread opened (its newest snapshot, or the time asked for
    /// meanwhile); on failure the history shown before (if any) stays. A file opened
    /// for an older request (File → open… twice in a row) is the worker's history now
    /// too: it is shown until the newest one is in.
    fn opened(&mut self, id: u64, loaded: Result<Loaded, String>) {
        let newest = self.opening == Some(id);
        if newest {
            self.opening = None;
        }
        let l = match loaded {
            Ok(l) => l,
            Err(e) => {
                if newest {
                    self.error = Some(e);
                }
                return;
            }
        };
        self.path = l.path;
        self.file = Some(l.file);
        self.range = l.range;
        self.stops = l.stops;
        self.error = None;
        self.follow = true;
        // Answers still on their way were read from the file open before.
        self.rows_asked = None;
        self.where_asked = None;
        self.poll_asked = None;
        if let Some(t) = self.pending_time.take_if(|_| newest) {
            self.set_time(t);
        } else if let Some((t, rows)) = l.newest {
            self.time = t;
            self.rows = rows;
            self.answer_where();
        } else {
            self.rows.clear();
        }
    }

    /// The processes at a time and where the pid was, if they are still wanted.
    fn shown(&mut self, id: u64, shown: Shown) {
        self.answers += 1;
        if let Some(rows) = shown.rows
            && self.rows_asked.is_some_and(|asked| asked <= id)
        {
            self.rows_asked = None;
            self.take_rows(rows);
        }
        if let Some((pid, place)) = shown.place
            && self.where_asked.is_some_and(|asked| asked <= id)
        {
            self.where_asked = None;
            self.where_answer = Some(place_sentence(pid, place));
        }
    }

    fn take_rows(&mut self, rows: Result<Vec<ProcRow>, String>) {
        match rows {
            Ok(rows) => {
                self.rows = rows;
                self.error = None;
            }
            Err(e) => self.error = Some(format!("cannot read the processes: {e}")),
        }
    }

    /// The answer to a "refresh" poll.
    fn polled(&mut self, id: u64, polled: Polled) {
        if self.poll_asked != Some(id) {
            return;
        }
        self.poll_asked = None;
        match polled {
            Polled::Same => {}
            // The live link moved on: open its new file.
            Polled::Rotated => self.start_opening(self.path.clone()),
            Polled::Failed(e) => {
                self.error = Some(format!("cannot read {}: {e}", self.path.display()));
            }
            Polled::Changed {
                range,
                stops,
                shown,
            } => {
                self.range = range;
                self.stops = stops;
                self.error = None;
                let Some(shown) = shown else {
                    self.rows.clear();
                    return;
                };
                // Unless the slider or the pid field asked again since.
                if self.rows_asked.is_none_or(|asked| asked < id) {
                    self.rows_asked = None;
                    self.time = shown.time;
                    if let Some(rows) = shown.rows {
                        self.take_rows(rows);
                    }
                }
                if self.where_asked.is_none_or(|asked| asked < id)
                    && let Some((pid, place)) = shown.place
                    && self.where_pid.trim().parse() == Ok(pid)
                {
                    self.where_answer = Some(place_sentence(pid, place));
                }
            }
        }
    }

    /// Sends a request to the worker (started at the first); its id, or None when the
    /// thread is gone (then the window says so).
    fn ask(&mut self, request: Request) -> Option<u64> {
        let ctx = &self.ctx;
        let worker = self
            .worker
            .get_or_insert_with(|| worker::spawn(Arc::clone(ctx)));
        match worker.ask(request) {
            Ok(id) => Some(id),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    pub(super) fn start_opening(&mut self, path: PathBuf) {
        self.opening = self.ask(Request::Open(path));
    }

    /// Asks the worker for the processes at `t` (and where the pid asked about was).
    pub(super) fn show_time(&mut self, t: Time) {
        self.time = t;
        if self.file.is_none() {
            return;
        }
        let pid = self.where_pid.trim().parse().ok();
        if let Some(id) = self.ask(Request::Show {
            time: t,
            rows: true,
            pid,
        }) {
            self.rows_asked = Some(id);
            if pid.is_some() {
                self.where_asked = Some(id);
            }
        }
    }

    /// Asks the worker where the pid typed was at the time shown.
    pub(super) fn answer_where(&mut self) {
        let text = self.where_pid.trim();
        self.where_asked = None;
        self.where_answer = None;
        if text.is_empty() {
            return;
        }
        let Ok(pid) = text.parse::<i32>() else {
            self.where_answer = Some("a pid is a number".to_owned());
            return;
        };
        if self.file.is_none() {
            return;
        }
        let time = self.time;
        self.where_asked = self.ask(Request::Show {
            time,
            rows: false,
            pid: Some(pid),
        });
    }

    /// With "refresh" on, at most once per [`POLL_EVERY`] (and one at a time): asks the
    /// worker whether the live link moved on to a new file after a rotation, or the
    /// collector wrote something, and if so for what is new.
    pub(super) fn poll(&mut self, now: Instant) {
        if !self.refresh
            || self.opening.is_some()
            || self.poll_asked.is_some()
            || self.file.is_none()
            || self.last_poll.is_some_and(|l| now - l < POLL_EVERY)
        {
            return;
        }
        self.last_poll = Some(now);
        let (time, follow) = (self.time, self.follow);
        let pid = self.where_pid.trim().parse().ok();
        self.poll_asked = self.ask(Request::Poll { time, follow, pid });
    }
}

/// The "where was pid" answer, or why there is none.
fn place_sentence(pid: i32, place: Result<Vec<ProcRow>, String>) -> String {
    match place {
        Ok(found) => where_sentence(pid, &found),
        Err(e) => format!("cannot tell: {e}"),
    }
}
