//! The writer: one SQLite transaction per tick, the live file and its rotation.
//!
//! The path the user names (`--db`, by default `history.db`) is a symbolic link to the
//! file being written, `history-YYYYmmdd-HHMMSS.db` (UTC, when that file's history
//! begins). Rotating (`-r`, or every `--rotate-hours`) starts a new dated file and moves
//! the link to it; no file is ever renamed while it is open, so a reader (the analyzer,
//! `sqlite3`) of an older file is never disturbed. A `--db` that is a regular file (made
//! by hand) is written in place and renamed to its dated name when it is rotated.
//!
//! Durability: WAL with `synchronous=NORMAL`. A kill -9 loses nothing that was committed
//! (the WAL is in the page cache); a power cut may lose the last ticks, never the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openmosix_hpc::model::{NodeId, NodeStatus};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use crate::{Error, Result, Time, pack, schema};

pub mod heal;
mod rotate;
mod tick;

pub use heal::{SetAside, open_live_healing, prune_rotated};
pub use rotate::RotateError;
use tick::InfoRow;
pub use tick::{EventIn, ProcIn, Tick, TickReport};

/// Milliseconds a connection waits for another one's lock before giving up.
pub const BUSY_TIMEOUT_MS: u64 = 5000;
/// WAL pages after which SQLite checkpoints by itself (4 MiB with 4 KiB pages).
pub const WAL_AUTOCHECKPOINT: u32 = 1000;
/// Size the WAL file is cut back to after a checkpoint.
pub const JOURNAL_SIZE_LIMIT: i64 = 8 * 1024 * 1024;
/// Default seconds between two full process lists of a node.
pub const SNAPSHOT_EVERY: Time = 10;

/// Bytes to the MiB the database keeps (rounded to the nearest).
pub fn mib(bytes: u64) -> i64 {
    i64::try_from(bytes.saturating_add(1 << 19) >> 20).unwrap_or(i64::MAX)
}

/// The name `status` has in `node_info`.
pub fn status_name(status: NodeStatus) -> &'static str {
    match status {
        NodeStatus::Up => "up",
        NodeStatus::Blocked => "blocked",
        NodeStatus::Off => "off",
    }
}

/// The writing side of one history file.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// The file written.
    file: PathBuf,
    /// The path the user named (a link to `file`, or `file` itself).
    link: PathBuf,
    created: Time,
    snapshot_every: Time,
    info: HashMap<NodeId, InfoRow>,
    snaps: HashMap<NodeId, (Time, Vec<i32>)>,
    cmdlines: HashMap<String, i64>,
    /// A copy of the plain `samples` rows, for packing them without reading them back
    /// (`None`: not known, e.g. after a rollback; read at the next pack).
    plain: Option<pack::Plain>,
}

/// Applies the writer's settings to a connection.
fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!("journal_mode is {mode}, not wal");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    Ok(())
}

/// The folder of a file path (`.` for a bare name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `dir/STEM-STAMP[-N].EXT` that does not exist yet.
fn dated_name(link: &Path, t: Time) -> PathBuf {
    let dir = link.parent().unwrap_or(Path::new("."));
    let stem = link
        .file_stem()
        .map_or_else(|| "history".into(), |s| s.to_string_lossy().into_owned());
    let ext = link
        .extension()
        .map_or_else(|| "db".into(), |s| s.to_string_lossy().into_owned());
    let stamp = crate::utc_stamp(t);
    let mut n = 1;
    loop {
        let name = if n == 1 {
            format!("{stem}-{stamp}.{ext}")
        } else {
            format!("{stem}-{stamp}-{n}.{ext}")
        };
        let p = dir.join(name);
        if std::fs::symlink_metadata(&p).is_err() {
            return p;
        }
        n += 1;
    }
}

/// Points `link` at `target` (a file in the same folder) atomically.
fn point_link(link: &Path, target: &Path) -> Result<()> {
    let name = target.file_name().unwrap_or(target.as_os_str());
    // symlink(2) never replaces anything: a fresh name, then rename over the link.
    let tmp = openmosix_hpc::files::temp_name(link);
    std::os::unix::fs::symlink(name, &tmp)
        .map_err(|e| Error::io(format!("cannot make the link {}", tmp.display()), e))?;
    std::fs::rename(&tmp, link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("cannot move the link {}", link.display()), e)
    })
}

