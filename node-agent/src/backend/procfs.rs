//! Readers for the Linux /proc files both backends use, under a configurable root so
//! that tests can point them at fixture trees.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::Result;

mod stat_reader;
use openmosix_hpc::bytes::BytesOrText;
use openmosix_hpc::model::{MigMask, NodeId, ProcInfo, RunOptions};
use openmosix_hpc::protocol::{AgentError, ErrorKind};
pub use stat_reader::StatReader;

/// A process as /proc/PID/stat and /proc/PID/status show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcStat {
    /// What the protocol shows of it (pid, ppid, uid, state, nice, times, sizes, comm,
    /// cmdline), the openMosix fields left at their defaults until
    /// [`ProcStat::into_info`].
    pub info: ProcInfo,
    /// Start time after boot, ticks (tells a pid's reuse apart).
    pub starttime: u64,
    /// Kernel thread (flag PF_KTHREAD).
    pub kthread: bool,
    /// Pid of a tracer, 0 if none.
    pub tracer_pid: i32,
    /// What moves whenever the process runs (its CPU time, page faults and threads, all
    /// threads counted): when it stays the same, the process has not run enough to have
    /// changed its open files, command line or ids since it was last looked at.
    pub activity: Activity,
}

/// The figures of /proc/PID/stat that move when a process runs: (utime + stime ticks,
/// minor + major faults, threads).
pub type Activity = (u64, u64, u64);

const PF_KTHREAD: u64 = 0x0020_0000;

/// What openMosix adds to a process (HOWTO table 8-5 and 8.4); each backend knows it
/// its own way.
#[derive(Debug, Clone, Default)]
pub struct OpenMosixFields {
    /// Node it runs on.
    pub where_: NodeId,
    /// Its home node.
    pub home: NodeId,
    /// Its pid on its home node.
    pub home_pid: i32,
    /// Migrations so far.
    pub nmigs: u32,
    /// Locked where it is.
    pub lock: bool,
    /// Why it cannot move ("" if it can).
    pub cantmove: String,
    /// Cluster mask.
    pub mask: MigMask,
    /// mosrun options, if the agent started it.
    pub run: Option<RunOptions>,
    /// A candidate for automatic load balancing.
    pub candidate: bool,
    /// It arrived by an automatic move of the load balancer.
    pub auto_moved: bool,
}

impl ProcStat {
    /// The protocol's view of this process, with the openMosix fields.
    pub fn into_info(self, om: OpenMosixFields) -> ProcInfo {
        ProcInfo {
            where_: om.where_,
            home: om.home,
            home_pid: om.home_pid,
            nmigs: om.nmigs,
            lock: om.lock,
            cantmove: om.cantmove,
            mask: om.mask,
            run: om.run,
            candidate: om.candidate,
            auto_moved: om.auto_moved,
            ..self.info
        }
    }
}

/// A /proc tree.
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
    page_size: u64,
}

/// Reads at most `limit` bytes of a /proc file: the rest is never read (nor, for
/// cmdline, copied out of the process's memory by the kernel).
///
/// /proc files report a size of 0 and give all they have to one large enough read, so
/// this is open, one read, close: a read that fills the buffer is followed by more, a
/// shorter one ends the file (no read for the end, no size asked for).
fn read_at_most(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut file = fs::File::open(path)?;
    let mut buf = vec![0u8; limit.min(4096)];
    let mut len = 0;
    loop {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if len < buf.len() || len >= limit {
            break;
        }
        buf.resize(limit.min(buf.len() * 2), 0);
    }
    buf.truncate(len);
    Ok(buf)
}

/// The longest command line the agent sends, in bytes: a longer one (any local user can
/// start a process with megabytes of arguments) is cut to this, at a character boundary,
/// and ends with [`CMDLINE_CUT_MARK`] (docs/protocol.md).
pub const CMDLINE_CAP: usize = 4096;

