//! The history thread of a Prometheus source: it answers the same requests as the
//! SQLite one ([`crate::query::Request`]) with queries of the collector's metrics.
//!
//! - The range: the oldest and newest value of
//!   `openmosix_collector_last_tick_timestamp_seconds` within [`LOOKBACK`] (tick times,
//!   as the SQLite history has them); the nodes: the `openmosix_node_up` series of that
//!   range; the sample interval: ticks scraped in the last five minutes of the range.
//! - A plot: `min/max/avg/count_over_time(…[B])` of load, mem and rmem with step B, so
//!   that each step is one bucket of B seconds, as `History::aggregate_all` answers; B is
//!   never below the sample interval (a narrower bucket would hold no scrape).
//! - Checkpoints and events: the gauges whose value is the mark's time
//!   (`openmosix_collector_last_checkpoint_timestamp_seconds{note}`,
//!   `openmosix_node_last_event_timestamp_seconds{node,kind}`): each new value is a
//!   mark. Two marks of one kind and node within one scrape show as the newest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use openmosix_hpc::model::NodeId;
use openmosix_store::query::NodeStatic;
use openmosix_store::worker::{self, Worker};
use openmosix_store::{Bucket, Checkpoint, EventRow, NodeRow, Stats, Time};

use super::{Client, MAX_POINTS, Series, scalar};
use crate::FindOut;
use crate::query::{Data, Polled, Reply, Request};

/// How far back the range is looked for (s).
pub const LOOKBACK: Time = 31 * 86_400;
const TICK: &str = "openmosix_collector_last_tick_timestamp_seconds";
const LOAD: &str = "openmosix_node_load";
const MEM: &str = "openmosix_node_memory_available_bytes";
const RMEM: &str = "openmosix_node_memory_free_bytes";
const TMEM: &str = "openmosix_node_memory_total_bytes";
const CPUS: &str = "openmosix_node_cpus";
const SPEED: &str = "openmosix_node_speed";
const EVENT: &str = "openmosix_node_last_event_timestamp_seconds";
const CHECKPOINT: &str = "openmosix_collector_last_checkpoint_timestamp_seconds";

/// Starts the thread that asks the server; it wakes the window through `ctx`.
pub(crate) fn spawn(client: Client, ctx: Arc<OnceLock<egui::Context>>) -> crate::query::Worker {
    let mut reader = Reader {
        client,
        interval: 1,
        seen: None,
    };
    Worker::spawn(
        "openmosixanalyzer prometheus",
        worker::once_set(ctx, egui::Context::request_repaint),
        move |req: Request| reader.answer(req),
    )
}

/// The nodes and the range (first and last tick) a poll found.
type Seen = (Vec<NodeRow>, Option<(Time, Time)>);

/// The thread's state.
struct Reader {
    client: Client,
    /// Seconds between two samples of a node (at least 1).
    interval: Time,
    /// The nodes and range of the last poll answered with news.
    seen: Option<Seen>,
}

fn now() -> f64 {
    openmosix_store::now_ms() as f64 / 1000.0
}

/// The node of a series (its `node` label), if it is one.
fn node_of(s: &Series) -> Option<NodeId> {
    s.label("node").parse().ok()
}

impl Reader {
    fn answer(&mut self, req: Request) -> Reply {
        match req {
            Request::Plot { from, to, bucket } => Reply::Plot(self.plot(from, to, bucket)),
            Request::FindOut { node, from, to } => Reply::FindOut(
                self.find_out(node, from, to)
                    .unwrap_or_else(|e| FindOut::failed(node, from, to, e)),
            ),
            Request::Poll { force } => {
                Reply::Polled(self.poll(force).unwrap_or_else(Polled::Failed))
            }
        }
    }

    fn one(&self, query: &str, at: f64) -> Result<Option<f64>, String> {
        Ok(scalar(&self.client.instant(query, at)?))
    }

