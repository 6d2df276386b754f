//! The plot: what is asked of the history for the range shown, the lines built from it,
//! and the load overview (HOWTO 10.7.1).
//!
//! The history is asked for the visible time range widened by a quarter on each side, in
//! buckets of `1.5 × span / width` seconds (min and max per bucket), so that a line has
//! at most two points per pixel column of the plot and a small pan needs no new query.
//! A new query is made only when the range shown leaves the range asked for, or the zoom
//! changed by more than half, and then only once the view stood still for [`DEBOUNCE`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use egui::Color32;
use egui_plot::{
    GridInput, GridMark, HoverPosition, Legend, Line, LineStyle, MarkerShape, Plot, PlotPoint,
    Points, VLine,
};
use openmosix_agent::model::NodeId;
use openmosix_collector::query::NodeStatic;
use openmosix_collector::{Bucket, Checkpoint, EventRow, History, Time};

use crate::{HIGH_LOAD, Overview, time_text};

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
    /// Queries made (for tests and the benchmark).
    pub queries: u64,
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
    /// Whether the data in hand no longer fits the range shown.
    fn stale(&self, range: Option<(Time, Time)>) -> bool {
        let (Some(d), Some(v), Some(r)) = (&self.data, self.visible, range) else {
            return self.data.is_none() && self.visible.is_some() && range.is_some();
        };
        let (_, _, bucket) = wanted(v, self.width, r);
        let lo = if d.from <= r.0 {
            f64::MIN
        } else {
            d.from as f64
        };
        let hi = if d.to >= r.1 { f64::MAX } else { d.to as f64 };
        let ratio = bucket as f64 / d.bucket.max(1) as f64;
        v.0 < lo || v.1 > hi || !(0.66..=1.5).contains(&ratio)
    }

    /// Asks the history again if the view needs it and stood still long enough.
    /// Returns how long to wait before looking again, if a query is due later.
    pub fn update(
        &mut self,
        history: &History,
        range: Option<(Time, Time)>,
        overview: Overview,
        now: Instant,
    ) -> Result<Option<Duration>, String> {
        if !self.force && !self.stale(range) {
            self.dirty_since = None;
            return Ok(None);
        }
        let since = *self.dirty_since.get_or_insert(now);
        let waited = now.duration_since(since);
        if !self.force && self.data.is_some() && waited < DEBOUNCE {
            return Ok(Some(DEBOUNCE - waited));
        }
        self.force = false;
        self.dirty_since = None;
        let (Some(v), Some(r)) = (self.visible, range) else {
            self.data = None;
            self.series.clear();
            self.markers.clear();
            return Ok(None);
        };
        let (from, to, bucket) = wanted(v, self.width, r);
        self.data = Some(query(history, from, to, bucket).map_err(|e| e.to_string())?);
        self.queries += 1;
        self.rebuild(overview);
        Ok(None)
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

fn query(
    history: &History,
    from: Time,
    to: Time,
    bucket: Time,
) -> openmosix_collector::Result<Data> {
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
    let full = openmosix_collector::utc_text(t);
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
                HoverPosition::Elsewhere { position } => {
                    Some(time_text(position.x.round() as Time))
                }
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
        let b = resp.transform.bounds();
        let visible = (b.min()[0], b.max()[0]);
        self.plot.pending = None;
        self.plot.visible = Some(visible);
        self.plot.width = resp.response.rect.width();
    }
}