/// What ends a command line that was cut at [`CMDLINE_CAP`] bytes.
pub const CMDLINE_CUT_MARK: &str = "…";

/// The part of /proc/PID/status read: the fields used (Uid, TracerPid) come in its first
/// lines; the file's size is the kernel's, this bound only guards against surprises.
const STATUS_CAP: usize = 64 * 1024;

/// The part of /proc/PID/stat read: the line is about 300 bytes (52 numbers and a name of
/// at most 64 bytes).
const STAT_CAP: usize = 4096;

/// A command line as /proc/PID/cmdline gives it (at most `CMDLINE_CAP + 1` bytes of it),
/// NULs between arguments made spaces; cut and marked when longer than [`CMDLINE_CAP`].
pub fn cmdline_from_raw(mut c: Vec<u8>) -> Vec<u8> {
    let cut = c.len() > CMDLINE_CAP;
    if cut {
        c.truncate(CMDLINE_CAP);
        // Do not leave half a UTF-8 character before the mark.
        if let Err(e) = std::str::from_utf8(&c)
            && e.error_len().is_none()
        {
            c.truncate(e.valid_up_to());
        }
    }
    while c.last() == Some(&0) {
        c.pop();
    }
    for b in &mut c {
        if *b == 0 {
            *b = b' ';
        }
    }
    if cut {
        c.extend_from_slice(CMDLINE_CUT_MARK.as_bytes());
    }
    c
}

fn io_err(path: &Path, e: &std::io::Error) -> AgentError {
    AgentError::io(format!("reading {}", path.display()), e)
}

