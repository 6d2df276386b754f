//! The read API of a history file, for openmosixanalyzer and openmosixhistory.
//!
//! Every call takes an explicit, inclusive time range in seconds since the epoch
//! ([`Time`]); events and checkpoints carry milliseconds. Figures come back in the units
//! of [`openmosix_hpc::model::NodeInfo`]: load ×100 (100 = one busy CPU), util in
//! percent, memory in bytes (stored to the MiB). A node that was down has no samples in
//! that time: a gap, never a made-up value.
//!
//! [`History::open`] opens read-only and works while the collector writes (WAL); call
//! [`History::data_version`] to see whether anything was written since the last look, and
//! [`History::is_current`] to see whether the live link moved on to a new file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use openmosix_hpc::model::NodeId;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use crate::block::Row;
use crate::store::{BUSY_TIMEOUT_MS, link_target};
use crate::{Result, Time, scan, schema};

/// A node of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// openMosix id.
    pub id: NodeId,
    /// Address it was reached at.
    pub address: String,
}

/// One sample of one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When (s).
    pub time: Time,
    /// openMosix load ×100 (as stored: whole hundredths).
    pub load: f64,
    /// CPU utilisation, percent.
    pub util: f64,
    /// Free memory as openMosix sees it (MemAvailable), bytes.
    pub mem: u64,
    /// Free memory as Linux sees it (MemFree), bytes.
    pub rmem: u64,
}

/// The static data of a node from a time on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatic {
    /// From when (s).
    pub time: Time,
    /// CPUs.
    pub cpus: u32,
    /// Speed (PIII/1GHz = 1000).
    pub speed: u32,
    /// Total memory, bytes.
    pub tmem: u64,
    /// `up`, `blocked` or `off`.
    pub status: String,
}

/// The samples of one bucket of [`History::aggregate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Start of the bucket (s).
    pub time: Time,
    /// Width of every bucket of the answer (s).
    pub width: Time,
    /// Samples in it (≥ 1: empty buckets are left out, they are gaps).
    pub count: u32,
    /// Lowest load.
    pub min_load: f64,
    /// Highest load.
    pub max_load: f64,
    /// Mean load.
    pub mean_load: f64,
    /// Lowest util.
    pub min_util: f64,
    /// Highest util.
    pub max_util: f64,
    /// Mean util.
    pub mean_util: f64,
    /// Lowest mem (bytes).
    pub min_mem: u64,
    /// Highest mem.
    pub max_mem: u64,
    /// Mean mem.
    pub mean_mem: f64,
    /// Lowest rmem (bytes).
    pub min_rmem: u64,
    /// Highest rmem.
    pub max_rmem: u64,
    /// Mean rmem.
    pub mean_rmem: f64,
}

/// "Find out": min, max and mean over a range, with the static data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Samples counted.
    pub samples: u64,
    /// Lowest load.
    pub min_load: f64,
    /// Highest load.
    pub max_load: f64,
    /// Mean load (over samples).
    pub mean_load: f64,
    /// Lowest mem (bytes).
    pub min_mem: u64,
    /// Highest mem.
    pub max_mem: u64,
    /// Mean mem.
    pub mean_mem: f64,
    /// Lowest rmem (bytes).
    pub min_rmem: u64,
    /// Highest rmem.
    pub max_rmem: u64,
    /// Mean rmem.
    pub mean_rmem: f64,
    /// CPUs (for the whole cluster: the sum over nodes).
    pub cpus: u32,
    /// Total memory, bytes (for the cluster: the sum).
    pub tmem: u64,
    /// Speed (for the cluster: the sum).
    pub speed: u64,
}

/// A checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// When (ms).
    pub time_ms: i64,
    /// The note given with `-n` (default `checkpoint`).
    pub note: String,
}

/// An event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// When (ms).
    pub time_ms: i64,
    /// The node.
    pub node: NodeId,
    /// `signal`, `renice`, `admin`, `run`, `migrate_out`, `migrate_in`, `lock`, `mask`,
    /// `down`, `up`.
    pub kind: String,
    /// One sentence.
    pub text: String,
    /// The process, if any (its pid on `node`).
    pub pid: Option<i32>,
}

/// A process of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcRow {
    /// The node it ran on.
    pub node: NodeId,
    /// When that node's snapshot was taken (s).
    pub time: Time,
    /// Pid on `node`.
    pub pid: i32,
    /// Home node.
    pub home: NodeId,
    /// Pid on the home node.
    pub home_pid: i32,
    /// State letter (R, S, D, T, Z …).
    pub state: char,
    /// Command line.
    pub cmdline: String,
}

