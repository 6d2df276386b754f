//! A history that heals: a damaged live file is moved aside and a new one started
//! ([`open_live_healing`]), and old rotated files are removed beyond a number kept
//! ([`prune_rotated`]).

use std::path::{Path, PathBuf};

use super::{Store, link_target, rotate::remove_with_journal};
use crate::{Error, Result};

/// The meta key of a new history that replaced a damaged one: the damaged file's new
/// name, why it was set aside, and when (`NAME: WHY (at YYYY-mm-dd HH:MM:SS UTC)`).
pub const META_SET_ASIDE: &str = "set_aside";

/// A damaged history moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// The file as it was named.
    pub from: PathBuf,
    /// Its new name, `NAME.corrupt-YYYYmmdd-HHMMSS`.
    pub to: PathBuf,
    /// Why SQLite refused it.
    pub why: String,
}

impl SetAside {
    /// The sentence for the log.
    pub fn sentence(&self) -> String {
        format!(
            "the history {} is damaged ({}); it was moved aside as {} and a new history started",
            self.from.display(),
            self.why,
            self.to.display()
        )
    }
}

/// The file `link` leads to: its target, or `link` itself when it is a regular file.
fn live_file(link: &Path) -> Option<PathBuf> {
    let meta = std::fs::symlink_metadata(link).ok()?;
    if meta.file_type().is_symlink() {
        link_target(link).filter(|t| t.is_file())
    } else {
        meta.is_file().then(|| link.to_path_buf())
    }
}

/// `FILE.corrupt-STAMP[-N]` that does not exist yet.
fn aside_name(file: &Path, t: crate::Time) -> PathBuf {
    let stamp = crate::utc_stamp(t);
    let mut n = 1;
    loop {
        let name = if n == 1 {
            format!("{}.corrupt-{stamp}", file.display())
        } else {
            format!("{}.corrupt-{stamp}-{n}", file.display())
        };
        let p = PathBuf::from(name);
        if std::fs::symlink_metadata(&p).is_err() {
            return p;
        }
        n += 1;
    }
}

/// Opens the live history as [`Store::open_live`] does; a file that is not a database
/// or is corrupt is renamed `NAME.corrupt-STAMP` (its `-wal` and `-shm` with it) and a
/// new history is started, whose meta `set_aside` says so (the analyzer shows it). A
/// file of another program or of a newer collector is refused, never moved.
pub fn open_live_healing(link: &Path) -> Result<(Store, Option<SetAside>)> {
    let error = match Store::open_live(link) {
        Ok(store) => return Ok((store, None)),
        Err(e) if e.is_corrupt_file() => e,
        Err(e) => return Err(e),
    };
    let Some(from) = live_file(link) else {
        return Err(error);
    };
    let now = crate::now();
    let to = aside_name(&from, now);
    for suffix in ["", "-wal", "-shm"] {
        let a = PathBuf::from(format!("{}{suffix}", from.display()));
        if a.exists() {
            let b = PathBuf::from(format!("{}{suffix}", to.display()));
            std::fs::rename(&a, &b)
                .map_err(|e| Error::io(format!("cannot move aside {}", a.display()), e))?;
        }
    }
    let set_aside = SetAside {
        from,
        to,
        why: error.to_string(),
    };
    let store = Store::open_live(link)?;
    let name = set_aside
        .to
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    store.set_meta(
        META_SET_ASIDE,
        &format!("{name}: {} (at {})", set_aside.why, crate::utc_text(now)),
    )?;
    Ok((store, Some(set_aside)))
}

