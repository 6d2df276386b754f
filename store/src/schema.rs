//! The database's schema, as a numbered list of migrations tracked with
//! `PRAGMA user_version` (the way cargo keeps its own SQLite caches).
//!
//! `user_version` is the number of migrations applied. A migration that has landed is
//! never edited, reordered or removed: a schema change is a new entry at the end of
//! [`MIGRATIONS`] (and a line in docs/collector.md). A file whose `user_version` is
//! beyond this list was written by a newer collector and is refused.

use rusqlite::Connection;

use crate::{Error, Result};

/// `PRAGMA application_id` of a collector database: "OMCX".
pub const APPLICATION_ID: i32 = 0x4f4d_4358;

/// The migrations, oldest first. NEVER edit one that has landed: append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first schema (docs/collector.md "Schema").
    r"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE nodes (
    id        INTEGER PRIMARY KEY,
    address   TEXT NOT NULL,
    event_seq INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE samples (
    time INTEGER NOT NULL,
    node INTEGER NOT NULL,
    load INTEGER NOT NULL,
    util INTEGER NOT NULL,
    mem  INTEGER NOT NULL,
    rmem INTEGER NOT NULL,
    PRIMARY KEY (time, node)
) STRICT, WITHOUT ROWID;

CREATE TABLE node_info (
    node   INTEGER NOT NULL,
    time   INTEGER NOT NULL,
    cpus   INTEGER NOT NULL,
    speed  INTEGER NOT NULL,
    tmem   INTEGER NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (node, time)
) STRICT, WITHOUT ROWID;

CREATE TABLE snapshots (
    id   INTEGER PRIMARY KEY,
    node INTEGER NOT NULL,
    time INTEGER NOT NULL,
    UNIQUE (node, time)
) STRICT;

CREATE TABLE cmdlines (
    id   INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE procs (
    snapshot INTEGER NOT NULL,
    pid      INTEGER NOT NULL,
    home     INTEGER NOT NULL,
    home_pid INTEGER NOT NULL,
    state    TEXT NOT NULL,
    cmdline  INTEGER NOT NULL,
    PRIMARY KEY (snapshot, pid)
) STRICT, WITHOUT ROWID;

CREATE TABLE checkpoints (
    id      INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    note    TEXT NOT NULL
) STRICT;
CREATE INDEX checkpoints_time ON checkpoints (time_ms);

CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    node    INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    text    TEXT NOT NULL,
    pid     INTEGER,
    seq     INTEGER
) STRICT;
CREATE INDEX events_time ON events (time_ms);

CREATE VIEW procs_view AS
SELECT s.time, s.node, p.pid, p.home, p.home_pid, p.state, c.text AS cmdline
FROM procs p
JOIN snapshots s ON s.id = p.snapshot
JOIN cmdlines c ON c.id = p.cmdline;

CREATE VIEW samples_full AS
SELECT s.node, s.time, s.load, s.util, s.mem, s.rmem, i.tmem, i.speed, i.cpus, i.status
FROM samples s
LEFT JOIN node_info i ON i.node = s.node AND i.time = (
    SELECT max(time) FROM node_info WHERE node = s.node AND time <= s.time
);
",
    // 2: samples older than a minute packed per node and minute (docs/collector.md
    // "Packed samples"); `samples_all` reads both as plain rows. The existing rows are
    // packed by `convert` in the same transaction.
    r"
CREATE TABLE sample_blocks (
    time  INTEGER NOT NULL,
    node  INTEGER NOT NULL,
    last  INTEGER NOT NULL,
    count INTEGER NOT NULL CHECK (count > 0),
    data  BLOB NOT NULL,
    PRIMARY KEY (time, node),
    CHECK (last >= time AND last - time < 600)
) STRICT, WITHOUT ROWID;