impl ProcFs {
    /// A /proc tree at `root` (normally `/proc`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ProcFs {
            root: root.into(),
            page_size: 4096,
        }
    }

    /// The root path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The pids present, in ascending order.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let entries = fs::read_dir(&self.root).map_err(|e| io_err(&self.root, &e))?;
        let mut pids: Vec<i32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// Reads one process whole (stat, status, cmdline); `NoSuchProcess` if it is gone.
    pub fn stat(&self, pid: i32) -> Result<ProcStat> {
        let mut st = self.stat_only(pid)?;
        if let Some((uid, tracer)) = self.ids(pid) {
            st.info.uid = uid;
            st.tracer_pid = tracer;
        }
        st.info.cmdline = self.cmdline(pid, &st);
        Ok(st)
    }

    /// Reads /proc/PID/stat alone (one open, one read): the uid and tracer are left at 0
    /// ([`ProcFs::ids`] reads them) and the command line empty ([`ProcFs::cmdline`] reads
    /// it). `NoSuchProcess` if it is gone.
    pub fn stat_only(&self, pid: i32) -> Result<ProcStat> {
        let stat_path = self.root.join(pid.to_string()).join("stat");
        let stat = read_at_most(&stat_path, STAT_CAP).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AgentError::no_such_process(pid),
            // A process that ended between the listing and the read.
            _ if e.raw_os_error() == Some(libc::ESRCH) => AgentError::no_such_process(pid),
            _ => io_err(&stat_path, &e),
        })?;
        let mut st = parse_stat(&stat).ok_or_else(|| {
            AgentError::new(
                ErrorKind::Io,
                format!("{} is not in the stat format", stat_path.display()),
            )
        })?;
        st.info.rss = st.info.rss.saturating_mul(self.page_size);
        Ok(st)
    }

    /// The real uid and the tracer's pid (0: none) of /proc/PID/status, if it can be read.
    pub fn ids(&self, pid: i32) -> Option<(u32, i32)> {
        let path = self.root.join(pid.to_string()).join("status");
        let status = read_at_most(&path, STATUS_CAP).ok()?;
        let status = String::from_utf8_lossy(&status);
        let (mut uid, mut tracer) = (0, 0);
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("Uid:") {
                uid = rest
                    .split_whitespace()
                    .next()
                    .and_then(|u| u.parse().ok())
                    .unwrap_or(0);
            } else if let Some(rest) = line.strip_prefix("TracerPid:") {
                tracer = rest.trim().parse().unwrap_or(0);
            }
        }
        Some((uid, tracer))
    }

    /// The command line of process `st` (cut at [`CMDLINE_CAP`]), or its name in
    /// brackets when it has none (a kernel thread: its cmdline is not read at all).
    pub fn cmdline(&self, pid: i32, st: &ProcStat) -> BytesOrText {
        let raw = if st.kthread {
            Vec::new()
        } else {
            let path = self.root.join(pid.to_string()).join("cmdline");
            read_at_most(&path, CMDLINE_CAP + 1).unwrap_or_default()
        };
        if raw.is_empty() {
            let mut b = b"[".to_vec();
            b.extend_from_slice(st.info.comm.as_bytes());
            b.push(b']');
            BytesOrText(b)
        } else {
            // The read buffer is a page; lists keep thousands of these.
            let mut c = cmdline_from_raw(raw);
            c.shrink_to_fit();
            BytesOrText(c)
        }
    }

    /// `(MemTotal, MemFree, MemAvailable)` in bytes.
    pub fn meminfo(&self) -> Result<(u64, u64, u64)> {
        let path = self.root.join("meminfo");
        let text = fs::read_to_string(&path).map_err(|e| io_err(&path, &e))?;
        let field = |name: &str| -> Option<u64> {
            text.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(':'))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
                .map(|kb| kb * 1024)
        };
        let total = field("MemTotal").ok_or_else(|| {
            AgentError::new(ErrorKind::Io, format!("{} has no MemTotal", path.display()))
        })?;
        let free = field("MemFree").unwrap_or(0);
        let avail = field("MemAvailable").unwrap_or(free);
        Ok((total, free, avail))
    }

    /// The aggregate `cpu` line of /proc/stat as `(busy, total)` ticks, and
    /// `procs_running`.
    pub fn cpu_times(&self) -> Result<(u64, u64, u32)> {
        let path = self.root.join("stat");
        let text = fs::read_to_string(&path).map_err(|e| io_err(&path, &e))?;
        let mut busy_total = None;
        let mut running = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("cpu ") {
                let v: Vec<u64> = rest
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                let total: u64 = v.iter().take(8).sum();
                let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
                busy_total = Some((total.saturating_sub(idle), total));
            } else if let Some(rest) = line.strip_prefix("procs_running ") {
                running = rest.trim().parse().unwrap_or(0);
            }
        }
        let (busy, total) = busy_total.ok_or_else(|| {
            AgentError::new(ErrorKind::Io, format!("{} has no cpu line", path.display()))
        })?;
        Ok((busy, total, running))
    }

    /// The one-minute load average of /proc/loadavg.
    pub fn loadavg(&self) -> Result<f64> {
        let path = self.root.join("loadavg");
        let text = fs::read_to_string(&path).map_err(|e| io_err(&path, &e))?;
        text.split_whitespace()
            .next()
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| {
                AgentError::new(ErrorKind::Io, format!("{} is malformed", path.display()))
            })
    }

    /// The pid the kernel gave last in the PID namespace of the process that reads
    /// /proc/loadavg (its fifth field): while it stays, no process or thread was started
    /// there.
    pub fn last_pid(&self) -> Option<i32> {
        let text = read_at_most(&self.root.join("loadavg"), 256).ok()?;
        std::str::from_utf8(&text)
            .ok()?
            .split_ascii_whitespace()
            .nth(4)?
            .parse()
            .ok()
    }

    /// Whether this tree is the /proc of the reading process's own PID namespace (its
    /// `self` names the reader's pid), so that [`ProcFs::last_pid`] speaks of it.
    pub fn is_own(&self) -> bool {
        fs::read_link(self.root.join("self"))
            .ok()
            .and_then(|p| p.to_str()?.parse::<u32>().ok())
            == Some(std::process::id())
    }

    /// Number of CPUs: `cpuN` lines of /proc/stat.
    pub fn cpus(&self) -> Result<u32> {
        let path = self.root.join("stat");
        let text = fs::read_to_string(&path).map_err(|e| io_err(&path, &e))?;
        let n = text
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        Ok(u32::try_from(n.max(1)).unwrap_or(1))
    }
}

