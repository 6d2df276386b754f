//! What is marked on the time line: checkpoints and events.

use openmosix_hpc::model::NodeId;
use rusqlite::params;

use super::History;
use crate::{Result, Time};

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

/// A checkpoint row: `time_ms, note`.
fn checkpoint(r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        time_ms: r.get(0)?,
        note: r.get(1)?,
    })
}

/// An event row: `time_ms, node, kind, text, pid`.
fn event(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        time_ms: r.get(0)?,
        node: r.get(1)?,
        kind: r.get(2)?,
        text: r.get(3)?,
        pid: r.get(4)?,
    })
}

impl History {
    /// The checkpoints in `from..=to` (s), oldest first.
    pub fn checkpoints(&self, from: Time, to: Time) -> Result<Vec<Checkpoint>> {
        let sql = "SELECT time_ms, note FROM checkpoints
                   WHERE time_ms BETWEEN ?1 AND ?2 ORDER BY time_ms, id";
        self.marks(sql, from, to, checkpoint)
    }

    /// The events of every node in `from..=to` (s), oldest first.
    pub fn events(&self, from: Time, to: Time) -> Result<Vec<EventRow>> {
        let sql = "SELECT time_ms, node, kind, text, pid FROM events
                   WHERE time_ms BETWEEN ?1 AND ?2 ORDER BY time_ms, id";
        self.marks(sql, from, to, event)
    }

    /// The rows of `sql` (with `?1` and `?2` the first and last millisecond of
    /// `from..=to`), read by `row`.
    fn marks<T>(
        &self,
        sql: &str,
        from: Time,
        to: Time,
        row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map(params![from * 1000, to * 1000 + 999], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
