//! The plot: what is asked of the history for the range shown, the lines built from it,
//! and the load overview (HOWTO 10.7.1).
//!
//! The history is asked for the visible time range widened by a quarter on each side, in
//! buckets of `1.5 × span / width` seconds (min and max per bucket), so that a line has
//! at most two points per pixel column of the plot and a small pan needs no new query.
//! A new query is made only when the range shown leaves the range asked for, or the zoom
//! changed by more than half, and then only once the view stood still for [`DEBOUNCE`].
//!
//! The history is asked by a thread of its own ([`Worker`], with its own read-only
//! handle on the file): the UI sends a request with an id and keeps drawing the old data
//! ("loading…" beside a spinner) until the answer is in; answers to older requests are
//! dropped. "find out" and the "refresh" polls go the same way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use egui::Color32;
use egui_plot::{
    GridInput, GridMark, HoverPosition, Legend, Line, LineStyle, MarkerShape, Plot, PlotPoint,
    Points, VLine,
};
use openmosix_hpc::model::NodeId;
use openmosix_store::query::NodeStatic;
use openmosix_store::{Bucket, Checkpoint, EventRow, History, NodeRow, Time};

use crate::{FindOut, HIGH_LOAD, Overview, time_text};

/// How long the view must stand still before the history is asked again.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Red: load above [`HIGH_LOAD`].
pub const RED: Color32 = Color32::from_rgb(0xf0, 0x20, 0x20);
/// Blue: checkpoints.
pub const BLUE: Color32 = Color32::from_rgb(0x30, 0x60, 0xff);

/// Node colours: no red (high load) and no blue (checkpoints).
const PALETTE: [Color32; 10] = [
    Color32::from_rgb(0x2c, 0xa0, 0x2c),
    Color32::from_rgb(0xff, 0x9f, 0x1e),
    Color32::from_rgb(0x17, 0xbe, 0xcf),
    Color32::from_rgb(0xb4, 0x87, 0xdd),
    Color32::from_rgb(0xbc, 0xbd, 0x22),
    Color32::from_rgb(0xc0, 0x86, 0x6b),
    Color32::from_rgb(0xe3, 0x77, 0xc2),
    Color32::from_rgb(0xa0, 0xa0, 0xa0),
    Color32::from_rgb(0x8c, 0xd8, 0x8c),
    Color32::from_rgb(0xff, 0xd0, 0x70),
];

/// The colour of node `index` (its place in the node list).
pub fn node_color(index: usize) -> Color32 {
    PALETTE[index % PALETTE.len()]
}

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

/// The lines of one node in the current overview.
#[derive(Debug, Default)]
pub(crate) struct Series {
    pub node: NodeId,
    pub color: Color32,
    /// Load, or mem: one line per stretch without a gap.
    pub main: Vec<Vec<PlotPoint>>,
    /// Load: the parts above [`HIGH_LOAD`]; memory: rmem.
    pub second: Vec<Vec<PlotPoint>>,
    /// Memory: tmem.
    pub third: Vec<Vec<PlotPoint>>,
}

impl Series {
    /// Points of the main line(s).
    pub fn points(&self) -> usize {
        self.main.iter().map(Vec::len).sum()
    }
}

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
    /// "find out" requests outstanding, and answers not yet shown.
    pub findouts_asked: usize,
    pub findouts_in: Vec<FindOut>,
    /// "refresh" polls outstanding, and answers not yet looked at.
    pub polls_asked: usize,
    pub polled: Vec<Polled>,
}

/// A request to the worker.
#[derive(Debug)]
pub(crate) enum Request {
    /// The data of `from..=to` in buckets of `bucket` seconds.
    Plot {
        id: u64,
        from: Time,
        to: Time,
        bucket: Time,
    },
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

/// The answer to [`Request::Poll`].
#[derive(Debug)]
pub(crate) enum Polled {
    /// Nothing new.
    Same,
    /// The live link points to another file now.
    Rotated,
    /// New data (or the first look): the file read, the nodes and the range.
    Changed(PathBuf, Vec<NodeRow>, Option<(Time, Time)>),
    Failed(String),
}

/// The worker's answers.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The answer to the plot request `id`.
    Plot {
        id: u64,
        data: Result<Data, String>,
    },
    FindOut(FindOut),
    Polled(Polled),
}

