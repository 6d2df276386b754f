//! Writing one tick: samples (and static data when it changed), process lists when due,
//! events — all in one transaction.

use std::time::{Duration, Instant};

use openmosix_hpc::model::{NodeId, NodeInfo, ProcInfo};
use rusqlite::params;

use super::{Store, mib, status_name};
use crate::{Result, Time, pack};

/// One process of a snapshot, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcIn {
    /// Pid on the node where it runs.
    pub pid: i32,
    /// Home node.
    pub home: NodeId,
    /// Pid on its home node.
    pub home_pid: i32,
    /// State letter.
    pub state: char,
    /// Command line.
    pub cmdline: String,
}

impl From<&ProcInfo> for ProcIn {
    fn from(p: &ProcInfo) -> Self {
        ProcIn {
            pid: p.pid,
            home: p.home,
            home_pid: if p.home_pid == 0 { p.pid } else { p.home_pid },
            state: p.state,
            cmdline: String::from_utf8_lossy(&p.cmdline.0).into_owned(),
        }
    }
}

/// One event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIn {
    /// The node it happened on.
    pub node: NodeId,
    /// When (ms since the epoch).
    pub time_ms: i64,
    /// `signal`, `renice`, `admin`, `run`, `migrate_out`, `migrate_in`, `lock`, `mask`
    /// (from the agents), `down`, `up` (from the collector).
    pub kind: String,
    /// One sentence.
    pub text: String,
    /// The process, if any.
    pub pid: Option<i32>,
    /// The agent's seq (none for the collector's own events).
    pub seq: Option<u64>,
}

/// Everything one tick writes.
#[derive(Debug, Clone, Default)]
pub struct Tick {
    /// The tick's time (s).
    pub time: Time,
    /// Figures of the nodes that answered (a node that did not leaves a gap).
    pub samples: Vec<(NodeId, NodeInfo)>,
    /// Process lists fetched this tick; written as a snapshot when the node's pid set
    /// changed or its last snapshot is [`Store::snapshot_every`] old.
    pub procs: Vec<(NodeId, Vec<ProcIn>)>,
    /// New events.
    pub events: Vec<EventIn>,
    /// The last agent event seq now stored, per node.
    pub event_seqs: Vec<(NodeId, u64)>,
}

/// What a tick wrote, and how long it took.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TickReport {
    /// Sample rows.
    pub samples: usize,
    /// Snapshots written.
    pub snapshots: usize,
    /// Events written.
    pub events: usize,
    /// Older samples moved into packed blocks (at the first tick of a minute).
    pub packed: usize,
    /// From BEGIN to the end of COMMIT.
    pub duration: Duration,
}

/// A node's static data as `node_info` keeps it (a new row when it changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InfoRow {
    cpus: u32,
    speed: u32,
    tmem: i64,
    status: &'static str,
}

impl Store {
    fn cmdline_id(&mut self, text: &str) -> Result<i64> {
        if let Some(id) = self.cmdlines.get(text) {
            return Ok(*id);
        }
        self.conn
            .prepare_cached(
                "INSERT INTO cmdlines (text) VALUES (?1) ON CONFLICT (text) DO NOTHING",
            )?
            .execute([text])?;
        let id: i64 = self
            .conn
            .prepare_cached("SELECT id FROM cmdlines WHERE text = ?1")?
            .query_row([text], |r| r.get(0))?;
        if self.cmdlines.len() > 100_000 {
            self.cmdlines.clear();
        }
        self.cmdlines.insert(text.to_owned(), id);
        Ok(id)
    }

    /// Writes one tick in one transaction.
    pub fn write_tick(&mut self, tick: &Tick) -> Result<TickReport> {
        let start = Instant::now();
        let mut report = TickReport::default();
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match self.write_tick_inner(tick, &mut report) {
            Ok(()) => {
                if let Err(e) = self.conn.execute_batch("COMMIT") {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.forget();
                    return Err(e.into());
                }
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.forget();
                return Err(e);
            }
        }
        report.duration = start.elapsed();
        Ok(report)
    }

    /// After a rollback the caches may name rows that are not there.
    fn forget(&mut self) {
        self.info.clear();
        self.snaps.clear();
        self.cmdlines.clear();
        self.plain = None;
    }

    fn write_tick_inner(&mut self, tick: &Tick, report: &mut TickReport) -> Result<()> {
        self.pack_before(tick.time, report)?;
        self.write_samples(tick, report)?;
        for (node, procs) in &tick.procs {
            if self.write_snapshot(*node, tick.time, procs)? {
                report.snapshots += 1;
            }
        }
        self.write_events(tick, report)
    }

