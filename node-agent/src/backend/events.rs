//! The node's event log: what was done to it through the suite (signals, renices, admin
//! changes, jobs started, migrations, locks, masks), for the collector's history.
//!
//! Every agent of a node is its own process (one per SSH channel), so the log lives in a
//! file they share: `<state_dir>/events.jsonl`, one JSON [`Event`] a line, mode 0600,
//! rotated to `events.jsonl.1` when it would grow beyond 1 MiB. `seq` increases by one
//! with every event across processes and rotations: an append takes an exclusive
//! `flock` on `<state_dir>/events.lock`, reads the last seq from the file's tail (or from
//! the rotated file's when the current one is empty), rotates if needed and writes the
//! whole line with one `O_APPEND` write. Readers take the lock shared.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use openmosix_hpc::protocol::{Event, EventKind, MAX_EVENTS};

/// The log's file name in the state folder.
pub const FILE: &str = "events.jsonl";
/// The rotated log's file name.
pub const ROTATED: &str = "events.jsonl.1";
/// The lock file's name.
pub const LOCK: &str = "events.lock";
/// Size beyond which the log is rotated.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// Longest event text kept, in bytes (longer texts are cut at a character boundary).
pub const MAX_TEXT: usize = 400;
/// How much of a file's end is read to find its last seq (lines are far shorter).
const TAIL: u64 = 16 * 1024;

/// A handle on one node's event log. Handles in several processes (or several in one)
/// may append to the same folder's log at once.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    rotated: PathBuf,
    lock_file: File,
    max_bytes: u64,
    /// flock excludes other open files, not other threads using this one.
    local: Mutex<()>,
}

fn open_0600(path: &Path, append: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    // Never through a link planted under the log's name.
    o.create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW);
    if append {
        o.append(true);
    } else {
        o.read(true).write(true);
    }
    o.open(path)
}

fn cut(text: &str) -> String {
    let text = text.trim();
    if text.len() <= MAX_TEXT {
        return text.to_owned();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Parses the complete lines of `data` (a trailing partial line is left out).
fn parse_lines(data: &[u8]) -> Vec<Event> {
    let complete = match data.iter().rposition(|&b| b == b'\n') {
        Some(i) => &data[..=i],
        None => return Vec::new(),
    };
    complete
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<Event>(l).ok())
        .collect()
}

/// The last seq of a log file (0 when it is missing or empty).
fn last_seq_of(path: &Path) -> io::Result<u64> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(TAIL);
    f.seek(SeekFrom::Start(start))?;
    let mut data = Vec::new();
    f.read_to_end(&mut data)?;
    if start > 0 {
        // The first line may be cut: drop it.
        match data.iter().position(|&b| b == b'\n') {
            Some(i) => {
                data.drain(..=i);
            }
            None => data.clear(),
        }
    }
    Ok(parse_lines(&data).last().map_or(0, |e| e.seq))
}

fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

impl EventLog {
    /// Opens (creating if needed) the event log in `state_dir`.
    pub fn open(state_dir: &Path) -> io::Result<EventLog> {
        openmosix_hpc::files::private_dir(state_dir)?;
        let lock_file = open_0600(&state_dir.join(LOCK), false)?;
        let log = EventLog {
            path: state_dir.join(FILE),
            rotated: state_dir.join(ROTATED),
            lock_file,
            max_bytes: MAX_BYTES,
            local: Mutex::new(()),
        };
        drop(open_0600(&log.path, true)?);
        // Reading the last seq now reports an unreadable log at start, not at the first event.
        log.last_seq()?;
        Ok(log)
    }

    /// The same log rotated beyond `bytes` instead of [`MAX_BYTES`] (for tests).
    #[must_use]
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn last_seq_unlocked(&self) -> io::Result<u64> {
        match last_seq_of(&self.path)? {
            0 => last_seq_of(&self.rotated),
            n => Ok(n),
        }
    }

    /// The seq of the latest event (0 when there is none).
    pub fn last_seq(&self) -> io::Result<u64> {
        let _local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        self.lock_file.lock_shared()?;
        let r = self.last_seq_unlocked();
        self.lock_file.unlock()?;
        r
    }

    /// Appends one event now and returns it.
    pub fn append(&self, kind: EventKind, text: &str, pid: Option<i32>) -> io::Result<Event> {
        self.append_marked(kind, text, pid, false)
    }

    /// Appends one event now, marked as the load balancer's when `auto`, and returns it.
    pub fn append_marked(
        &self,
        kind: EventKind,
        text: &str,
        pid: Option<i32>,
        auto: bool,
    ) -> io::Result<Event> {
        let _local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        self.lock_file.lock()?;
        let r = self.last_seq_unlocked().and_then(|last| {
            self.write(Event {
                seq: last + 1,
                time: openmosix_hpc::clock::unix_ms(),
                kind,
                text: cut(text),
                pid,
                auto,
            })
        });
        let unlocked = self.lock_file.unlock();
        let event = r?;
        unlocked?;
        Ok(event)
    }

    /// Writes `event` at the end of the log, rotating it first when it is full; the
    /// caller holds the file lock.
    fn write(&self, event: Event) -> io::Result<Event> {
        let mut line = serde_json::to_vec(&event).map_err(io::Error::other)?;
        line.push(b'\n');
        let size = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        if size > 0 && size + line.len() as u64 > self.max_bytes {
            std::fs::rename(&self.path, &self.rotated)?;
        }
        // One write(2) of the whole line on an O_APPEND file.
        open_0600(&self.path, true)?.write_all(&line)?;
        Ok(event)
    }