/// The thread that owns a read-only [`History`] of its own and answers the range
/// queries, so that the UI thread never waits for the database.
#[derive(Debug)]
pub(crate) struct Worker {
    tx: Sender<Request>,
    rx: Receiver<Reply>,
    next_id: u64,
}

impl Worker {
    /// Starts a worker on the history at `path` (it opens the file itself); it wakes the
    /// window up through `ctx` (once the first frame set it) when an answer is in.
    pub fn spawn(path: PathBuf, ctx: Arc<OnceLock<egui::Context>>) -> Worker {
        let (tx, req_rx) = mpsc::channel::<Request>();
        let (reply_tx, rx) = mpsc::channel::<Reply>();
        let spawned = std::thread::Builder::new()
            .name("openmosixanalyzer history".into())
            .spawn(move || {
                let open = || History::open(&path).map_err(|e| format!("{}: {e}", path.display()));
                let mut history = Err(String::new());
                let mut version = None;
                while let Ok(first) = req_rx.recv() {
                    // Opened at the first request (Analyzer::open sends a poll at once);
                    // tried again at every later one until it works (a locked file, a
                    // link the collector has not made yet).
                    if history.is_err() {
                        history = open();
                        version = history.as_ref().ok().and_then(|h| h.data_version().ok());
                    }
                    // Every "find out" is answered; of the plot requests only the newest.
                    let mut plot = None;
                    let mut findouts = Vec::new();
                    let mut polls = Vec::new();
                    for req in std::iter::once(first).chain(req_rx.try_iter()) {
                        match req {
                            Request::Plot {
                                id,
                                from,
                                to,
                                bucket,
                            } => {
                                plot = Some((id, from, to, bucket));
                            }
                            Request::FindOut { node, from, to } => findouts.push((node, from, to)),
                            Request::Poll { force } => polls.push(force),
                        }
                    }
                    let mut replies = Vec::new();
                    for force in polls {
                        replies.push(Reply::Polled(match &history {
                            Ok(h) => poll(h, &mut version, force),
                            Err(e) => Polled::Failed(e.clone()),
                        }));
                    }
                    for (node, from, to) in findouts {
                        replies.push(Reply::FindOut(match &history {
                            Ok(h) => FindOut::new(h, node, from, to),
                            Err(e) => FindOut::failed(node, from, to, e.clone()),
                        }));
                    }
                    if let Some((id, from, to, bucket)) = plot {
                        let data = match &history {
                            Ok(h) => query(h, from, to, bucket).map_err(|e| e.to_string()),
                            Err(e) => Err(e.clone()),
                        };
                        replies.push(Reply::Plot { id, data });
                    }
                    for r in replies {
                        if reply_tx.send(r).is_err() {
                            return;
                        }
                    }
                    if let Some(ctx) = ctx.get() {
                        ctx.request_repaint();
                    }
                }
            });
        // Should the thread not start, the closure (and its ends of the channels) is gone:
        // every request then fails with "the history thread stopped".
        drop(spawned);
        Worker { tx, rx, next_id: 0 }
    }

    fn send(&mut self, from: Time, to: Time, bucket: Time) -> Result<u64, String> {
        self.next_id += 1;
        let id = self.next_id;
        self.tx
            .send(Request::Plot {
                id,
                from,
                to,
                bucket,
            })
            .map_err(|_| STOPPED.to_owned())?;
        Ok(id)
    }
}

const STOPPED: &str = "the history thread stopped";

