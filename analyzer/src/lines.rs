//! The plot's geometry: the lines drawn for each node, built from the buckets the
//! history answered, and where the event markers sit.

use egui::Color32;
use egui_plot::PlotPoint;
use openmosix_hpc::model::NodeId;
use openmosix_store::{Bucket, Time};

use crate::draw::node_color;
use crate::query::Data;
use crate::{HIGH_LOAD, Overview};

/// Bytes per MiB.
pub const MIB: f64 = (1u64 << 20) as f64;

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

/// The lines of every node of `d` in `overview`.
pub(crate) fn series(d: &Data, overview: Overview) -> Vec<Series> {
    d.buckets
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
        .collect()
}

/// Where the events of `d` are marked (same order): on their node's line, at the top
/// of the bucket they fall in (0 where the node has none).
pub(crate) fn markers(d: &Data, overview: Overview) -> Vec<PlotPoint> {
    d.events
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
        .collect()
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
