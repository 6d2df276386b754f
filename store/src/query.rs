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
//!
//! The calls live by what they read: `samples` (samples and their buckets), `stats`
//! (the static data and "find out"), `procs` (process lists and where a pid was),
//! `marks` (checkpoints and events).

use std::path::{Path, PathBuf};
use std::time::Duration;

use openmosix_hpc::model::NodeId;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

use crate::store::{BUSY_TIMEOUT_MS, link_target};
use crate::{Result, Time, scan, schema};

mod marks;
mod procs;
mod samples;
mod stats;

pub use marks::{Checkpoint, EventRow};
pub use procs::ProcRow;
pub use samples::{Bucket, Sample};
pub use stats::{NodeStatic, Stats};

/// A node of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    /// openMosix id.
    pub id: NodeId,
    /// Address it was reached at.
    pub address: String,
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

/// Bytes of a stored MiB figure.
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
}