/// [`Request::Poll`]: `version` is the data version last seen by this connection.
fn poll(h: &History, version: &mut Option<i64>, force: bool) -> Polled {
    if !h.is_current() {
        return Polled::Rotated;
    }
    let v = match h.data_version() {
        Ok(v) => v,
        Err(e) => return Polled::Failed(e.to_string()),
    };
    if !force && *version == Some(v) {
        return Polled::Same;
    }
    match (h.nodes(), h.range()) {
        (Ok(n), Ok(r)) => {
            *version = Some(v);
            Polled::Changed(h.file().to_path_buf(), n, r)
        }
        (Err(e), _) | (_, Err(e)) => Polled::Failed(e.to_string()),
    }
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
        self.asked.is_some() || self.findouts_asked > 0
    }

    /// Whether anything is outstanding, a poll included.
    pub fn busy(&self) -> bool {
        self.loading() || self.polls_asked > 0
    }

    /// Asks the worker whether the database changed; false without a worker (or while
    /// a poll is outstanding).
    pub fn ask_poll(&mut self, force: bool) -> bool {
        let Some(w) = &self.worker else {
            return false;
        };
        if self.polls_asked > 0 && !force {
            return true;
        }
        if w.tx.send(Request::Poll { force }).is_ok() {
            self.polls_asked += 1;
        } else {
            self.polled.push(Polled::Failed(STOPPED.to_owned()));
        }
        true
    }

    /// Asks the worker for "find out"; false without a worker.
    pub fn ask_find_out(&mut self, node: Option<NodeId>, from: Time, to: Time) -> bool {
        let Some(w) = &self.worker else {
            return false;
        };
        if w.tx.send(Request::FindOut { node, from, to }).is_ok() {
            self.findouts_asked += 1;
        } else {
            self.findouts_in
                .push(FindOut::failed(node, from, to, STOPPED.to_owned()));
        }
        true
    }

    /// Takes in an answer of the worker; answers to older requests are dropped.
    fn receive(&mut self, reply: Reply, overview: Overview) -> Result<(), String> {
        let data = match reply {
            Reply::FindOut(f) => {
                self.findouts_asked = self.findouts_asked.saturating_sub(1);
                self.findouts_in.push(f);
                return Ok(());
            }
            Reply::Polled(p) => {
                self.polls_asked = self.polls_asked.saturating_sub(1);
                self.polled.push(p);
                return Ok(());
            }
            Reply::Plot { id, data } => {
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
        loop {
            let Some(w) = &self.worker else {
                return result;
            };
            match w.rx.try_recv() {
                Ok(reply) => {
                    if let Err(e) = self.receive(reply, overview) {
                        result = Err(e);
                    }
                }
                Err(TryRecvError::Empty) => return result,
                Err(TryRecvError::Disconnected) => {
                    if self.busy() {
                        self.asked = None;
                        self.findouts_asked = 0;
                        self.polls_asked = 0;
                        result = Err(STOPPED.to_owned());
                    }
                    return result;
                }
            }
        }
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
            match w.rx.recv_timeout(left) {
                Ok(reply) => self.receive(reply, overview)?,
                Err(RecvTimeoutError::Timeout) => return Ok(false),
                Err(RecvTimeoutError::Disconnected) => {
                    self.asked = None;
                    self.findouts_asked = 0;
                    self.polls_asked = 0;
                    return Err(STOPPED.to_owned());
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
        match w.send(from, to, bucket) {
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
        self.series = d
            .buckets
            .iter()
            .enumerate()
            .map(|(i, (&node, b))| {
                let mut s = match overview {
                    Overview::Load => load_series(b, d.bucket),
                    Overview::Memory => {
                        let statics = d.statics.get(&node).map_or(&[][..], Vec::as_slice);
                        crate::memory::memory_series(b, statics, d.from, d.to, d.bucket)
                    }
                };
                s.node = node;
                s.color = node_color(i);
                s
            })
            .collect();
        self.markers = d
            .events
            .iter()
            .map(|e| {
                let t = e.time_ms as f64 / 1000.0;
                let y = d
                    .buckets
                    .get(&e.node)
                    .and_then(|b| {
                        let at = b.partition_point(|b| b.time + b.width <= t as Time);
                        b.get(at).filter(|b| b.time <= t as Time)
                    })
                    .map_or(0.0, |b| match overview {
                        Overview::Load => b.max_load,
                        Overview::Memory => b.max_mem as f64 / MIB,
                    });
                PlotPoint::new(t, y)
            })
            .collect();
    }
}

/// Bytes per MiB.
pub const MIB: f64 = (1u64 << 20) as f64;

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

/// Min/max lines through `buckets`, split where a gap is: at most two points a bucket.
pub(crate) fn minmax_lines(
    buckets: &[Bucket],
    bucket: Time,
    value: impl Fn(&Bucket) -> (f64, f64),
) -> Vec<Vec<PlotPoint>> {
    let mut out: Vec<Vec<PlotPoint>> = Vec::new();
    let mut cur: Vec<PlotPoint> = Vec::new();
    let mut last: Option<Time> = None;
    for b in buckets {
        let w = b.width.max(bucket).max(1);
        if last.is_some_and(|l| b.time - l > 2 * w) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        last = Some(b.time);
        let (lo, hi) = value(b);
        let t = b.time as f64;
        let wf = w as f64;
        if b.count <= 1 || lo == hi {
            cur.push(PlotPoint::new(t + wf / 2.0, (lo + hi) / 2.0));
        } else {
            // Continue from the previous point towards its nearer extreme first.
            let prev = cur.last().map_or(lo, |p| p.y);
            let (a, z) = if (prev - hi).abs() < (prev - lo).abs() {
                (hi, lo)
            } else {
                (lo, hi)
            };
            cur.push(PlotPoint::new(t + wf * 0.25, a));
            cur.push(PlotPoint::new(t + wf * 0.75, z));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The parts of `lines` above `limit`, cut where they cross it.
pub(crate) fn above(lines: &[Vec<PlotPoint>], limit: f64) -> Vec<Vec<PlotPoint>> {
    let mut out = Vec::new();
    for line in lines {
        let mut cur: Vec<PlotPoint> = Vec::new();
        for pair in line.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let cross = || {
                let f = (limit - a.y) / (b.y - a.y);
                PlotPoint::new(a.x + f * (b.x - a.x), limit)
            };
            match (a.y > limit, b.y > limit) {
                (true, true) => {
                    if cur.is_empty() {
                        cur.push(a);
                    }
                    cur.push(b);
                }
                (true, false) => {
                    if cur.is_empty() {
                        cur.push(a);
                    }
                    cur.push(cross());
                    out.push(std::mem::take(&mut cur));
                }
                (false, true) => {
                    cur.push(cross());
                    cur.push(b);
                }
                (false, false) => {}
            }
        }
        if cur.len() > 1 {
            out.push(cur);
        }
    }
    out
}

fn load_series(buckets: &[Bucket], bucket: Time) -> Series {
    let main = minmax_lines(buckets, bucket, |b| (b.min_load, b.max_load));
    let second = above(&main, HIGH_LOAD);
    Series {
        main,
        second,
        ..Series::default()
    }
}

/// Grid marks at round times (seconds, minutes, hours, days).
#[allow(clippy::needless_pass_by_value)] // egui_plot's grid spacer signature
fn time_grid(input: GridInput) -> Vec<GridMark> {
    const STEPS: [f64; 16] = [
        1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
        43200.0, 86400.0, 172_800.0, 604_800.0,
    ];
    let (lo, hi) = input.bounds;
    let min_step = input.base_step_size * 8.0;
    let step = STEPS
        .iter()
        .copied()
        .find(|s| *s >= min_step)
        .unwrap_or_else(|| (min_step / 86400.0).ceil() * 86400.0);
    let mut out = Vec::new();
    let mut t = (lo / step).floor() * step;
    while t <= hi && out.len() < 1000 {
        // Every fifth line a bit thicker.
        let big = (t / (step * 5.0)).fract().abs() < 1e-9;
        out.push(GridMark {
            value: t,
            step_size: if big { step * 5.0 } else { step },
        });
        t += step;
    }
    out
}

/// Axis text of a time: `HH:MM` (with seconds or the date when that says more).
pub(crate) fn axis_time(mark: GridMark) -> String {
    let t = mark.value.round() as Time;
    let full = openmosix_store::utc_text(t);
    // "YYYY-mm-dd HH:MM:SS UTC"
    if mark.step_size >= 86400.0 {
        full[5..10].to_owned()
    } else if mark.step_size < 60.0 {
        full[11..19].to_owned()
    } else if t.rem_euclid(86400) == 0 {
        format!("{}\n{}", &full[11..16], &full[5..10])
    } else {
        full[11..16].to_owned()
    }
}

impl crate::Analyzer {
    /// Draws the plot of the current overview; records the range shown.
    pub(crate) fn draw_plot(&mut self, ui: &mut egui::Ui) {
        let overview = self.overview;
        let st = &self.plot;
        let pending = self.plot.pending;
        let unit = match overview {
            Overview::Load => "load (100 = one busy CPU)",
            Overview::Memory => "MiB",
        };
        let events = st.data.as_ref().map_or(&[][..], |d| d.events.as_slice());
        let (home_lo, home_hi) = st.home;
        let mut plot = Plot::new(("openmosixanalyzer plot", st.generation, overview))
            .legend(Legend::default())
            .default_x_bounds(home_lo, home_hi)
            .include_y(0.0)
            .allow_zoom([true, false])
            .allow_drag([true, false])
            .allow_scroll([true, false])
            .x_grid_spacer(time_grid)
            .x_axis_formatter(|m, _| axis_time(m))
            .y_axis_label(unit)
            .label_formatter(move |pos| match pos {
                HoverPosition::NearDataPoint {
                    plot_name,
                    position,
                    index,
                } => {
                    if *plot_name == "events" {
                        events.get(*index).map(|e| {
                            format!(
                                "{}\nnode {}: {} — {}",
                                time_text(e.time_ms.div_euclid(1000)),
                                e.node,
                                e.kind,
                                e.text
                            )
                        })
                    } else {
                        Some(format!(
                            "{plot_name}\n{}\n{:.0} {unit}",
                            time_text(position.x.round() as Time),
                            position.y
                        ))
                    }
                }
                HoverPosition::Elsewhere { position } => Some(format!(
                    "{}\nright-click: show processes at this time",
                    time_text(position.x.round() as Time)
                )),
            });
        if overview == Overview::Load {
            plot = plot.include_y(100.0);
        }
        let resp = plot.show(ui, |pu| {
            if let Some((lo, hi)) = pending {
                pu.set_plot_bounds_x(lo..=hi);
            }
            // Keep fitting y to the data while x is panned and zoomed.
            let auto = pu.auto_bounds();
            if !auto.y {
                pu.set_auto_bounds([auto.x, true]);
            }
            for s in &st.series {
                let name = format!("node {}", s.node);
                for line in &s.main {
                    pu.line(
                        Line::new(name.clone(), line.as_slice())
                            .color(s.color)
                            .width(1.5),
                    );
                }
                match overview {
                    Overview::Load => {
                        for line in &s.second {
                            pu.line(
                                Line::new(format!("load > {HIGH_LOAD}"), line.as_slice())
                                    .color(RED)
                                    .width(2.0)
                                    .allow_hover(false),
                            );
                        }
                    }
                    Overview::Memory => {
                        for line in &s.second {
                            pu.line(
                                Line::new("rmem (dashed)", line.as_slice())
                                    .color(s.color.gamma_multiply(0.8))
                                    .style(LineStyle::dashed_dense())
                                    .width(1.0),
                            );
                        }
                        for line in &s.third {
                            pu.line(
                                Line::new("tmem (dotted)", line.as_slice())
                                    .color(s.color.gamma_multiply(0.6))
                                    .style(LineStyle::dotted_loose())
                                    .width(1.0),
                            );
                        }
                    }
                }
            }
            if let Some(d) = &st.data {
                for c in &d.checkpoints {
                    pu.add(
                        VLine::new("checkpoint", c.time_ms as f64 / 1000.0)
                            .color(BLUE)
                            .width(1.5),
                    );
                }
            }
            if !st.markers.is_empty() {
                pu.add(
                    Points::new("events", st.markers.as_slice())
                        .shape(MarkerShape::Diamond)
                        .radius(5.0)
                        .filled(true)
                        .color(Color32::from_rgb(0xff, 0xff, 0xff)),
                );
            }
        });
        if resp.response.secondary_clicked()
            && let Some(pos) = resp.response.interact_pointer_pos()
        {
            let t = resp.transform.value_from_position(pos).x.round() as Time;
            self.history_request = Some(t);
        }
        let b = resp.transform.bounds();
        let visible = (b.min()[0], b.max()[0]);
        self.plot.pending = None;
        self.plot.visible = Some(visible);
        self.plot.width = resp.response.rect.width();
    }
}