/// A history file opened for reading.
#[derive(Debug)]
pub struct History {
    conn: Connection,
    opened: PathBuf,
    file: PathBuf,
    interval: Time,
}

const MIB: u64 = 1 << 20;

/// Sums of the stored units, for exact means across nodes.
#[derive(Debug, Clone, Copy)]
struct Sums {
    load: i128,
    mem: i128,
    rmem: i128,
}

impl Sums {
    fn finish(self, s: &mut Stats) {
        let n = s.samples.max(1) as f64;
        s.mean_load = self.load as f64 / n;
        s.mean_mem = self.mem as f64 * MIB as f64 / n;
        s.mean_rmem = self.rmem as f64 * MIB as f64 / n;
    }
}

/// One bucket being folded: count, min, max and sum of load, util, mem, rmem.
#[derive(Debug, Clone, Copy)]
struct Fold {
    start: Time,
    count: u32,
    min: [i64; 4],
    max: [i64; 4],
    sum: [i64; 4],
}

impl Fold {
    fn new(start: Time, v: [i64; 4]) -> Fold {
        Fold {
            start,
            count: 1,
            min: v,
            max: v,
            sum: v,
        }
    }

    fn add(&mut self, v: [i64; 4]) {
        self.count += 1;
        for (i, x) in v.into_iter().enumerate() {
            self.min[i] = self.min[i].min(x);
            self.max[i] = self.max[i].max(x);
            self.sum[i] = self.sum[i].saturating_add(x);
        }
    }

    fn bucket(&self, width: Time) -> Bucket {
        let n = f64::from(self.count);
        let mean = |i: usize| self.sum[i] as f64 / n;
        Bucket {
            time: self.start,
            width,
            count: self.count,
            min_load: self.min[0] as f64,
            max_load: self.max[0] as f64,
            mean_load: mean(0),
            min_util: self.min[1] as f64,
            max_util: self.max[1] as f64,
            mean_util: mean(1),
            min_mem: bytes(self.min[2]),
            max_mem: bytes(self.max[2]),
            mean_mem: mean(2) * MIB as f64,
            min_rmem: bytes(self.min[3]),
            max_rmem: bytes(self.max[3]),
            mean_rmem: mean(3) * MIB as f64,
        }
    }
}

/// A [`Sample`] from its stored units.
fn sample(r: &Row) -> Sample {
    Sample {
        time: r.time,
        load: r.load as f64,
        util: r.util as f64,
        mem: bytes(r.mem),
        rmem: bytes(r.rmem),
    }
}

fn bytes(mib: i64) -> u64 {
    u64::try_from(mib).unwrap_or(0) * MIB
}

impl History {
    /// Opens `path` read-only (the live link, or any saved file).
    pub fn open(path: &Path) -> Result<History> {
        let file = std::fs::canonicalize(path)
            .map_err(|e| crate::Error::io(format!("cannot open {}", path.display()), e))?;
        let conn = Connection::open_with_flags(
            &file,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
        schema::check_readable(&conn)?;
        let interval = conn
            .query_row("SELECT value FROM meta WHERE key = 'interval'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        Ok(History {
            conn,
            opened: path.to_path_buf(),
            file,
            interval,
        })
    }

    /// The file read (the link's target when a link was opened).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Whether the path opened still leads to this file (false once the collector rotated
    /// the live link: reopen to follow it).
    pub fn is_current(&self) -> bool {
        match link_target(&self.opened) {
            Some(t) => std::fs::canonicalize(t).is_ok_and(|t| t == self.file),
            None => true,
        }
    }

    /// Changes whenever another connection commits (`PRAGMA data_version`): poll it to
    /// refresh a live view.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// The collector's tick interval when it wrote this file (s).
    pub fn interval(&self) -> Time {
        self.interval
    }