/// The file a link points to (relative targets are taken from the link's folder).
pub fn link_target(link: &Path) -> Option<PathBuf> {
    let t = std::fs::read_link(link).ok()?;
    Some(if t.is_absolute() {
        t
    } else {
        link.parent().unwrap_or(Path::new(".")).join(t)
    })
}

impl Store {
    /// Opens (creating and migrating if needed) exactly the file `path`, with no link.
    pub fn open_file(path: &Path) -> Result<Store> {
        Self::open_at(path, path)
    }

    fn open_at(file: &Path, link: &Path) -> Result<Store> {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        }
        let mut conn = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        schema::migrate(&mut conn)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('created', ?1) ON CONFLICT (key) DO NOTHING",
            [crate::now().to_string()],
        )?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('collector_version', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [env!("CARGO_PKG_VERSION")],
        )?;
        let created: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'created'", [], |r| {
                r.get(0)
            })?;
        Ok(Store {
            conn,
            file: file.to_path_buf(),
            link: link.to_path_buf(),
            created: created.parse().unwrap_or_else(|_| crate::now()),
            snapshot_every: SNAPSHOT_EVERY,
            info: HashMap::new(),
            snaps: HashMap::new(),
            cmdlines: HashMap::new(),
            plain: None,
        })
    }

    /// Opens the live history named `link`: the file it links to, a new dated file if
    /// there is none yet, or `link` itself if it is a regular file.
    pub fn open_live(link: &Path) -> Result<Store> {
        match std::fs::symlink_metadata(link) {
            Ok(m) if m.file_type().is_symlink() => match link_target(link) {
                Some(t) if t.is_file() => Self::open_at(&t, link),
                _ => Self::new_live(link),
            },
            Ok(_) => Self::open_at(link, link),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::new_live(link),
            Err(e) => Err(Error::io(format!("cannot read {}", link.display()), e)),
        }
    }

    fn new_live(link: &Path) -> Result<Store> {
        let file = dated_name(link, crate::now());
        let store = Self::open_at(&file, link)?;
        point_link(link, &file)?;
        Ok(store)
    }

    /// Sets how old a node's last snapshot may get before a new one is written.
    pub fn set_snapshot_every(&mut self, secs: Time) {
        self.snapshot_every = secs.max(1);
    }

    /// Seconds between full snapshots.
    pub fn snapshot_every(&self) -> Time {
        self.snapshot_every
    }

    /// The file written.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// When this file's history began (s).
    pub fn created(&self) -> Time {
        self.created
    }

    /// The connection (for tests and tools).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Records the cluster's nodes and their addresses.
    pub fn set_nodes(&mut self, nodes: &[(NodeId, String)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO nodes (id, address) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET address = excluded.address",
            )?;
            for (id, address) in nodes {
                st.execute(params![id, address])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The last agent event seq stored per node.
    pub fn event_seqs(&self) -> Result<HashMap<NodeId, u64>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, event_seq FROM nodes")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, NodeId>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, seq) = row?;
            out.insert(id, u64::try_from(seq).unwrap_or(0));
        }
        Ok(out)
    }

    /// Writes a checkpoint (a blue line in the analyzer) now.
    pub fn add_checkpoint(&self, note: &str) -> Result<i64> {
        let t = crate::now_ms();
        self.conn.execute(
            "INSERT INTO checkpoints (time_ms, note) VALUES (?1, ?2)",
            params![t, note],
        )?;
        Ok(t)
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)`: copies the WAL into the file and empties it.
    /// Returns whether it completed (readers may hold it back).
    pub fn wal_checkpoint(&self) -> Result<bool> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(busy == 0)
    }

    /// A meta value of the file.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets a meta value of the file.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            [key, value],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmosix_hpc::model::NodeInfo;

    fn info(id: NodeId, load: f64) -> NodeInfo {
        NodeInfo {
            id,
            cpus: 2,
            speed: 1000,
            load,
            util: 12.4,
            mem: 3 << 30,
            rmem: 1 << 30,
            tmem: 4 << 30,
            status: NodeStatus::Up,
        }
    }

    fn proc(pid: i32, cmd: &str) -> ProcIn {
        ProcIn {
            pid,
            home: 1,
            home_pid: pid,
            state: 'S',
            cmdline: cmd.into(),
        }
    }

    #[test]
    fn ticks_write_samples_info_changes_snapshots_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open_file(&dir.path().join("h.db")).unwrap();
        s.set_nodes(&[(1, "a".into()), (2, "b".into())]).unwrap();
        for t in 100..110 {
            let mut tick = Tick {
                time: t,
                samples: vec![(1, info(1, 150.4)), (2, info(2, 0.0))],
                procs: vec![(1, vec![proc(10, "sleep 1"), proc(11, "sleep 2")])],
                ..Tick::default()
            };
            if t == 105 {
                tick.samples[1].1.speed = 2000;
                tick.procs[0].1.push(proc(12, "sleep 1"));
                tick.events.push(EventIn {
                    node: 2,
                    time_ms: t * 1000 + 5,
                    kind: "admin".into(),
                    text: "set the speed to 2000".into(),
                    pid: None,
                    seq: Some(7),
                });
                tick.event_seqs.push((2, 7));
            }
            let r = s.write_tick(&tick).unwrap();
            assert_eq!(r.samples, 2);
        }
        let c = s.connection();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT count(*) FROM samples"), 20);
        assert_eq!(
            count("SELECT load FROM samples WHERE node = 1 LIMIT 1"),
            150
        );
        assert_eq!(
            count("SELECT mem FROM samples WHERE node = 1 LIMIT 1"),
            3072
        );
        // Both nodes at 100, node 2's speed at 105 and back at 106.
        assert_eq!(count("SELECT count(*) FROM node_info"), 4);
        // 100 (first), 105 (pid set changed), 106 (changed back); not 110 (10 s later).
        assert_eq!(count("SELECT count(*) FROM snapshots"), 3);
        assert_eq!(count("SELECT count(*) FROM procs"), 7);
        assert_eq!(count("SELECT count(*) FROM cmdlines"), 2);
        assert_eq!(count("SELECT count(*) FROM events"), 1);
        assert_eq!(s.event_seqs().unwrap().get(&2), Some(&7));
        assert_eq!(
            count("SELECT speed FROM samples_full WHERE node = 2 AND time = 105"),
            2000
        );
        assert_eq!(
            count("SELECT speed FROM samples_full WHERE node = 2 AND time = 107"),
            1000
        );
        assert_eq!(
            count("SELECT speed FROM samples_full WHERE node = 2 AND time = 104"),
            1000
        );
    }

    #[test]
    fn live_link_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("history.db");
        let mut s = Store::open_live(&link).unwrap();
        let first = s.file().to_path_buf();
        assert_eq!(link_target(&link).unwrap(), first);
        assert!(
            first
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("history-")
        );
        s.set_nodes(&[(1, "a".into())]).unwrap();
        s.write_tick(&Tick {
            time: 5,
            samples: vec![(1, info(1, 1.0))],
            event_seqs: vec![(1, 42)],
            ..Tick::default()
        })
        .unwrap();
        let (s2, saved) = s.rotate().unwrap();
        assert_eq!(saved, first);
        assert_ne!(s2.file(), first);
        assert_eq!(link_target(&link).unwrap(), s2.file());
        assert_eq!(s2.event_seqs().unwrap().get(&1), Some(&42));
        let saved_name = saved.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(s2.meta("previous").unwrap(), Some(saved_name));
        let old = Connection::open(&saved).unwrap();
        let n: i64 = old
            .query_row("SELECT count(*) FROM samples", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        drop(s2);
        // Reopening follows the link to the newest file.
        let s3 = Store::open_live(&link).unwrap();
        assert_eq!(Some(s3.file().to_path_buf()), link_target(&link));
    }

    #[test]
    fn a_regular_file_is_adopted_and_renamed_when_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("mine.db");
        let s = Store::open_live(&link).unwrap();
        drop(s);
        // Make it a regular file, as a user would by copying.
        let target = link_target(&link).unwrap();
        std::fs::remove_file(&link).unwrap();
        std::fs::rename(&target, &link).unwrap();
        let s = Store::open_live(&link).unwrap();
        assert_eq!(s.file(), link);
        let (s2, saved) = s.rotate().unwrap();
        assert!(saved.is_file());
        assert!(saved.to_string_lossy().contains("mine-"));
        assert_eq!(link_target(&link).unwrap(), s2.file());
    }
}
