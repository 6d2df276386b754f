//! Samples: as they were, and folded into buckets for a plot.

use std::collections::{BTreeMap, HashMap};

use openmosix_hpc::model::NodeId;

use super::{History, MIB, bytes};
use crate::block::Row;
use crate::{Result, Time, scan};

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

/// Samples being folded: count, min, max and sum of four figures (load, util, mem, rmem
/// for a bucket).
#[derive(Debug, Clone, Copy)]
pub(super) struct Fold {
    /// The bucket's start.
    pub start: Time,
    pub count: u32,
    pub min: [i64; 4],
    pub max: [i64; 4],
    pub sum: [i64; 4],
}

impl Fold {
    pub fn new(start: Time, v: [i64; 4]) -> Fold {
        Fold {
            start,
            count: 1,
            min: v,
            max: v,
            sum: v,
        }
    }

    pub fn add(&mut self, v: [i64; 4]) {
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

impl History {
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
        let mut out = self.per_node()?;
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
        let mut out = self.per_node()?;
        out.extend(self.aggregate_where(None, from, to, buckets)?);
        Ok(out)
    }

    /// An empty list for every node of the history.
    fn per_node<T>(&self) -> Result<BTreeMap<NodeId, Vec<T>>> {
        Ok(self
            .node_ids()?
            .into_iter()
            .map(|id| (id, Vec::new()))
            .collect())
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
}