CREATE VIEW samples_all AS
WITH RECURSIVE
bytes (node, first, n, hex, pos, b, acc, shift, k, val) AS (
    SELECT node, time, count, hex(data), 3,
           (instr('0123456789ABCDEF', substr(hex(data), 3, 1)) - 1) * 16
           + instr('0123456789ABCDEF', substr(hex(data), 4, 1)) - 1,
           0, 0, 0, NULL
    FROM sample_blocks WHERE substr(hex(data), 1, 2) = '01'
    UNION ALL
    SELECT node, first, n, hex, pos + 2,
           (instr('0123456789ABCDEF', substr(hex, pos + 2, 1)) - 1) * 16
           + instr('0123456789ABCDEF', substr(hex, pos + 3, 1)) - 1,
           CASE WHEN b < 128 THEN 0 ELSE acc | ((b & 127) << shift) END,
           CASE WHEN b < 128 THEN 0 ELSE shift + 7 END,
           k + (b < 128),
           CASE WHEN b < 128 THEN acc | ((b & 127) << shift) END
    FROM bytes WHERE pos < length(hex)
),
deltas (node, first, n, k, d) AS (
    SELECT node, first, n, k - 1,
           CASE WHEN val & 1
                THEN ~((val >> 1) & 9223372036854775807)
                ELSE (val >> 1) & 9223372036854775807 END
    FROM bytes WHERE val IS NOT NULL AND k <= 5 * n
),
vals (node, first, n, k, v) AS (
    SELECT node, first, n, k,
           sum(d) OVER (PARTITION BY node, first, k / n ORDER BY k)
           + CASE WHEN k / n = 0 THEN first ELSE 0 END
    FROM deltas
)
SELECT max(CASE WHEN k / n = 0 THEN v END) AS time, node,
       max(CASE WHEN k / n = 1 THEN v END) AS load,
       max(CASE WHEN k / n = 2 THEN v END) AS util,
       max(CASE WHEN k / n = 3 THEN v END) AS mem,
       max(CASE WHEN k / n = 4 THEN v END) AS rmem
FROM vals GROUP BY node, first, k % n
UNION ALL
SELECT time, node, load, util, mem, rmem FROM samples;

DROP VIEW samples_full;
CREATE VIEW samples_full AS
SELECT s.node, s.time, s.load, s.util, s.mem, s.rmem, i.tmem, i.speed, i.cpus, i.status
FROM samples_all s
LEFT JOIN node_info i ON i.node = s.node AND i.time = (
    SELECT max(time) FROM node_info WHERE node = s.node AND time <= s.time
);
",
];

/// The part of a migration SQL cannot do, run in the same transaction after its SQL:
/// `version` is the schema version the migration brings the file to.
fn convert(conn: &Connection, version: i64) -> Result<()> {
    if version == 2 {
        crate::pack::convert(conn)?;
    }
    Ok(())
}

/// The schema version this program writes: the number of migrations.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// The schema version of an open database.
pub fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Brings the database up to [`latest`], one transaction per migration; a new file gets
/// the [`APPLICATION_ID`]. Refuses a file of another program or of a newer collector.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let mut v = version(conn)?;
    if app != APPLICATION_ID && (app != 0 || v != 0) {
        return Err(Error::NotOurs);
    }
    if v > latest() {
        return Err(Error::TooNew {
            found: v,
            known: latest(),
        });
    }
    if app == 0 {
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    }
    while v < latest() {
        let tx = conn.transaction()?;
        let index = usize::try_from(v).map_err(|_| Error::NotOurs)?;
        tx.execute_batch(MIGRATIONS[index])?;
        v += 1;
        convert(&tx, v)?;
        tx.pragma_update(None, "user_version", v)?;
        tx.commit()?;
    }
    Ok(())
}

/// Checks that a database opened read-only is one this program can read.
pub fn check_readable(conn: &Connection) -> Result<()> {
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let v = version(conn)?;
    if app != APPLICATION_ID || v == 0 {
        return Err(Error::NotOurs);
    }
    if v > latest() {
        return Err(Error::TooNew {
            found: v,
            known: latest(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_strangers() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(version(&c).unwrap(), latest());
        migrate(&mut c).unwrap();
        assert_eq!(version(&c).unwrap(), latest());
        check_readable(&c).unwrap();

        let mut newer = Connection::open_in_memory().unwrap();
        migrate(&mut newer).unwrap();
        newer
            .pragma_update(None, "user_version", latest() + 1)
            .unwrap();
        assert!(matches!(migrate(&mut newer), Err(Error::TooNew { .. })));

        let mut other = Connection::open_in_memory().unwrap();
        other.execute_batch("CREATE TABLE x (a);").unwrap();
        other.pragma_update(None, "user_version", 3).unwrap();
        assert!(matches!(migrate(&mut other), Err(Error::NotOurs)));
    }
}
