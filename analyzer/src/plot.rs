//! The plot's state: what is asked of the history for the range shown, and the answers
//! in hand (HOWTO 10.7.1).
//!
//! The history is asked for the visible time range widened by a quarter on each side, in
//! buckets of `1.5 × span / width` seconds (min and max per bucket), so that a line has
//! at most two points per pixel column of the plot and a small pan needs no new query.
//! A new query is made only when the range shown leaves the range asked for, or the zoom
//! changed by more than half, and then only once the view stood still for [`DEBOUNCE`].
//!
//! The history is asked by a thread of its own ([`crate::query`], with its own read-only
//! handle on the file): the UI sends a request, notes its id and keeps drawing the old
//! data ("loading…" beside a spinner) until the answer is in; answers to older requests
//! are dropped. "find out" and the "refresh" polls go the same way.

use std::time::{Duration, Instant};

use egui_plot::PlotPoint;
use openmosix_hpc::model::NodeId;
use openmosix_store::Time;

use crate::lines::{Series, markers, series};
use crate::query::{Data, Polled, Reply, Request, Worker};
use crate::{FindOut, Overview};

/// How long the view must stand still before the history is asked again.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// The plot's state between frames.
#[derive(Debug, Default)]
pub(crate) struct PlotState {
    /// Part of the plot's id: a new history starts a new plot (and its default view).
    pub generation: u64,
    /// The default x range (s): 12 h before the newest sample.
    pub home: (f64, f64),
    /// An x range to set on the next frame.
    pub pending: Option<(f64, f64)>,
    /// The x range shown in the last frame, and the plot's width in points.
    pub visible: Option<(f64, f64)>,
    pub width: f32,
    pub data: Option<Data>,
    pub series: Vec<Series>,
    /// Event markers (same order as `data.events`).
    pub markers: Vec<PlotPoint>,
    /// Since when the view wants a new query.
    pub dirty_since: Option<Instant>,
    /// Query on the next frame, without waiting.
    pub force: bool,
    /// Queries answered (for tests and the benchmark).
    pub queries: u64,
    /// The thread that opens and asks the history (started by `Analyzer::open`).
    pub worker: Option<Worker>,
    /// The request outstanding: its id and what it asked for (from, to, bucket).
    pub asked: Option<(u64, (Time, Time, Time))>,
    /// "find out" requests outstanding (the newest id per node), and answers not yet
    /// shown.
    pub findouts_asked: Vec<(Option<NodeId>, u64)>,
    pub findouts_in: Vec<FindOut>,
    /// The newest "refresh" poll outstanding, and answers not yet looked at.
    pub poll_asked: Option<u64>,
    pub polled: Vec<Polled>,
}

/// What to ask for when `visible` is shown `width` points wide, within the data range.
fn wanted(visible: (f64, f64), width: f32, range: (Time, Time)) -> (Time, Time, Time) {
    let span = (visible.1 - visible.0).max(1.0);
    let bucket = (1.5 * span / f64::from(width.max(50.0))).ceil().max(1.0) as Time;
    let from = ((visible.0 - span / 4.0).floor() as Time).max(range.0);
    let to = ((visible.1 + span / 4.0).ceil() as Time).min(range.1);
    (from, to, bucket)
}

impl PlotState {
    /// Whether the data in hand (or asked for) no longer fits the range shown.
    fn stale(&self, range: Option<(Time, Time)>) -> bool {
        let have = match self.asked {
            Some((_, a)) => Some(a),
            None => self.data.as_ref().map(|d| (d.from, d.to, d.bucket)),
        };
        let (Some((from, to, have_bucket)), Some(v), Some(r)) = (have, self.visible, range) else {
            return have.is_none() && self.visible.is_some() && range.is_some();
        };
        let (_, _, bucket) = wanted(v, self.width, r);
        let lo = if from <= r.0 { f64::MIN } else { from as f64 };
        let hi = if to >= r.1 { f64::MAX } else { to as f64 };
        let ratio = bucket as f64 / have_bucket.max(1) as f64;
        v.0 < lo || v.1 > hi || !(0.66..=1.5).contains(&ratio)
    }

    /// Whether a request is outstanding.
    pub fn loading(&self) -> bool {
        self.asked.is_some() || !self.findouts_asked.is_empty()
    }

    /// Whether anything is outstanding, a poll included.
    pub fn busy(&self) -> bool {
        self.loading() || self.poll_asked.is_some()
    }

    /// Forgets every request outstanding (the thread is gone).
    fn stopped(&mut self) {
        self.asked = None;
        self.findouts_asked.clear();
        self.poll_asked = None;
    }