impl ProcFs {
    /// Established TCP connections of this network namespace: socket inode → remote
    /// address (`ip:port`).
    pub fn established_tcp(&self) -> std::collections::HashMap<u64, String> {
        let mut out = std::collections::HashMap::new();
        for file in ["net/tcp", "net/tcp6"] {
            // Read line by line: the table grows with every local user's connections.
            super::cantmove::for_each_line(&self.root.join(file), |n, line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                if n > 0
                    && f.len() > 9
                    && f[3] == "01"
                    && let Ok(inode) = f[9].parse::<u64>()
                {
                    out.insert(inode, hex_addr(f[2]));
                }
            });
        }
        out
    }
}

impl ProcFs {
    /// The TCP counters of /proc/net/snmp that move when a connection is made or ends:
    /// ActiveOpens, PassiveOpens, AttemptFails, EstabResets, CurrEstab (IPv4 and IPv6
    /// together). `None` when the file or a counter is missing.
    pub fn tcp_counters(&self) -> Option<[u64; 5]> {
        let text = read_at_most(&self.root.join("net/snmp"), 64 * 1024).ok()?;
        let text = std::str::from_utf8(&text).ok()?;
        let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
        let (names, values) = (tcp.next()?, tcp.next()?);
        let named: HashMap<&str, u64> = names
            .split_whitespace()
            .zip(values.split_whitespace())
            .filter_map(|(n, v)| Some((n, v.parse().ok()?)))
            .collect();
        let mut out = [0; 5];
        for (slot, name) in out.iter_mut().zip([
            "ActiveOpens",
            "PassiveOpens",
            "AttemptFails",
            "EstabResets",
            "CurrEstab",
        ]) {
            *slot = *named.get(name)?;
        }
        Some(out)
    }
}

/// `0100007F:1F90` → `127.0.0.1:8080` (IPv4; IPv6 addresses are shown as they are).
fn hex_addr(a: &str) -> String {
    let Some((ip, port)) = a.split_once(':') else {
        return a.to_owned();
    };
    let port = u16::from_str_radix(port, 16).unwrap_or(0);
    if ip.len() == 8
        && let Ok(n) = u32::from_str_radix(ip, 16)
    {
        let b = n.to_le_bytes();
        return format!("{}.{}.{}.{}:{port}", b[0], b[1], b[2], b[3]);
    }
    format!("[{ip}]:{port}")
}

