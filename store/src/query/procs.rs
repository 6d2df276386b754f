//! Process lists: when they were recorded, the cluster's processes at a time, and where a
//! pid was.

use openmosix_hpc::model::NodeId;
use rusqlite::{OptionalExtension as _, params};

use super::History;
use crate::{Result, Time, scan};

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

impl History {
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
        let mut out = Vec::new();
        for node in self.node_ids()? {
            if !self.was_up(node, time)? {
                continue;
            }
            let Some((snapshot, at)) = self.last_snapshot(node, time)? else {
                continue;
            };
            let mut procs = self.conn.prepare_cached(
                "SELECT p.pid, p.home, p.home_pid, p.state, c.text FROM procs p
                 JOIN cmdlines c ON c.id = p.cmdline WHERE p.snapshot = ?1 ORDER BY p.pid",
            )?;
            let rows = procs.query_map([snapshot], |r| {
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

    /// Whether `node` has a sample within two collector intervals before `time`.
    fn was_up(&self, node: NodeId, time: Time) -> Result<bool> {
        let window = (2 * self.interval).max(2);
        let mut up = false;
        scan::for_each(&self.conn, Some(node), time - window, time, |_, _| {
            up = true;
        })?;
        Ok(up)
    }

    /// The id and time of the latest process list of `node` taken at or before `time`.
    fn last_snapshot(&self, node: NodeId, time: Time) -> Result<Option<(i64, Time)>> {
        let mut snap = self.conn.prepare_cached(
            "SELECT id, time FROM snapshots WHERE node = ?1 AND time <= ?2
             ORDER BY time DESC LIMIT 1",
        )?;
        Ok(snap
            .query_row(params![node, time], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
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
