//! The process list of a linux node, read with as few looks at /proc as it takes.
//!
//! Every listing reads each process's `stat` (one open, one read) and the node-wide
//! [`Tables`]. What changes only when a process does something — its uid and tracer
//! (`status`), its command line, and what its open files and memory map say for
//! `cantmove` ([`Files`]) — is kept per process and read again only when:
//!
//! - the process is new, or its pid now names another process (another start time);
//! - it ran: its CPU time, page faults or threads moved ([`ProcStat::activity`]), or its
//!   name changed (an exec), or it went into or out of a stop or zombie state;
//! - the node-wide tables say something no kept process explains: a TCP connection or
//!   a connected unix socket whose inode none of them holds (then the files of every
//!   process are looked at once, and the inodes still unexplained — sockets of processes
//!   the agent cannot look into, or of the kernel — are remembered as such);
//! - the OFD locks or the SysV shared memory in use changed (every process again);
//! - it was last looked at [`REFRESH`] ago (spread over the processes), so that nothing
//!   the signals above miss stays wrong for long.
//!
//! A window that asks for one process (`proc`, `can_migrate`) always gets it read afresh,
//! and so do the agent's own checks before a migration; the fresh look is kept.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::backend::cantmove::{FileId, Files, Tables};
use crate::backend::procfs::{Activity, ProcFs, ProcStat};
use openmosix_hpc::bytes::BytesOrText;

/// The shortest time a kept look at a process is used before it is read again (the
/// longest is 1.5 times it): the net under the signals above, for what they miss (a
/// tracer that attached without stopping the process, a file opened in a run too short
/// to count).
pub const REFRESH: Duration = Duration::from_secs(60);

/// Socket inodes kept per process; for one with more, `cantmove` reads its files at
/// every listing ([`Files::overflow`]).
const SOCKETS_PER_PROCESS: usize = 4096;

/// Socket inodes kept for all processes together (8 bytes each).
const SOCKETS_KEPT: usize = 256 * 1024;

/// The most /proc files kept open by [`crate::backend::procfs::StatReader`] (stat and
/// schedstat, two a process): each holds a page of the kernel's memory (16 MiB at most,
/// on a node of 2048 processes and more), so a node of more processes reads the rest
/// with an open, a read and a close each.
pub const STAT_FILES_KEPT: usize = 4096;

/// How many stat files to keep open: [`STAT_FILES_KEPT`], or a quarter of the
/// descriptors this process may open when that is fewer (the agent raises its limit at
/// start, `serve`).
pub fn stat_files_budget() -> usize {
    let (soft, _) = crate::backend::syscalls::fd_limits();
    usize::try_from(soft / 4).map_or(STAT_FILES_KEPT, |n| n.min(STAT_FILES_KEPT))
}

/// What is kept of one process between listings.
#[derive(Debug, Clone)]
struct Entry {
    starttime: u64,
    activity: Activity,
    state: char,
    comm: BytesOrText,
    uid: u32,
    tracer: i32,
    cmdline: BytesOrText,
    /// `None` for the processes whose `cantmove` never needs them (kernel threads, the
    /// agent, init).
    files: Option<Files>,
    /// When the kept look is due again.
    due: Instant,
    /// The listing that last looked (see [`Listing::round`]).
    round: u64,
}

/// The kept looks at the processes of a node, by pid.
#[derive(Debug, Default)]
pub struct Listing {
    entries: HashMap<i32, Entry>,
    /// Socket inodes of the tables that no process the agent can look into holds.
    orphans: HashSet<u64>,
    /// The OFD-locked files and the SysV attach state the kept files were read against.
    ofd: HashSet<FileId>,
    shm: Option<bool>,
    /// Counts listings.
    round: u64,
    /// Socket inodes kept now, over all entries.
    kept: usize,
}

/// When a look at process `pid` taken `now` is due again: [`REFRESH`] to 1.5 × it later,
/// spread by pid; after the `first` look a quarter of it to 1.5 × it, so that the
/// processes a first listing saw together are not all read again together.
fn due(pid: i32, now: Instant, first: bool) -> Instant {
    let refresh = u64::try_from(REFRESH.as_millis()).unwrap_or(60_000);
    let (least, span) = if first {
        (refresh / 4, refresh * 5 / 4)
    } else {
        (refresh, refresh / 2)
    };
    let spread = u64::from(pid.unsigned_abs()).wrapping_mul(7919) % span.max(1);
    now + Duration::from_millis(least + spread)
}

/// Whether moving from state `a` to `b` may have changed what is kept: a stop (a
/// tracer attached), or an end.
fn telling(a: char, b: char) -> bool {
    a != b && [a, b].iter().any(|s| matches!(s, 't' | 'T' | 'Z' | 'X'))
}