    fn poll(&mut self, force: bool) -> Result<Polled, String> {
        let now = now();
        let lo = self.one(&format!("min(min_over_time({TICK}[{LOOKBACK}s]))"), now)?;
        let hi = self.one(&format!("max(max_over_time({TICK}[{LOOKBACK}s]))"), now)?;
        let range = lo
            .zip(hi)
            .map(|(a, b)| (a.floor() as Time, b.floor() as Time));
        let (start, end) = range.map_or((now as Time - LOOKBACK, now as Time), |(a, b)| {
            (a - 60, b + 60)
        });
        let mut nodes: Vec<NodeRow> = Vec::new();
        for labels in self.client.label_sets("openmosix_node_up", start, end)? {
            let Some(id) = labels.get("node").and_then(|n| n.parse().ok()) else {
                continue;
            };
            if !nodes.iter().any(|n| n.id == id) {
                let address = labels.get("address").cloned().unwrap_or_default();
                nodes.push(NodeRow { id, address });
            }
        }
        nodes.sort_by_key(|n| n.id);
        if let Some((lo, hi)) = range {
            let w = (hi - lo).clamp(1, 300);
            let at = hi as f64 + 0.999;
            let n = self.one(&format!("max(count_over_time({TICK}[{w}s]))"), at)?;
            self.interval = n
                .map_or(1, |n| (w as f64 / n.max(1.0)).round() as Time)
                .clamp(1, 300);
        }
        let news = (nodes, range);
        if !force && self.seen.as_ref() == Some(&news) {
            return Ok(Polled::Same);
        }
        self.seen = Some((news.0.clone(), news.1));
        let (nodes, range) = news;
        Ok(Polled::Changed(
            PathBuf::from(self.client.url()),
            nodes,
            range,
            None,
        ))
    }

    /// `f_over_time(metric[b])` evaluated at the end of each bucket.
    fn over(
        &self,
        f: &str,
        metric: &str,
        from: Time,
        to: Time,
        b: Time,
    ) -> Result<Vec<Series>, String> {
        self.client.range(
            &format!("{f}_over_time({metric}[{b}s])"),
            from + b,
            to + b,
            b,
        )
    }

    fn plot(&self, from: Time, to: Time, bucket: Time) -> Result<Data, String> {
        let mut b = bucket.max(self.interval).max(1);
        while (to - from) / b >= MAX_POINTS {
            b *= 2;
        }
        // Per node, the buckets by the time they end (the evaluation time).
        let mut buckets: BTreeMap<NodeId, BTreeMap<i64, Bucket>> = BTreeMap::new();
        for s in self.over("count", LOAD, from, to, b)? {
            let Some(node) = node_of(&s) else { continue };
            let m = buckets.entry(node).or_default();
            for &(t, n) in s.points.iter().filter(|p| p.1 >= 1.0) {
                m.insert(t as i64, empty_bucket(t as i64 - b, b, n as u32));
            }
        }
        type Set = fn(&mut Bucket, f64);
        let fields: [(&str, &str, Set); 9] = [
            ("min", LOAD, |k, v| k.min_load = v),
            ("max", LOAD, |k, v| k.max_load = v),
            ("avg", LOAD, |k, v| k.mean_load = v),
            ("min", MEM, |k, v| k.min_mem = v as u64),
            ("max", MEM, |k, v| k.max_mem = v as u64),
            ("avg", MEM, |k, v| k.mean_mem = v),
            ("min", RMEM, |k, v| k.min_rmem = v as u64),
            ("max", RMEM, |k, v| k.max_rmem = v as u64),
            ("avg", RMEM, |k, v| k.mean_rmem = v),
        ];
        for (f, metric, set) in fields {
            for s in self.over(f, metric, from, to, b)? {
                let Some(m) = node_of(&s).and_then(|n| buckets.get_mut(&n)) else {
                    continue;
                };
                for &(t, v) in s.points.iter().filter(|p| p.1.is_finite()) {
                    if let Some(k) = m.get_mut(&(t as i64)) {
                        set(k, v);
                    }
                }
            }
        }
        let statics = self.statics(from, to, b)?;
        Ok(Data {
            from,
            to,
            bucket: b,
            buckets: buckets
                .into_iter()
                .map(|(n, m)| (n, m.into_values().collect()))
                .collect(),
            statics,
            checkpoints: self.checkpoints(from, to, b)?,
            events: self.events(from, to, b)?,
        })
    }

    /// Per node, its static data where it changes (status is not kept: `up`).
    fn statics(
        &self,
        from: Time,
        to: Time,
        b: Time,
    ) -> Result<BTreeMap<NodeId, Vec<NodeStatic>>, String> {
        let mut at: BTreeMap<NodeId, BTreeMap<i64, [f64; 3]>> = BTreeMap::new();
        for (i, metric) in [TMEM, CPUS, SPEED].into_iter().enumerate() {
            for s in self.over("max", metric, from, to, b)? {
                let Some(node) = node_of(&s) else { continue };
                let m = at.entry(node).or_default();
                for &(t, v) in &s.points {
                    m.entry(t as i64 - b).or_default()[i] = v;
                }
            }
        }
        Ok(at
            .into_iter()
            .map(|(node, m)| {
                let mut out: Vec<NodeStatic> = Vec::new();
                for (t, [tmem, cpus, speed]) in m {
                    let s = NodeStatic {
                        time: t,
                        cpus: cpus as u32,
                        speed: speed as u32,
                        tmem: tmem as u64,
                        status: "up".into(),
                    };
                    let same = out
                        .last()
                        .is_some_and(|l| (l.cpus, l.speed, l.tmem) == (s.cpus, s.speed, s.tmem));
                    if !same {
                        out.push(s);
                    }
                }
                (node, out)
            })
            .collect())
    }

