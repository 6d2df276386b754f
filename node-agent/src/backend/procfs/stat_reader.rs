//! /proc/PID/stat read again only when its process may have changed.
//!
//! Each listing needs every process's stat line, and the kernel's making of it
//! (`do_task_stat`: its times summed over the threads, its memory counters, a dozen
//! numbers printed) was half of an idle agent's CPU. A process that has not run since
//! the last look has the same line, and /proc/PID/schedstat says whether it ran at a
//! third of the cost: its time on a CPU, its time waiting for one and how often it ran,
//! all three moving whenever it is scheduled. So the stat line of a single-threaded
//! process is read again only when its schedstat line moved, when its nice value is not
//! the kept one (another process can renice it: getpriority(2), no text to make), when
//! its parent has ended (it has a new one), and in any case every [`REFRESH`] (its
//! resident size shrinks when the kernel reclaims without it running).
//! schedstat covers the main thread only, so a process of several threads is read every
//! time; so is every process where schedstat says nothing (`0 0 0`: no scheduler
//! statistics in this kernel), and every process of a /proc that is not the agent's own
//! (getpriority speaks of the agent's PID namespace).
//!
//! The files are kept open from one listing to the next, so that reading one again is a
//! single pread(2) instead of an open, a read and a close. A kept file names its process,
//! not the pid: once that process is gone it reads ESRCH (even when the pid was given to
//! another), and is opened again. At most `budget` files are kept.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::FileExt as _;
use std::time::{Duration, Instant};

use super::{ProcFs, ProcStat, STAT_CAP, parse_stat};
use crate::backend::Result;
use crate::backend::syscalls::nice_of;

/// How long a kept stat line is used at most while schedstat says its process has not
/// run (each process's first one is spread over half to one and a half of it).
pub const REFRESH: Duration = Duration::from_secs(10);

/// A schedstat line: three decimal numbers of at most 20 digits, spaces and a newline.
const SCHED_CAP: usize = 72;

/// A schedstat line as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sched {
    bytes: [u8; SCHED_CAP],
    len: usize,
}

impl Sched {
    fn read(file: &fs::File) -> Option<Sched> {
        let mut bytes = [0u8; SCHED_CAP];
        let len = file.read_at(&mut bytes, 0).ok()?;
        // A line that fills the buffer is not one this reader knows.
        (len > 0 && len < SCHED_CAP).then_some(Sched { bytes, len })
    }

    /// Whether the kernel keeps scheduler statistics (else the line is `0 0 0`).
    fn says_something(&self) -> bool {
        !self.bytes[..self.len].starts_with(b"0 0 0")
    }
}

/// One process's kept files and its last stat line.
#[derive(Debug)]
struct Kept {
    stat: fs::File,
    sched: Option<fs::File>,
    /// The schedstat line read just before the stat line, that line, and when it is
    /// read again whatever schedstat says.
    last: Option<(Sched, ProcStat, Instant)>,
}

impl Kept {
    /// The schedstat line now, if there is a file for it.
    fn sched_now(&self) -> Option<Sched> {
        self.sched.as_ref().and_then(Sched::read)
    }

    /// The kept stat line, if `now_sched` says the process has not run since it was read,
    /// its nice value is the kept one and it is not due again.
    fn unchanged(&self, now_sched: Option<&Sched>, now: Instant) -> Option<ProcStat> {
        let (seen, st, due) = self.last.as_ref()?;
        let single = st.activity.2 == 1;
        let same = single && now < *due && now_sched == Some(seen) && seen.says_something();
        (same && nice_of(st.info.pid) == Some(st.info.nice)).then(|| st.clone())
    }
}

/// /proc/PID/stat of every listed process, read again only when it may have changed (the
/// module's documentation).
#[derive(Debug)]
pub struct StatReader {
    open: HashMap<i32, Kept>,
    /// Files kept open now (one or two a process).
    files: usize,
    budget: usize,
    /// Whether the /proc read is the agent's own (known at the first read).
    own: Option<bool>,
    /// Stat lines used again since the start, for tests and diagnostics.
    pub reused: u64,
}

impl StatReader {
    /// A reader that keeps at most `budget` files open.
    pub fn new(budget: usize) -> StatReader {
        StatReader {
            open: HashMap::new(),
            files: 0,
            budget,
            own: None,
            reused: 0,
        }
    }

    /// Files kept open now.
    pub fn kept(&self) -> usize {
        self.files
    }