/// Parses /proc/PID/stat. The comm field is in parentheses and may itself hold spaces
/// and parentheses, so the fields after it are found from the last `)`.
pub fn parse_stat(stat: &[u8]) -> Option<ProcStat> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let pid: i32 = std::str::from_utf8(&stat[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    // f[0] is field 3 (state) of proc(5); fields past 37 are not used. No allocation:
    // this runs for every process at every listing.
    let mut f = [""; 35];
    let mut count = 0;
    for (slot, word) in f.iter_mut().zip(rest.split_ascii_whitespace()) {
        *slot = word;
        count += 1;
    }
    let field = |n: usize| f.get(n - 3).copied().filter(|_| n - 3 < count);
    let num = |n: usize| field(n).and_then(|x| x.parse::<u64>().ok());
    Some(ProcStat {
        info: ProcInfo {
            pid,
            ppid: field(4)?.parse().ok()?,
            uid: 0,
            state: field(3)?.chars().next()?,
            nice: field(19)?.parse().ok()?,
            utime: num(14)?,
            cutime: field(16)?.parse::<i64>().ok()?.max(0).unsigned_abs(),
            vsize: num(23)?,
            rss: field(24)?.parse::<i64>().ok()?.max(0).unsigned_abs(),
            nswap: num(36).unwrap_or(0),
            cnswap: num(37).unwrap_or(0),
            comm: BytesOrText(comm),
            // Read apart ([`ProcFs::cmdline`]), when it is needed.
            cmdline: BytesOrText::default(),
            ..ProcInfo::default()
        },
        starttime: num(22)?,
        kthread: num(9).is_some_and(|flags| flags & PF_KTHREAD != 0),
        tracer_pid: 0,
        activity: (
            num(14)?.saturating_add(num(15)?),
            num(10)?.saturating_add(num(12)?),
            num(20).unwrap_or(0),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let line = b"1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 5 1 0 555 10485760 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.info.pid, 1234);
        assert_eq!(st.info.comm.lossy(), "a (b) c");
        assert_eq!(st.info.state, 'S');
        assert_eq!(st.info.ppid, 1);
        assert_eq!(st.info.utime, 7);
        assert_eq!(st.info.cutime, 2);
        assert_eq!(st.info.nice, 5);
        assert_eq!(st.starttime, 555);
        assert_eq!(st.info.vsize, 10_485_760);
        assert_eq!(st.info.rss, 300);
        assert!(!st.kthread);
    }

    #[test]
    fn tcp_addresses() {
        assert_eq!(hex_addr("0100007F:1F90"), "127.0.0.1:8080");
    }

    #[test]
    fn this_process_reads() {
        let fs = ProcFs::new("/proc");
        let me = fs.stat(i32::try_from(std::process::id()).unwrap()).unwrap();
        assert!(me.info.rss > 0);
        assert!(!me.info.cmdline.as_bytes().is_empty());
        let (total, free, avail) = fs.meminfo().unwrap();
        assert!(total > 0 && free <= total && avail <= total);
        assert!(fs.cpus().unwrap() >= 1);
        assert!(fs.stat(i32::MAX).is_err());
    }

    #[test]
    fn long_command_lines_are_cut_and_marked() {
        let short = cmdline_from_raw(b"sleep\0x\0".to_vec());
        assert_eq!(short, b"sleep x");
        let long = vec![b'x'; CMDLINE_CAP + 1];
        let cut = String::from_utf8(cmdline_from_raw(long)).unwrap();
        assert!(cut.ends_with(CMDLINE_CUT_MARK), "{cut:?}");
        assert_eq!(cut.len(), CMDLINE_CAP + CMDLINE_CUT_MARK.len());
        // A character split by the cap is left out, not half sent.
        let mut wide = vec![b'a'; CMDLINE_CAP - 1];
        wide.extend_from_slice("é".as_bytes());
        let cut = String::from_utf8(cmdline_from_raw(wide)).unwrap();
        assert_eq!(cut.len(), CMDLINE_CAP - 1 + CMDLINE_CUT_MARK.len());
        // Exactly at the cap is whole.
        assert_eq!(cmdline_from_raw(vec![b'a'; CMDLINE_CAP]).len(), CMDLINE_CAP);
    }

    #[test]
    fn a_megabyte_command_line_reads_as_its_first_four_kib() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("77");
        fs::create_dir(&dir).unwrap();
        fs::write(
            dir.join("stat"),
            "77 (big) S 1 77 77 0 -1 0 0 0 0 0 1 0 0 0 20 0 1 0 9 4096 1 0\n",
        )
        .unwrap();
        fs::write(dir.join("cmdline"), b"big\0".repeat(256 * 1024)).unwrap();
        let st = ProcFs::new(root.path()).stat(77).unwrap();
        let cmd = st.info.cmdline.lossy();
        assert!(cmd.starts_with("big big "), "{cmd:.40}");
        assert!(cmd.ends_with(CMDLINE_CUT_MARK));
        assert!(st.info.cmdline.as_bytes().len() <= CMDLINE_CAP + CMDLINE_CUT_MARK.len());
    }
}