    /// The distinct values in `from..=to` of a gauge whose value is a mark's time, with
    /// the series they came from. A value shows up in a bucket only while it is recent
    /// (so that an old mark is not sent again with every bucket).
    fn marks(
        &self,
        metric: &str,
        from: Time,
        to: Time,
        b: Time,
    ) -> Result<Vec<(f64, Series)>, String> {
        let slack = b + 60 + 2 * self.interval;
        let q = format!("max_over_time({metric}[{b}s]) >= time() - {slack}");
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for s in self.client.range(&q, from + b, to + b, b)? {
            for &(_, v) in &s.points {
                let key = (v.to_bits(), s.labels.clone());
                let inside = v.is_finite() && v >= from as f64 && v < (to + 1) as f64;
                if inside && seen.insert(key) {
                    out.push((v, s.clone()));
                }
            }
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(out)
    }

    fn checkpoints(&self, from: Time, to: Time, b: Time) -> Result<Vec<Checkpoint>, String> {
        Ok(self
            .marks(CHECKPOINT, from, to, b)?
            .into_iter()
            .map(|(t, s)| Checkpoint {
                time_ms: (t * 1000.0).round() as i64,
                note: s.label("note").to_owned(),
            })
            .collect())
    }

    fn events(&self, from: Time, to: Time, b: Time) -> Result<Vec<EventRow>, String> {
        Ok(self
            .marks(EVENT, from, to, b)?
            .into_iter()
            .filter_map(|(t, s)| {
                let node = node_of(&s)?;
                let kind = s.label("kind").to_owned();
                Some(EventRow {
                    time_ms: (t * 1000.0).round() as i64,
                    node,
                    text: format!(
                        "{kind} on node {node} (from Prometheus: the event's own sentence is in the SQLite history)"
                    ),
                    kind,
                    pid: None,
                })
            })
            .collect())
    }

    /// "find out" over `from..=to`: min, max and mean of every sample in it.
    fn find_out(&self, node: Option<NodeId>, from: Time, to: Time) -> Result<FindOut, String> {
        let sel = node.map_or_else(String::new, |n| format!("{{node=\"{n}\"}}"));
        let r = (to - from + 1).max(1);
        let at = to as f64 + 0.999;
        let q = |agg: &str, f: &str, metric: &str| {
            self.one(&format!("{agg}({f}_over_time({metric}{sel}[{r}s]))"), at)
                .map(|v| v.unwrap_or(0.0))
        };
        let samples = q("sum", "count", LOAD)?;
        let stats = if samples < 1.0 {
            None
        } else {
            let mems = q("sum", "count", MEM)?.max(1.0);
            let rmems = q("sum", "count", RMEM)?.max(1.0);
            Some(Stats {
                samples: samples as u64,
                min_load: q("min", "min", LOAD)?,
                max_load: q("max", "max", LOAD)?,
                mean_load: q("sum", "sum", LOAD)? / samples,
                min_mem: q("min", "min", MEM)? as u64,
                max_mem: q("max", "max", MEM)? as u64,
                mean_mem: q("sum", "sum", MEM)? / mems,
                min_rmem: q("min", "min", RMEM)? as u64,
                max_rmem: q("max", "max", RMEM)? as u64,
                mean_rmem: q("sum", "sum", RMEM)? / rmems,
                cpus: q("sum", "last", CPUS)? as u32,
                tmem: q("sum", "last", TMEM)? as u64,
                speed: q("sum", "last", SPEED)? as u64,
            })
        };
        Ok(FindOut {
            node,
            from,
            to,
            stats,
            error: None,
            open: true,
        })
    }
}

/// A bucket of `count` samples from `time`, `width` wide, its figures still to fill.
fn empty_bucket(time: Time, width: Time, count: u32) -> Bucket {
    Bucket {
        time,
        width,
        count,
        min_load: 0.0,
        max_load: 0.0,
        mean_load: 0.0,
        min_util: 0.0,
        max_util: 0.0,
        mean_util: 0.0,
        min_mem: 0,
        max_mem: 0,
        mean_mem: 0.0,
        min_rmem: 0,
        max_rmem: 0,
        mean_rmem: 0.0,
    }
}