    /// The events with `seq > after`, oldest first, at most `max` of them.
    pub fn after(&self, after: u64, max: usize) -> io::Result<Vec<Event>> {
        let _local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        self.lock_file.lock_shared()?;
        let r = self.after_locked(after, max);
        self.lock_file.unlock()?;
        r
    }

    fn after_locked(&self, after: u64, max: usize) -> io::Result<Vec<Event>> {
        if self.last_seq_unlocked()? <= after {
            return Ok(Vec::new());
        }
        let current = parse_lines(&read_all(&self.path)?);
        let mut out = Vec::new();
        if current.first().is_none_or(|e| e.seq > after + 1) {
            out.extend(
                parse_lines(&read_all(&self.rotated)?)
                    .into_iter()
                    .filter(|e| e.seq > after),
            );
        }
        out.extend(current.into_iter().filter(|e| e.seq > after));
        out.truncate(max);
        Ok(out)
    }

    /// [`EventLog::after`] with the protocol's limit.
    pub fn answer(&self, after: u64) -> io::Result<Vec<Event>> {
        self.after(after, MAX_EVENTS)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn appends_and_reads_after() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        assert_eq!(log.last_seq().unwrap(), 0);
        assert!(log.after(0, 10).unwrap().is_empty());
        let a = log
            .append(EventKind::Renice, "reniced process 12 to 5", Some(12))
            .unwrap();
        let b = log
            .append(EventKind::Admin, "switched block on", None)
            .unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert!(b.time >= a.time && a.time > 1_600_000_000_000);
        assert_eq!(log.after(0, 10).unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(log.after(1, 10).unwrap(), vec![b]);
        assert_eq!(log.after(0, 1).unwrap(), vec![a.clone()]);
        assert!(log.after(2, 10).unwrap().is_empty());
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A new handle (a new agent process) goes on from the last seq.
        let again = EventLog::open(dir.path()).unwrap();
        assert_eq!(again.last_seq().unwrap(), 2);
        assert_eq!(again.append(EventKind::Run, "x", None).unwrap().seq, 3);
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with(r#"{"seq":1,"time":"#), "{text}");
        assert!(
            !text.contains("auto"),
            "unmarked events carry no mark: {text}"
        );
        // The balancer's moves are marked, and the mark survives the round trip.
        let m = again
            .append_marked(EventKind::MigrateOut, "moved", Some(7), true)
            .unwrap();
        assert!(m.auto && !a.auto);
        assert_eq!(again.after(3, 10).unwrap(), vec![m]);
    }

    #[test]
    fn long_texts_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        let e = log.append(EventKind::Run, &"é".repeat(1000), None).unwrap();
        assert!(e.text.len() <= MAX_TEXT + '…'.len_utf8());
        assert!(e.text.ends_with('…'));
    }

    #[test]
    fn rotation_keeps_seq_and_answers_across_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap().with_max_bytes(1000);
        for i in 1..=40 {
            let e = log
                .append(
                    EventKind::Signal,
                    &format!("sent SIGSTOP to process {i}"),
                    Some(i),
                )
                .unwrap();
            assert_eq!(e.seq, u64::try_from(i).unwrap());
        }
        let rotated = dir.path().join(ROTATED);
        assert!(rotated.is_file());
        assert!(std::fs::metadata(log.path()).unwrap().len() <= 1000);
        let current = parse_lines(&std::fs::read(log.path()).unwrap());
        let first = current.first().unwrap().seq;
        assert!(first > 1, "the current file starts after a rotation");
        let old = parse_lines(&std::fs::read(&rotated).unwrap());
        assert_eq!(old.last().unwrap().seq + 1, first);
        // An answer that starts in the rotated file goes on into the current one.
        let got = log.after(first - 3, 100).unwrap();
        let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (first - 2..=40).collect::<Vec<_>>());
        // Rotating right after opening: the seq comes from the rotated file.
        std::fs::rename(log.path(), dir.path().join("gone")).unwrap();
        std::fs::write(log.path(), b"").unwrap();
        let reopened = EventLog::open(dir.path()).unwrap();
        assert_eq!(reopened.last_seq().unwrap(), old.last().unwrap().seq);
    }

    #[test]
    fn concurrent_appenders_never_repeat_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    // Each thread has its own handle, as two agent processes do.
                    let log = EventLog::open(&path).unwrap().with_max_bytes(8 * 1024);
                    for i in 0..200 {
                        log.append(EventKind::Admin, &format!("writer {t} event {i}"), None)
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut all = parse_lines(&std::fs::read(path.join(ROTATED)).unwrap());
        all.extend(parse_lines(&std::fs::read(path.join(FILE)).unwrap()));
        let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
        let last = *seqs.last().unwrap();
        assert_eq!(last, 400);
        // Both files hold a contiguous run ending at the last seq, and every line is whole.
        let first = seqs[0];
        assert_eq!(seqs, (first..=last).collect::<Vec<_>>());
        let text = std::fs::read_to_string(path.join(FILE)).unwrap();
        assert!(
            text.lines()
                .all(|l| serde_json::from_str::<Event>(l).is_ok())
        );
        let shared = EventLog::open(&path).unwrap();
        assert_eq!(shared.last_seq().unwrap(), 400);
    }
}