/// The rotated histories beside `link` (`STEM-YYYYmmdd-HHMMSS[-N].EXT`), oldest first.
fn rotated(link: &Path) -> Vec<PathBuf> {
    let dir = crate::store::parent_dir(link);
    let stem = link
        .file_stem()
        .map_or_else(|| "history".into(), |s| s.to_string_lossy().into_owned());
    let ext = link
        .extension()
        .map_or_else(|| "db".into(), |s| s.to_string_lossy().into_owned());
    let prefix = format!("{stem}-");
    let suffix = format!(".{ext}");
    let mut found: Vec<((String, u32), PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
            // YYYYmmdd-HHMMSS, then -N for a second file of the same second.
            let (stamp, n) = match rest.get(15..) {
                Some("") => (rest, 1),
                Some(more) => (rest.get(..15)?, more.strip_prefix('-')?.parse().ok()?),
                None => return None,
            };
            let digits = stamp.bytes().enumerate().all(|(i, b)| {
                if i == 8 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
            (digits && e.file_type().is_ok_and(|t| t.is_file()))
                .then(|| ((stamp.to_owned(), n), e.path()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// Removes the oldest rotated histories beside `link` (with their `-wal` and `-shm`) so
/// that at most `keep` are left; `current` (the file being written) is never counted
/// nor removed. `keep` 0 keeps them all. Returns the files removed.
pub fn prune_rotated(link: &Path, current: &Path, keep: usize) -> Vec<PathBuf> {
    if keep == 0 {
        return Vec::new();
    }
    let old: Vec<PathBuf> = rotated(link)
        .into_iter()
        .filter(|p| p.file_name() != current.file_name())
        .collect();
    let excess = old.len().saturating_sub(keep);
    let removed: Vec<PathBuf> = old.into_iter().take(excess).collect();
    for p in &removed {
        remove_with_journal(p);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_moved_aside_and_a_new_history_started() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("history.db");
        drop(Store::open_live(&link).unwrap());
        let file = link_target(&link).unwrap();
        std::fs::write(&file, vec![0xA5u8; 8192]).unwrap();
        let (store, aside) = open_live_healing(&link).unwrap();
        let aside = aside.expect("moved aside");
        assert_eq!(aside.from, file);
        assert!(
            aside.to.to_string_lossy().contains(".corrupt-"),
            "{aside:?}"
        );
        assert_eq!(std::fs::read(&aside.to).unwrap(), vec![0xA5u8; 8192]);
        assert_eq!(link_target(&link).unwrap(), store.file());
        assert!(crate::History::open(&link).is_ok(), "the new history reads");
        let note = store.meta(META_SET_ASIDE).unwrap().unwrap();
        assert!(note.contains(".corrupt-"), "{note}");
        assert!(aside.sentence().contains("moved aside"));
        drop(store);
        // A sound file is opened as it is.
        let (_, again) = open_live_healing(&link).unwrap();
        assert_eq!(again, None);
    }

    #[test]
    fn another_programs_database_is_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("history.db");
        let other = rusqlite::Connection::open(&link).unwrap();
        other
            .execute_batch("PRAGMA application_id = 42; CREATE TABLE t (x)")
            .unwrap();
        drop(other);
        assert!(open_live_healing(&link).is_err());
        assert!(link.is_file());
    }

    #[test]
    fn prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("history.db");
        let names = [
            "history-20261201-000000.db",
            "history-20261202-000000.db",
            "history-20261202-000000-2.db",
            "history-20261203-000000.db",
            "history-20261204-000000.db",
            "history-notes.db",
            "other-20261201-000000.db",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        std::fs::write(dir.path().join("history-20261201-000000.db-wal"), b"x").unwrap();
        let current = dir.path().join("history-20261204-000000.db");
        let removed = prune_rotated(&link, &current, 2);
        let removed: Vec<String> = removed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            removed,
            ["history-20261201-000000.db", "history-20261202-000000.db"]
        );
        let left: std::collections::BTreeSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!left.contains("history-20261201-000000.db-wal"));
        for n in [
            "history-20261202-000000-2.db",
            "history-20261203-000000.db",
            "history-20261204-000000.db",
            "history-notes.db",
            "other-20261201-000000.db",
        ] {
            assert!(left.contains(n), "{n} kept: {left:?}");
        }
        assert!(prune_rotated(&link, &current, 0).is_empty());
    }
}