    /// Reads process `pid` as [`ProcFs::stat_only`] does: its kept stat line when it has
    /// not run since, else through its kept file (opened and kept now while the budget
    /// allows).
    pub fn read(&mut self, procfs: &ProcFs, pid: i32) -> Result<ProcStat> {
        let now = Instant::now();
        let own = *self.own.get_or_insert_with(|| procfs.is_own());
        if let Some(kept) = self.open.get_mut(&pid) {
            // schedstat before stat: a process that runs in between shows it next time.
            let sched = kept.sched_now();
            if let Some(st) = kept.unchanged(sched.as_ref(), now) {
                self.reused += 1;
                return Ok(st);
            }
            if let Some(st) = pread_stat(&kept.stat, procfs.page_size) {
                let due = now + REFRESH;
                kept.last = sched.map(|s| (s, st.clone(), due));
                return Ok(st);
            }
            // Gone (or the pid is another process's now): opened afresh below.
            self.forget(pid);
        }
        let dir = procfs.root.join(pid.to_string());
        if self.files < self.budget
            && let Ok(stat) = fs::File::open(dir.join("stat"))
        {
            let sched = (own && self.files + 2 <= self.budget)
                .then(|| fs::File::open(dir.join("schedstat")).ok())
                .flatten();
            let mut kept = Kept {
                stat,
                sched,
                last: None,
            };
            let sched = kept.sched_now();
            if let Some(st) = pread_stat(&kept.stat, procfs.page_size) {
                kept.last = sched.map(|s| (s, st.clone(), now + first_refresh(pid)));
                self.files += 1 + usize::from(kept.sched.is_some());
                self.open.insert(pid, kept);
                return Ok(st);
            }
        }
        procfs.stat_only(pid)
    }

    /// Closes the files of the pids not in `alive`, and reads again the processes whose
    /// parent is not in it (they have a new one).
    pub fn retain(&mut self, alive: &HashSet<i32>) {
        for kept in self.open.values_mut() {
            if kept
                .last
                .as_ref()
                .is_some_and(|(_, st, _)| st.info.ppid > 0 && !alive.contains(&st.info.ppid))
            {
                kept.last = None;
            }
        }
        let gone: Vec<i32> = self
            .open
            .keys()
            .filter(|pid| !alive.contains(pid))
            .copied()
            .collect();
        for pid in gone {
            self.forget(pid);
        }
    }

    fn forget(&mut self, pid: i32) {
        if let Some(kept) = self.open.remove(&pid) {
            self.files -= 1 + usize::from(kept.sched.is_some());
        }
    }
}

/// When a process's first kept line is read again at the latest: between half and one
/// and a half [`REFRESH`], by its pid, so that the processes listed together at the start
/// are not all read again in the same listing ever after.
fn first_refresh(pid: i32) -> Duration {
    REFRESH / 2 + REFRESH / 10 * (pid.unsigned_abs() % 10)
}

/// Reads a kept /proc/PID/stat from its start: `None` when its process is gone.
fn pread_stat(file: &fs::File, page_size: u64) -> Option<ProcStat> {
    let mut buf = [0u8; STAT_CAP];
    let n = file.read_at(&mut buf, 0).ok()?;
    let mut st = parse_stat(buf.get(..n).filter(|b| !b.is_empty() && n < STAT_CAP)?)?;
    st.info.rss = st.info.rss.saturating_mul(page_size);
    Some(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this(reader: &mut StatReader, procfs: &ProcFs) -> ProcStat {
        let pid = i32::try_from(std::process::id()).unwrap_or_else(|e| panic!("{e}"));
        reader.read(procfs, pid).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn a_sleeping_process_is_read_once_and_a_running_one_every_time() {
        let procfs = ProcFs::new("/proc");
        // A child that only sleeps: its stat line is used again.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap_or_else(|e| panic!("sleep: {e}"));
        let pid = i32::try_from(child.id()).unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(Duration::from_millis(200));
        let mut reader = StatReader::new(64);
        let first = reader
            .read(&procfs, pid)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(reader.kept(), 2, "stat and schedstat kept open");
        for _ in 0..5 {
            let again = reader
                .read(&procfs, pid)
                .unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(again, first);
        }
        assert_eq!(reader.reused, 5, "the sleeping child's line used again");

        // Reniced by another process (it does not run for that): read again.
        crate::backend::syscalls::renice(pid, first.info.nice + 1)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let reniced = reader
            .read(&procfs, pid)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(reniced.info.nice, first.info.nice + 1);
        assert_eq!(reader.reused, 5, "a reniced process is read again");
        assert_eq!(reader.read(&procfs, pid).ok(), Some(reniced.clone()));
        assert_eq!(reader.reused, 6);

        // Its parent gone from the listing: read again (it has a new one).
        reader.retain(&HashSet::from([pid]));
        assert_eq!(reader.read(&procfs, pid).ok(), Some(reniced));
        assert_eq!(
            reader.reused, 6,
            "a process whose parent ended is read again"
        );

        // This test's own process runs between two reads: read afresh each time (it has
        // several threads anyway when the test harness runs tests in parallel).
        let before = reader.reused;
        let a = this(&mut reader, &procfs);
        let mut spin = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            spin = spin.wrapping_add(1);
        }
        assert!(spin > 0);
        let b = this(&mut reader, &procfs);
        assert_eq!(
            reader.reused, before,
            "a running process is read every time"
        );
        assert!(b.activity.0 >= a.activity.0);

        // Gone: the kept files are dropped and the pid reads as no process.
        let _ = child.kill();
        let _ = child.wait();
        assert!(reader.read(&procfs, pid).is_err());
        reader.retain(&HashSet::new());
        assert_eq!(reader.kept(), 0);
    }

    #[test]
    fn first_refreshes_are_spread_over_a_refresh() {
        let spread: HashSet<Duration> = (0..20).map(first_refresh).collect();
        assert_eq!(spread.len(), 10);
        assert!(
            spread
                .iter()
                .all(|d| *d >= REFRESH / 2 && *d < REFRESH * 3 / 2)
        );
    }
}