    /// Asks the worker whether the database changed; false without a worker (or while
    /// a poll is outstanding).
    pub fn ask_poll(&mut self, force: bool) -> bool {
        let Some(w) = &mut self.worker else {
            return false;
        };
        if self.poll_asked.is_some() && !force {
            return true;
        }
        match w.ask(Request::Poll { force }) {
            Ok(id) => self.poll_asked = Some(id),
            Err(e) => self.polled.push(Polled::Failed(e)),
        }
        true
    }

    /// Asks the worker for "find out"; false without a worker.
    pub fn ask_find_out(&mut self, node: Option<NodeId>, from: Time, to: Time) -> bool {
        let Some(w) = &mut self.worker else {
            return false;
        };
        match w.ask(Request::FindOut { node, from, to }) {
            Ok(id) => {
                self.findouts_asked.retain(|(n, _)| *n != node);
                self.findouts_asked.push((node, id));
            }
            Err(e) => self.findouts_in.push(FindOut::failed(node, from, to, e)),
        }
        true
    }

    /// Takes in the answer to request `id`; answers to older requests are dropped.
    fn receive(&mut self, id: u64, reply: Reply, overview: Overview) -> Result<(), String> {
        let data = match reply {
            Reply::FindOut(f) => {
                self.findouts_asked
                    .retain(|&(node, asked)| node != f.node || asked > id);
                self.findouts_in.push(f);
                return Ok(());
            }
            Reply::Polled(p) => {
                if self.poll_asked.is_some_and(|asked| asked <= id) {
                    self.poll_asked = None;
                }
                self.polled.push(p);
                return Ok(());
            }
            Reply::Plot(data) => {
                if self.asked.is_none_or(|(asked, _)| asked != id) {
                    return Ok(());
                }
                data
            }
        };
        self.asked = None;
        self.data = Some(data?);
        self.queries += 1;
        self.rebuild(overview);
        Ok(())
    }

    /// Takes in the answers the worker has sent so far.
    pub fn receive_all(&mut self, overview: Overview) -> Result<(), String> {
        let mut result = Ok(());
        while let Some(answer) = self.worker.as_ref().and_then(Worker::try_take) {
            match answer {
                Ok((id, reply)) => {
                    if let Err(e) = self.receive(id, reply, overview) {
                        result = Err(e);
                    }
                }
                Err(e) => {
                    if self.busy() {
                        self.stopped();
                        result = Err(e);
                    }
                    return result;
                }
            }
        }
        result
    }

    /// Blocks until the worker answered the outstanding request (tests only): true when
    /// nothing is outstanding any more.
    pub fn wait_idle(&mut self, overview: Overview, timeout: Duration) -> Result<bool, String> {
        let end = Instant::now() + timeout;
        while self.busy() {
            let Some(w) = &self.worker else {
                return Ok(false);
            };
            let left = end.saturating_duration_since(Instant::now());
            match w.wait(left) {
                Some(Ok((id, reply))) => self.receive(id, reply, overview)?,
                None => return Ok(false),
                Some(Err(e)) => {
                    self.stopped();
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// Takes in the worker's answers, and asks it again if the view needs it and stood
    /// still long enough. Returns how long to wait before looking again, if a request is
    /// due later.
    pub fn update(
        &mut self,
        range: Option<(Time, Time)>,
        overview: Overview,
        now: Instant,
    ) -> Result<Option<Duration>, String> {
        let received = self.receive_all(overview);
        if !self.force && !self.stale(range) {
            self.dirty_since = None;
            return received.map(|()| None);
        }
        let since = *self.dirty_since.get_or_insert(now);
        let waited = now.duration_since(since);
        if !self.force && (self.data.is_some() || self.asked.is_some()) && waited < DEBOUNCE {
            return received.map(|()| Some(DEBOUNCE - waited));
        }
        self.force = false;
        self.dirty_since = None;
        let (Some(v), Some(r)) = (self.visible, range) else {
            self.asked = None;
            self.data = None;
            self.series.clear();
            self.markers.clear();
            return received.map(|()| None);
        };
        let (from, to, bucket) = wanted(v, self.width, r);
        let Some(w) = &mut self.worker else {
            return received.map(|()| None);
        };
        match w.ask(Request::Plot { from, to, bucket }) {
            Ok(id) => self.asked = Some((id, (from, to, bucket))),
            Err(e) => {
                self.asked = None;
                return Err(e);
            }
        }
        received.map(|()| None)
    }

    /// Builds the lines of `overview` from the data in hand.
    pub fn rebuild(&mut self, overview: Overview) {
        let Some(d) = &self.data else {
            self.series.clear();
            self.markers.clear();
            return;
        };
        self.series = series(d, overview);
        self.markers = markers(d, overview);
    }
}