    /// The first tick of a new minute packs the minutes before it (crate::pack).
    fn pack_before(&mut self, t: Time, report: &mut TickReport) -> Result<()> {
        let boundary = pack::window_start(t);
        let oldest: Option<Time> = self
            .conn
            .prepare_cached("SELECT min(time) FROM samples")?
            .query_row([], |r| r.get(0))?;
        if oldest.is_some_and(|o| o < boundary) {
            let (packed, left) = pack::pack_before(&self.conn, boundary, self.plain.take())?;
            report.packed = packed;
            self.plain = Some(left);
        } else if oldest.is_none() {
            self.plain = Some(pack::Plain::new());
        }
        Ok(())
    }

    /// A sample row per node that answered, and a `node_info` row where its static data
    /// changed.
    fn write_samples(&mut self, tick: &Tick, report: &mut TickReport) -> Result<()> {
        let t = tick.time;
        let mut sample = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO samples (node, time, load, util, mem, rmem)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut info = self.conn.prepare_cached(
            "INSERT OR REPLACE INTO node_info (node, time, cpus, speed, tmem, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (node, n) in &tick.samples {
            let s = crate::block::Row {
                time: t,
                load: n.load.round().clamp(0.0, 1e15) as i64,
                util: n.util.round().clamp(0.0, 100.0) as i64,
                mem: mib(n.mem),
                rmem: mib(n.rmem),
            };
            sample.execute(params![node, t, s.load, s.util, s.mem, s.rmem])?;
            report.samples += 1;
            if let Some(plain) = &mut self.plain {
                pack::remember(plain, *node, s);
            }
            let row = InfoRow::of(n);
            if self.info.get(node) != Some(&row) {
                info.execute(params![node, t, row.cpus, row.speed, row.tmem, row.status])?;
                self.info.insert(*node, row);
            }
        }
        Ok(())
    }

    /// Writes `procs` as `node`'s snapshot at `t` if it is due: its pid set changed, or
    /// its last snapshot is [`Store::snapshot_every`] old. Whether it was written.
    fn write_snapshot(&mut self, node: NodeId, t: Time, procs: &[ProcIn]) -> Result<bool> {
        let mut pids: Vec<i32> = procs.iter().map(|p| p.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        let due = match self.snaps.get(&node) {
            Some((when, last)) => *last != pids || t - when >= self.snapshot_every,
            None => true,
        };
        if !due {
            return Ok(false);
        }
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO snapshots (node, time) VALUES (?1, ?2)
                 ON CONFLICT (node, time) DO NOTHING",
            )?
            .execute(params![node, t])?;
        if inserted == 0 {
            return Ok(false);
        }
        let snap = self.conn.last_insert_rowid();
        for p in procs {
            let cmd = self.cmdline_id(&p.cmdline)?;
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO procs (snapshot, pid, home, home_pid, state, cmdline)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    snap,
                    p.pid,
                    p.home,
                    p.home_pid,
                    p.state.to_string(),
                    cmd
                ])?;
        }
        self.snaps.insert(node, (t, pids));
        Ok(true)
    }

    /// The tick's events, and the agent event seqs now stored.
    fn write_events(&self, tick: &Tick, report: &mut TickReport) -> Result<()> {
        let mut ev = self.conn.prepare_cached(
            "INSERT INTO events (time_ms, node, kind, text, pid, seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for e in &tick.events {
            let seq = e.seq.and_then(|s| i64::try_from(s).ok());
            ev.execute(params![e.time_ms, e.node, e.kind, e.text, e.pid, seq])?;
            report.events += 1;
        }
        let mut seq = self.conn.prepare_cached(
            "INSERT INTO nodes (id, address, event_seq) VALUES (?1, '', ?2)
             ON CONFLICT (id) DO UPDATE SET event_seq = excluded.event_seq",
        )?;
        for (node, s) in &tick.event_seqs {
            seq.execute(params![node, i64::try_from(*s).unwrap_or(i64::MAX)])?;
        }
        Ok(())
    }
}

impl InfoRow {
    fn of(n: &NodeInfo) -> InfoRow {
        InfoRow {
            cpus: n.cpus,
            speed: n.speed,
            tmem: mib(n.tmem),
            status: status_name(n.status),
        }
    }
}