impl Listing {
    /// Fills in what `stats` (read with [`ProcFs::stat_only`]) lack — uid, tracer,
    /// command line — and keeps each process's [`Files`] ([`Listing::files`]), reading
    /// only what may have changed. `skip_files(pid)` names the processes whose files are
    /// never needed. Processes not in `stats` are forgotten.
    pub fn update(
        &mut self,
        procfs: &ProcFs,
        stats: &mut [ProcStat],
        tables: &Tables,
        skip_files: impl Fn(&ProcStat) -> bool,
    ) {
        let now = Instant::now();
        self.round += 1;
        let seen: HashSet<i32> = stats.iter().map(|s| s.info.pid).collect();
        self.entries.retain(|pid, _| seen.contains(pid));
        // When the OFD locks or the SysV attach state changed, every process's files
        // are read again (both are rare).
        let all = tables.ofd_files != self.ofd || tables.shm_attached != self.shm;
        if all {
            self.ofd.clone_from(&tables.ofd_files);
            self.shm = tables.shm_attached;
        }
        self.kept = self
            .entries
            .values()
            .filter_map(|e| e.files.as_ref())
            .map(|f| f.sockets.len())
            .sum();
        for st in stats.iter_mut() {
            let skip = skip_files(st);
            self.look(procfs, st, tables, now, all, skip);
        }
        let mut held = self.held();
        if !all && self.unexplained(&held, tables) {
            for st in stats.iter_mut() {
                let fresh = self
                    .entries
                    .get(&st.info.pid)
                    .is_some_and(|e| e.round == self.round);
                if !fresh && !skip_files(st) {
                    self.look(procfs, st, tables, now, true, false);
                }
            }
            held = self.held();
        }
        self.orphans = socket_inodes(tables)
            .filter(|i| !held.contains(i))
            .collect();
    }

    /// What the open files of process `pid` said when last looked at, if kept.
    pub fn files(&self, pid: i32) -> Option<&Files> {
        self.entries.get(&pid).and_then(|e| e.files.as_ref())
    }

    /// Keeps a fresh look at process `st` (read whole, with [`ProcFs::stat`]) and its
    /// `files`, as a request for that one process read them.
    pub fn keep(&mut self, st: &ProcStat, files: Option<Files>) {
        self.insert(st, files, Instant::now());
    }

    /// Fills in process `st` from its kept look, reading it again when it may have
    /// changed (or when `force`); its files are not read when `skip`.
    fn look(
        &mut self,
        procfs: &ProcFs,
        st: &mut ProcStat,
        tables: &Tables,
        now: Instant,
        force: bool,
        skip: bool,
    ) {
        let pid = st.info.pid;
        if let Some(e) = self.entries.get_mut(&pid)
            && !force
            && e.starttime == st.starttime
            && e.activity == st.activity
            && e.comm == st.info.comm
            && !telling(e.state, st.info.state)
            && now < e.due
            && (skip || e.files.is_some())
        {
            st.info.uid = e.uid;
            st.tracer_pid = e.tracer;
            st.info.cmdline.clone_from(&e.cmdline);
            e.state = st.info.state;
            return;
        }
        if !st.kthread
            && let Some((uid, tracer)) = procfs.ids(pid)
        {
            st.info.uid = uid;
            st.tracer_pid = tracer;
        }
        st.info.cmdline = procfs.cmdline(pid, st);
        self.forget_files(pid);
        let room = SOCKETS_KEPT
            .saturating_sub(self.kept)
            .min(SOCKETS_PER_PROCESS);
        let files = (!skip && !st.kthread).then(|| Files::read(procfs, pid, tables, room));
        self.insert(st, files, now);
    }

    /// Keeps `st` and `files` as the look at process `st` taken `now`, within the
    /// bounds on socket inodes kept (the rest is marked as not kept).
    fn insert(&mut self, st: &ProcStat, mut files: Option<Files>, now: Instant) {
        let pid = st.info.pid;
        let first = self
            .entries
            .get(&pid)
            .is_none_or(|e| e.starttime != st.starttime);
        self.forget_files(pid);
        if let Some(f) = files.as_mut() {
            let room = SOCKETS_KEPT
                .saturating_sub(self.kept)
                .min(SOCKETS_PER_PROCESS);
            if f.sockets.len() > room {
                f.sockets.truncate(room);
                f.overflow = true;
            }
            self.kept += f.sockets.len();
        }
        self.entries.insert(
            pid,
            Entry {
                starttime: st.starttime,
                activity: st.activity,
                state: st.info.state,
                comm: st.info.comm.clone(),
                uid: st.info.uid,
                tracer: st.tracer_pid,
                cmdline: st.info.cmdline.clone(),
                files,
                due: due(pid, now, first),
                round: self.round,
            },
        );
    }

    /// Takes the socket inodes of process `pid`'s kept files off the count.
    fn forget_files(&mut self, pid: i32) {
        if let Some(old) = self.entries.get_mut(&pid).and_then(|e| e.files.take()) {
            self.kept = self.kept.saturating_sub(old.sockets.len());
        }
    }

    /// The socket inodes the kept files hold.
    fn held(&self) -> HashSet<u64> {
        self.entries
            .values()
            .filter_map(|e| e.files.as_ref())
            .flat_map(|f| f.sockets.iter().copied())
            .collect()
    }

    /// Whether the tables show a connection whose socket neither a kept process holds
    /// nor was found unexplained before.
    fn unexplained(&self, held: &HashSet<u64>, tables: &Tables) -> bool {
        socket_inodes(tables).any(|i| !held.contains(&i) && !self.orphans.contains(&i))
    }
}

/// The socket inodes the tables name: established TCP connections, connected unix
/// sockets.
fn socket_inodes(tables: &Tables) -> impl Iterator<Item = u64> + '_ {
    tables
        .tcp
        .keys()
        .chain(tables.unix_connected.iter())
        .copied()
}
