//! The static data of the nodes, and "find out": min, max and mean over a range.

use std::collections::BTreeMap;

use openmosix_hpc::model::NodeId;
use rusqlite::{OptionalExtension as _, params};

use super::samples::Fold;
use super::{History, MIB, bytes};
use crate::{Result, Time, scan};

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

/// The samples of one node, or of several, in stored units: count, min, max and exact
/// sums (for exact means across nodes) of load, mem and rmem.
#[derive(Debug, Clone, Copy)]
struct Total {
    samples: u64,
    min: [i64; 3],
    max: [i64; 3],
    sum: [i128; 3],
}

impl Total {
    /// One node's samples, folded as `[load, mem, rmem, 0]`.
    fn of(f: &Fold) -> Total {
        Total {
            samples: u64::from(f.count),
            min: [f.min[0], f.min[1], f.min[2]],
            max: [f.max[0], f.max[1], f.max[2]],
            sum: [f.sum[0], f.sum[1], f.sum[2]].map(i128::from),
        }
    }

    fn add(&mut self, o: &Total) {
        self.samples += o.samples;
        for i in 0..3 {
            self.min[i] = self.min[i].min(o.min[i]);
            self.max[i] = self.max[i].max(o.max[i]);
            self.sum[i] += o.sum[i];
        }
    }

    /// The figures, without the static data.
    fn stats(&self) -> Stats {
        let n = self.samples.max(1) as f64;
        Stats {
            samples: self.samples,
            min_load: self.min[0] as f64,
            max_load: self.max[0] as f64,
            mean_load: self.sum[0] as f64 / n,
            min_mem: bytes(self.min[1]),
            max_mem: bytes(self.max[1]),
            mean_mem: self.sum[1] as f64 * MIB as f64 / n,
            min_rmem: bytes(self.min[2]),
            max_rmem: bytes(self.max[2]),
            mean_rmem: self.sum[2] as f64 * MIB as f64 / n,
            cpus: 0,
            tmem: 0,
            speed: 0,
        }
    }
}

/// A row of `SELECT time, cpus, speed, tmem, status FROM node_info`.
fn node_static_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NodeStatic> {
    Ok(NodeStatic {
        time: r.get(0)?,
        cpus: r.get(1)?,
        speed: r.get(2)?,
        tmem: bytes(r.get(3)?),
        status: r.get(4)?,
    })
}

impl History {
    /// The static data of `node` in force at `time` (or its first, when `time` is before).
    pub fn node_static(&self, node: NodeId, time: Time) -> Result<Option<NodeStatic>> {
        let mut st = self.conn.prepare_cached(
            "SELECT time, cpus, speed, tmem, status FROM node_info WHERE node = ?1 AND
             time = coalesce((SELECT max(time) FROM node_info WHERE node = ?1 AND time <= ?2),
                             (SELECT min(time) FROM node_info WHERE node = ?1))",
        )?;
        Ok(st
            .query_row(params![node, time], node_static_row)
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
        let rows = st.query_map(params![node, from, to], node_static_row)?;
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
        let mut total: Option<Total> = None;
        for here in self.totals(node, from, to)?.values() {
            match &mut total {
                None => total = Some(*here),
                Some(t) => t.add(here),
            }
        }
        let Some(total) = total else {
            return Ok(None);
        };
        let nodes = match node {
            Some(n) => vec![n],
            None => self.node_ids()?,
        };
        let mut stats = total.stats();
        for id in nodes {
            if let Some(s) = self.node_static(id, to)? {
                stats.cpus += s.cpus;
                stats.tmem += s.tmem;
                stats.speed += u64::from(s.speed);
            }
        }
        Ok(Some(stats))
    }

    /// The [`Total`] of each node with samples in `from..=to` (one pass).
    fn totals(
        &self,
        node: Option<NodeId>,
        from: Time,
        to: Time,
    ) -> Result<BTreeMap<NodeId, Total>> {
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
        Ok(folds.iter().map(|(id, f)| (*id, Total::of(f))).collect())
    }
}