    /// A value of the `meta` table (`created`, `interval`, `previous`, …).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// The connection, for tests that compare with plain SQL.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The nodes, by id.
    pub fn nodes(&self) -> Result<Vec<NodeRow>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, address FROM nodes ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(NodeRow {
                id: r.get(0)?,
                address: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn node_ids(&self) -> Result<Vec<NodeId>> {
        Ok(self.nodes()?.into_iter().map(|n| n.id).collect())
    }

    /// First and last sample time (s), if there is any sample.
    pub fn range(&self) -> Result<Option<(Time, Time)>> {
        scan::range(&self.conn)
    }

    /// The samples of `node` in `from..=to`, oldest first.
    pub fn samples(&self, node: NodeId, from: Time, to: Time) -> Result<Vec<Sample>> {
        let mut out = Vec::new();
        scan::for_each(&self.conn, Some(node), from, to, |_, r| out.push(sample(r)))?;
        Ok(out)
    }

    /// Calls `f` with every sample of `node` (every node for `None`) in `from..=to` in
    /// stored units (load ×100, util %, memory MiB): each node's samples oldest first,
    /// nodes interleaved. Streams: nothing is collected.
    pub fn for_each_sample(
        &self,
        node: Option<NodeId>,
        from: Time,
        to: Time,
        f: impl FnMut(NodeId, &Row),
    ) -> Result<()> {
        scan::for_each(&self.conn, node, from, to, f)
    }

    /// [`History::samples`] of every node (one pass over the range).
    pub fn samples_all(&self, from: Time, to: Time) -> Result<BTreeMap<NodeId, Vec<Sample>>> {
        let mut out: BTreeMap<NodeId, Vec<Sample>> = self
            .node_ids()?
            .into_iter()
            .map(|id| (id, Vec::new()))
            .collect();
        scan::for_each(&self.conn, None, from, to, |id, r| {
            out.entry(id).or_default().push(sample(r));
        })?;
        Ok(out)
    }

    /// The samples of `node` in `from..=to` in at most `buckets` equal buckets (of whole
    /// seconds), each with min, max and mean; buckets without samples are left out.
    pub fn aggregate(
        &self,
        node: NodeId,
        from: Time,
        to: Time,
        buckets: usize,
    ) -> Result<Vec<Bucket>> {
        Ok(self
            .aggregate_where(Some(node), from, to, buckets)?
            .remove(&node)
            .unwrap_or_default())
    }

    /// [`History::aggregate`] of every node (one pass over the range).
    pub fn aggregate_all(
        &self,
        from: Time,
        to: Time,
        buckets: usize,
    ) -> Result<BTreeMap<NodeId, Vec<Bucket>>> {
        let mut out: BTreeMap<NodeId, Vec<Bucket>> = self
            .node_ids()?
            .into_iter()
            .map(|id| (id, Vec::new()))
            .collect();
        out.extend(self.aggregate_where(None, from, to, buckets)?);
        Ok(out)
    }

    fn aggregate_where(
        &self,
        node: Option<NodeId>,
        from: Time,
        to: Time,
        buckets: usize,
    ) -> Result<BTreeMap<NodeId, Vec<Bucket>>> {
        let mut out: BTreeMap<NodeId, Vec<Bucket>> = BTreeMap::new();
        if to < from || buckets == 0 {
            return Ok(out);
        }
        let span = to - from + 1;
        let n = i64::try_from(buckets).unwrap_or(i64::MAX);
        let width = (span + n - 1) / n;
        // One pass (each node's samples in time order); each node's current bucket is
        // folded in Rust, which beats SQLite's GROUP BY (a sort) several times over.
        let mut open: HashMap<NodeId, Fold> = HashMap::new();
        scan::for_each(&self.conn, node, from, to, |id, r| {
            let v = [r.load, r.util, r.mem, r.rmem];
            let start = from + (r.time - from) / width * width;
            match open.get_mut(&id) {
                Some(f) if f.start == start => f.add(v),
                Some(f) => {
                    out.entry(id).or_default().push(f.bucket(width));
                    *f = Fold::new(start, v);
                }
                None => {
                    open.insert(id, Fold::new(start, v));
                }
            }
        })?;
        for (id, f) in open {
            out.entry(id).or_default().push(f.bucket(width));
        }
        Ok(out)
    }

    /// The static data of `node` in force at `time` (or its first, when `time` is before).
    pub fn node_static(&self, node: NodeId, time: Time) -> Result<Option<NodeStatic>> {
        let mut st = self.conn.prepare_cached(
            "SELECT time, cpus, speed, tmem, status FROM node_info WHERE node = ?1 AND
             time = coalesce((SELECT max(time) FROM node_info WHERE node = ?1 AND time <= ?2),
                             (SELECT min(time) FROM node_info WHERE node = ?1))",
        )?;
        Ok(st
            .query_row(params![node, time], |r| {
                Ok(NodeStatic {
                    time: r.get(0)?,
                    cpus: r.get(1)?,
                    speed: r.get(2)?,
                    tmem: bytes(r.get(3)?),
                    status: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// The static data of `node` over `from..=to`: the row in force at `from`, then every
    /// change (for tmem lines and status bands).
    pub fn node_statics(&self, node: NodeId, from: Time, to: Time) -> Result<Vec<NodeStatic>> {
        let mut out: Vec<NodeStatic> = self.node_static(node, from)?.into_iter().collect();
        let mut st = self.conn.prepare_cached(
            "SELECT time, cpus, speed, tmem, status FROM node_info
             WHERE node = ?1 AND time > ?2 AND time <= ?3 ORDER BY time",
        )?;
        let rows = st.query_map(params![node, from, to], |r| {
            Ok(NodeStatic {
                time: r.get(0)?,
                cpus: r.get(1)?,
                speed: r.get(2)?,
                tmem: bytes(r.get(3)?),
                status: r.get(4)?,
            })
        })?;
        for row in rows {
            let row = row?;
            if out.last().is_none_or(|l| l.time != row.time) {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// Min, max and mean of load and memory over `from..=to` for one node, or for the
    /// whole cluster (`None`: over every sample of every node), with the static data in
    /// force at `to` (summed over the nodes for the cluster). `None` without samples.
    pub fn stats(&self, node: Option<NodeId>, from: Time, to: Time) -> Result<Option<Stats>> {
        let per_node = self.stats_where(node, from, to)?;
        let mut acc: Option<(Stats, Sums)> = None;
        for (_, (here, sums)) in per_node {
            acc = Some(match acc {
                None => (here, sums),
                Some((a, s)) => (
                    Stats {
                        samples: a.samples + here.samples,
                        min_load: a.min_load.min(here.min_load),
                        max_load: a.max_load.max(here.max_load),
                        min_mem: a.min_mem.min(here.min_mem),
                        max_mem: a.max_mem.max(here.max_mem),
                        min_rmem: a.min_rmem.min(here.min_rmem),
                        max_rmem: a.max_rmem.max(here.max_rmem),
                        ..a
                    },
                    Sums {
                        load: s.load + sums.load,
                        mem: s.mem + sums.mem,
                        rmem: s.rmem + sums.rmem,
                    },
                ),
            });
        }
        let Some((mut stats, sums)) = acc else {
            return Ok(None);
        };
        let nodes = match node {
            Some(n) => vec![n],
            None => self.node_ids()?,
        };
        let (mut cpus, mut tmem, mut speed) = (0u32, 0u64, 0u64);
        for id in nodes {
            if let Some(s) = self.node_static(id, to)? {
                cpus += s.cpus;
                tmem += s.tmem;
                speed += u64::from(s.speed);
            }
        }
        sums.finish(&mut stats);
        stats.cpus = cpus;
        stats.tmem = tmem;
        stats.speed = speed;
        Ok(Some(stats))
    }

    /// [`History::stats`] of every node that has samples in `from..=to` (one pass).
    pub fn stats_all(&self, from: Time, to: Time) -> Result<BTreeMap<NodeId, Stats>> {
        let mut out = BTreeMap::new();
        for (id, (mut stats, sums)) in self.stats_where(None, from, to)? {
            sums.finish(&mut stats);
            if let Some(s) = self.node_static(id, to)? {
                stats.cpus = s.cpus;
                stats.tmem = s.tmem;
                stats.speed = u64::from(s.speed);
            }
            out.insert(id, stats);
        }
        Ok(out)
    }

    fn stats_where(
        &self,
        node: Option<NodeId>,
        from: Time,
        to: Time,
    ) -> Result<BTreeMap<NodeId, (Stats, Sums)>> {
        let mut folds: BTreeMap<NodeId, Fold> = BTreeMap::new();
        scan::for_each(&self.conn, node, from, to, |id, r| {
            let v = [r.load, r.mem, r.rmem, 0];
            match folds.get_mut(&id) {
                Some(f) => f.add(v),
                None => {
                    folds.insert(id, Fold::new(from, v));
                }
            }
        })?;
        Ok(folds
            .into_iter()
            .map(|(id, f)| {
                let stats = Stats {
                    samples: u64::from(f.count),
                    min_load: f.min[0] as f64,
                    max_load: f.max[0] as f64,
                    mean_load: 0.0,
                    min_mem: bytes(f.min[1]),
                    max_mem: bytes(f.max[1]),
                    mean_mem: 0.0,
                    min_rmem: bytes(f.min[2]),
                    max_rmem: bytes(f.max[2]),
                    mean_rmem: 0.0,
                    cpus: 0,
                    tmem: 0,
                    speed: 0,
                };
                let sums = Sums {
                    load: i128::from(f.sum[0]),
                    mem: i128::from(f.sum[1]),
                    rmem: i128::from(f.sum[2]),
                };
                (id, (stats, sums))
            })
            .collect())
    }

    /// The checkpoints in `from..=to` (s), oldest first.
    pub fn checkpoints(&self, from: Time, to: Time) -> Result<Vec<Checkpoint>> {
        let mut st = self.conn.prepare_cached(
            "SELECT time_ms, note FROM checkpoints
             WHERE time_ms BETWEEN ?1 AND ?2 ORDER BY time_ms, id",
        )?;
        let rows = st.query_map(params![from * 1000, to * 1000 + 999], |r| {
            Ok(Checkpoint {
                time_ms: r.get(0)?,
                note: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The events of every node in `from..=to` (s), oldest first.
    pub fn events(&self, from: Time, to: Time) -> Result<Vec<EventRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT time_ms, node, kind, text, pid FROM events
             WHERE time_ms BETWEEN ?1 AND ?2 ORDER BY time_ms, id",
        )?;
        let rows = st.query_map(params![from * 1000, to * 1000 + 999], |r| {
            Ok(EventRow {
                time_ms: r.get(0)?,
                node: r.get(1)?,
                kind: r.get(2)?,
                text: r.get(3)?,
                pid: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The times at which any node's process list was recorded, in `from..=to`
    /// (for a history slider's stops).
    pub fn snapshot_times(&self, from: Time, to: Time) -> Result<Vec<Time>> {
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT time FROM snapshots WHERE node = ?1 AND time BETWEEN ?2 AND ?3",
        )?;
        let mut out = Vec::new();
        for id in self.node_ids()? {
            let rows = st.query_map(params![id, from, to], |r| r.get::<_, Time>(0))?;
            for t in rows {
                out.push(t?);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The processes of the cluster at `time`: per node, its latest process list taken
    /// at or before `time`, provided the node was up then (it has a sample within two
    /// collector intervals before `time`). Ordered by node, then pid.
    pub fn procs_at(&self, time: Time) -> Result<Vec<ProcRow>> {
        let window = (2 * self.interval).max(2);
        let mut snap = self.conn.prepare_cached(
            "SELECT id, time FROM snapshots WHERE node = ?1 AND time <= ?2
             ORDER BY time DESC LIMIT 1",
        )?;
        let mut procs = self.conn.prepare_cached(
            "SELECT p.pid, p.home, p.home_pid, p.state, c.text FROM procs p
             JOIN cmdlines c ON c.id = p.cmdline WHERE p.snapshot = ?1 ORDER BY p.pid",
        )?;
        let mut out = Vec::new();
        for node in self.node_ids()? {
            let mut was_up = false;
            scan::for_each(&self.conn, Some(node), time - window, time, |_, _| {
                was_up = true;
            })?;
            if !was_up {
                continue;
            }
            let Some((id, at)) = snap
                .query_row(params![node, time], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Time>(1)?))
                })
                .optional()?
            else {
                continue;
            };
            let rows = procs.query_map([id], |r| {
                let state: String = r.get(3)?;
                Ok(ProcRow {
                    node,
                    time: at,
                    pid: r.get(0)?,
                    home: r.get(1)?,
                    home_pid: r.get(2)?,
                    state: state.chars().next().unwrap_or('?'),
                    cmdline: r.get(4)?,
                })
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    /// Where was pid X at time T: the processes of [`History::procs_at`] whose pid is
    /// `pid`, or whose pid on their home node is `pid` (a process that migrated away).
    /// Pids are per node, so several may answer; `home` and `home_pid` tell them apart.
    pub fn where_was(&self, pid: i32, time: Time) -> Result<Vec<ProcRow>> {
        Ok(self
            .procs_at(time)?
            .into_iter()
            .filter(|p| p.pid == pid || (p.home_pid == pid && p.home != p.node))
            .collect())
    }
}
