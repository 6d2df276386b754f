//! History files in tests: reading back what a test had written (by the collector or by
//! hand), and another program holding one locked.

use std::path::Path;

use openmosix_store::History;

/// Another program's exclusive lock on a history file: whoever opens it waits until
/// [`ExclusiveLock::release`].
#[derive(Debug)]
pub struct ExclusiveLock(rusqlite::Connection);

impl ExclusiveLock {
    /// Takes the lock on the file at `path` (waiting up to 20 s for a reader to finish).
    pub fn take(path: &Path) -> ExclusiveLock {
        let conn = rusqlite::Connection::open(path).expect("open the file to lock");
        // A reader may be in the file: wait for it.
        conn.busy_timeout(std::time::Duration::from_secs(20))
            .expect("busy timeout");
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
            .expect("lock");
        ExclusiveLock(conn)
    }

    /// Ends the transaction and closes the file: the lock is gone.
    pub fn release(self) {
        self.0.execute_batch("COMMIT").expect("unlock");
    }
}

/// The number of rows of nodes 1, 2 and 3 in the samples table or view `table`
/// (`samples`: plain rows only; `samples_all`: packed blocks too).
pub fn sample_counts(h: &History, table: &str) -> [i64; 3] {
    let mut out = [0; 3];
    for (node, count) in (1i64..).zip(out.iter_mut()) {
        *count = h
            .connection()
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE node = ?1"),
                [node],
                |r| r.get(0),
            )
            .expect("count");
    }
    out
}
