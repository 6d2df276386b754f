//! The collector's history file (HOWTO 10.6): everything that reads or writes it, with no
//! network and no runtime, so that the analyzer and the history windows link it without
//! the daemon.
//!
//! - [`schema`]: the tables, as a numbered migration list (`PRAGMA user_version`).
//! - [`block`], [`pack`]: samples older than a minute, packed per node and minute.
//! - [`store`]: the writer — one transaction per tick, live file and rotation.
//! - [`query`]: [`History`], the read API (samples, aggregates, stats, checkpoints,
//!   events, process lists at a time, where a pid was).
//! - [`export`]: every sample as CSV rows.
//! - [`worker`]: a window's query thread (only the newest request of each kind is
//!   answered).
//! - [`paths`]: where a history lives when nobody says.
//!
//! docs/collector.md describes the schema.

pub mod block;
pub mod export;
pub mod pack;
pub mod paths;
pub mod query;
mod scan;
pub mod schema;
pub mod store;
pub mod worker;

pub use query::{Bucket, Checkpoint, EventRow, History, NodeRow, ProcRow, Sample, Stats};
pub use store::Store;

/// A time in the history: seconds since the Unix epoch (UTC).
pub type Time = i64;

/// What can go wrong reading or writing a history.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite's own error.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file could not be read, written or renamed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// A packed block of samples is damaged (docs/collector.md "Packed samples").
    #[error("the packed samples of node {node} from {time} are damaged: {why}")]
    Damaged {
        /// The block's node.
        node: u32,
        /// The block's first time (s).
        time: i64,
        /// What is wrong.
        why: String,
    },
    /// The file is not a collector database.
    #[error("not an openmosixcollector database")]
    NotOurs,
    /// The file was written by a newer collector.
    #[error("written by a newer openmosixcollector (schema {found}; this one knows up to {known})")]
    TooNew {
        /// The file's `user_version`.
        found: i64,
        /// The newest schema this program knows.
        known: i64,
    },
}

impl Error {
    /// Whether the file itself is damaged: not an SQLite database at all, or a corrupt
    /// one (what the collector moves aside at start; a file of another program or of a
    /// newer collector is refused instead).
    pub fn is_corrupt_file(&self) -> bool {
        use rusqlite::ErrorCode;
        matches!(
            self,
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
        )
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result of the collector's library calls.
pub type Result<T> = std::result::Result<T, Error>;

/// Now, in seconds since the epoch.
pub fn now() -> Time {
    now_ms().div_euclid(1000)
}

/// Now, in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    i64::try_from(openmosix_hpc::clock::unix_ms()).unwrap_or(i64::MAX)
}

/// `YYYYmmdd-HHMMSS` in UTC, for file names.
pub fn utc_stamp(t: Time) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// `YYYY-mm-dd HH:MM:SS` in UTC, for people.
pub fn utc_text(t: Time) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// Calendar date and time of a Unix time (UTC), after Howard Hinnant's `civil_from_days`.
fn civil(t: Time) -> (i64, i64, i64, i64, i64, i64) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(utc_stamp(1_700_000_000), "20231114-221320");
        assert_eq!(utc_text(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
