//! The reasons a process cannot move that need a look at its open files, its memory map
//! and the node's shared tables: what the migration core (CRIU) cannot take along to
//! another node. Used by [`super::linux::LinuxBackend`]'s `cantmove`; everything reads
//! under a [`ProcFs`] root so that fixture trees can stand in for /proc.
//!
//! The node-wide tables (/proc/net/tcp{,6}, /proc/net/unix, /proc/locks,
//! /proc/sysvipc/shm) are read once per listing into [`Tables`]; each process then costs
//! one read of its fd folder (and of its maps only when SysV shared memory may be in use).
//!
//! The reasons, in the order they are looked for (the first found wins):
//!
//! 1. `it has a TCP connection to ADDR:PORT`: an established TCP socket;
//! 2. `it has the device /dev/X open`: a device other than /dev/null, /dev/zero,
//!    /dev/full, /dev/random, /dev/urandom, /dev/tty*, /dev/pts/* and /dev/ptmx;
//! 3. `it holds a file lock`: a POSIX, FLOCK or OFD lock of /proc/locks;
//! 4. `it uses SysV shared memory`: a `/SYSV…` mapping in /proc/PID/maps;
//! 5. `it has a connected unix socket`: a unix socket in state 03 of /proc/net/unix.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

use super::procfs::ProcFs;

/// Devices a process may hold open and still move: CRIU reopens them on the target.
const MOVABLE_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/ptmx",
];

/// Folders of /dev that hold files of a file system (tmpfs, mqueue, hugetlbfs), not
/// devices.
const NOT_DEVICE_DIRS: &[&str] = &["/dev/shm/", "/dev/mqueue/", "/dev/hugepages/"];

/// A file's identity as /proc/locks shows it: (major, minor, inode).
pub type FileId = (u32, u32, u64);

/// The node-wide tables a `cantmove` needs, read once per process listing.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Established TCP connections: socket inode → peer `ip:port`.
    pub tcp: HashMap<u64, String>,
    /// Inodes of connected unix sockets (state 03 of /proc/net/unix).
    pub unix_connected: HashSet<u64>,
    /// Pids holding a POSIX, FLOCK or OFD lock (/proc/locks, waiters left out).
    pub lock_pids: HashSet<i32>,
    /// Files with an OFD lock that /proc/locks shows without an owner pid.
    pub ofd_files: HashSet<FileId>,
    /// Whether a SysV shared memory segment of the agent's IPC namespace is attached
    /// (/proc/sysvipc/shm); `None` when unknown.
    pub shm_attached: Option<bool>,
    /// The agent's IPC namespace (`self/ns/ipc`), to know when `shm_attached` applies.
    pub ipc_ns: Option<PathBuf>,
    /// The TCP counters of /proc/net/snmp when `tcp` was read, and when that was
    /// ([`Tables::refresh`]).
    pub tcp_read: Option<([u64; 5], std::time::Instant)>,
}

/// The longest [`Tables::refresh`] keeps the TCP connections while the TCP counters stay:
/// what it can miss meanwhile is a connection whose peer closed it, still held open by
/// its process (it leaves the established ones without moving a counter until that
/// process closes it too), which is as stale as a kept look at a process may be
/// (`listing::REFRESH`). Each read walks the kernel's whole connection hash: at 10 s it
/// was a tenth of an idle agent's CPU.
pub const TCP_REREAD: std::time::Duration = std::time::Duration::from_secs(60);

impl Tables {
    /// Reads the tables again for a listing. /proc/net/tcp and tcp6 cost a walk of the
    /// kernel's whole connection hash (large on a machine with much memory) however few
    /// connections there are, so they are read again only when the TCP counters of
    /// /proc/net/snmp (opens, failed attempts, resets, current connections) moved since,
    /// or [`TCP_REREAD`] passed (a connection whose peer closed it moves none of them).
    pub fn refresh(&mut self, procfs: &ProcFs) {
        let now = std::time::Instant::now();
        let counters = procfs.tcp_counters();
        let keep = match (counters, self.tcp_read) {
            (Some(c), Some((seen, at))) => c == seen && now.duration_since(at) < TCP_REREAD,
            _ => false,
        };
        let tcp = if keep {
            std::mem::take(&mut self.tcp)
        } else {
            procfs.established_tcp()
        };
        let tcp_read = if keep {
            self.tcp_read
        } else {
            counters.map(|c| (c, now))
        };
        *self = Tables {
            tcp,
            tcp_read,
            ..Tables::read_without_tcp(procfs)
        };
    }

    /// Reads the tables under the root of `procfs`; a missing file gives an empty table.
    pub fn read(procfs: &ProcFs) -> Tables {
        Tables {
            tcp: procfs.established_tcp(),
            ..Tables::read_without_tcp(procfs)
        }
    }

    /// The tables but the TCP connections.
    fn read_without_tcp(procfs: &ProcFs) -> Tables {
        let root = procfs.root();
        let text = |rel: &str| fs::read_to_string(root.join(rel)).ok();
        // /proc/locks and /proc/net/unix grow with what any local user holds: read line
        // by line, never whole.
        let mut unix_connected = HashSet::new();
        for_each_line(&root.join("net/unix"), |n, line| {
            if n > 0 {
                unix_connected.extend(parse_unix_line(line));
            }
        });
        let (mut lock_pids, mut ofd_files) = (HashSet::new(), HashSet::new());
        for_each_line(&root.join("locks"), |_, line| {
            parse_locks_line(line, &mut lock_pids, &mut ofd_files);
        });
        Tables {
            tcp: HashMap::new(),
            unix_connected,
            lock_pids,
            ofd_files,
            shm_attached: text("sysvipc/shm").map(|t| parse_shm_attached(&t)),
            ipc_ns: fs::read_link(root.join("self/ns/ipc")).ok(),
            tcp_read: None,
        }
    }
}

/// Inodes of the connected unix sockets of /proc/net/unix
/// (`Num RefCount Protocol Flags Type St Inode Path`, St 03 = connected).
pub fn parse_unix(text: &str) -> HashSet<u64> {
    text.lines().skip(1).filter_map(parse_unix_line).collect()
}

/// The inode of one /proc/net/unix line when its socket is connected.
fn parse_unix_line(line: &str) -> Option<u64> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() > 6 && f[5] == "03" {
        f[6].parse().ok()
    } else {
        None
    }
}

/// Calls `f` with each line of a /proc table and its 0-based number, reading one line at a
/// time (the tables grow with what local users hold); a missing file has no lines.
pub fn for_each_line(path: &Path, mut f: impl FnMut(usize, &str)) {
    use std::io::BufRead as _;
    let Ok(file) = fs::File::open(path) else {
        return;
    };
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    for n in 0.. {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => f(n, &String::from_utf8_lossy(&line)),
        }
    }
}

/// The lock holders of /proc/locks: pids of POSIX, FLOCK and OFDLCK locks, and the files
/// of OFD locks shown without a pid (-1). Blocked waiters (`->`) hold nothing.
///
/// A line: `1: POSIX  ADVISORY  WRITE 1234 08:01:1234567 0 EOF`.
pub fn parse_locks(text: &str) -> (HashSet<i32>, HashSet<FileId>) {
    let mut pids = HashSet::new();
    let mut ofd = HashSet::new();
    for line in text.lines() {
        parse_locks_line(line, &mut pids, &mut ofd);
    }
    (pids, ofd)
}

/// One line of /proc/locks into the holders' pids and OFD-locked files.
fn parse_locks_line(line: &str, pids: &mut HashSet<i32>, ofd: &mut HashSet<FileId>) {
    let f: Vec<&str> = line.split_whitespace().collect();
    // f[0] is the "N:" ordinal.
    let Some(kind) = f.get(1) else { return };
    if !matches!(*kind, "POSIX" | "FLOCK" | "OFDLCK") {
        return; // "->" waiters, leases, delegations
    }
    let Some(pid) = f.get(4).and_then(|p| p.parse::<i32>().ok()) else {
        return;
    };
    if pid > 0 {
        pids.insert(pid);
    } else if *kind == "OFDLCK"
        && let Some(id) = f.get(5).and_then(|d| parse_file_id(d))
    {
        ofd.insert(id);
    }
}

/// `08:01:1234567` (major and minor in hex, inode in decimal).
fn parse_file_id(s: &str) -> Option<FileId> {
    let mut it = s.split(':');
    let major = u32::from_str_radix(it.next()?, 16).ok()?;
    let minor = u32::from_str_radix(it.next()?, 16).ok()?;
    let inode = it.next()?.parse().ok()?;
    Some((major, minor, inode))
}

/// Whether /proc/sysvipc/shm shows a segment with attaches
/// (`key shmid perms size cpid lpid nattch …`).
pub fn parse_shm_attached(text: &str) -> bool {
    text.lines().skip(1).any(|line| {
        line.split_whitespace()
            .nth(6)
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    })
}

/// One open file descriptor of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fd {
    /// `<root>/PID/fd/N`.
    pub path: PathBuf,
    /// What the link points to (`/dev/sda`, `socket:[123]`, `pipe:[4]`, a path).
    pub target: PathBuf,
}

impl Fd {
    /// The inode of a socket fd.
    pub fn socket_inode(&self) -> Option<u64> {
        self.target
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    }
}

/// The open fds of process `pid` (empty when they cannot be read: gone, or not ours).
pub fn open_fds(procfs: &ProcFs, pid: i32) -> Vec<Fd> {
    let dir = procfs.root().join(pid.to_string()).join("fd");
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let path = e.ok()?.path();
        let target = fs::read_link(&path).ok()?;
        Some(Fd { path, target })
    })
    .collect()
}

/// Whether `target` (an fd's link) names a device CRIU does not move by name.
fn is_unmovable_device_name(target: &str) -> bool {
    let Some(rest) = target.strip_prefix("/dev/") else {
        return false;
    };
    !(MOVABLE_DEVICES.contains(&target)
        || rest.starts_with("tty")
        || rest.starts_with("pts/")
        || NOT_DEVICE_DIRS.iter().any(|d| target.starts_with(d)))
}

/// The first device among `fds` that keeps the process here: its path under /dev. When
/// the file can be looked at, only character and block devices count.
pub fn device(fds: &[Fd]) -> Option<String> {
    fds.iter().find_map(|fd| {
        let target = fd.target.to_str()?;
        if !is_unmovable_device_name(target) {
            return None;
        }
        match fs::metadata(&fd.path) {
            Ok(m) if !(m.file_type().is_char_device() || m.file_type().is_block_device()) => None,
            _ => Some(target.to_owned()),
        }
    })
}

/// Linux's encoding of `st_dev` into (major, minor).
fn dev_major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    )
}

/// Whether process `pid` holds a file lock: its pid in /proc/locks, or one of its open
/// files under an OFD lock /proc/locks shows without a pid.
pub fn holds_file_lock(pid: i32, fds: &[Fd], tables: &Tables) -> bool {
    if tables.lock_pids.contains(&pid) {
        return true;
    }
    !tables.ofd_files.is_empty()
        && fds.iter().any(|fd| {
            fs::metadata(&fd.path).is_ok_and(|m| {
                let (major, minor) = dev_major_minor(m.dev());
                tables.ofd_files.contains(&(major, minor, m.ino()))
            })
        })
}

/// Whether process `pid` has SysV shared memory attached: a `/SYSV…` mapping in its
/// maps. The maps are not read when /proc/sysvipc/shm of the same IPC namespace shows no
/// attached segment.
pub fn uses_sysv_shm(procfs: &ProcFs, pid: i32, tables: &Tables) -> bool {
    let dir = procfs.root().join(pid.to_string());
    if tables.shm_attached == Some(false)
        && tables.ipc_ns.is_some()
        && fs::read_link(dir.join("ns/ipc")).ok() == tables.ipc_ns
    {
        return false;
    }
    maps_have_sysv(&dir.join("maps"))
}

fn maps_have_sysv(path: &Path) -> bool {
    // A SysV segment maps as ` /SYSV<key> (deleted)`; a byte search is several times
    // cheaper than splitting every line into words (this runs for every process, every
    // second, while a window watches). The file is searched in chunks, never held whole:
    // a process of any local user can have tens of thousands of mappings with long paths.
    fs::File::open(path).is_ok_and(|f| stream_contains(f, b" /SYSV"))
}

/// Whether `needle` occurs in what `reader` gives, read in 64 KiB chunks (a match across
/// two chunks counts); a read error ends the search with what was seen.
pub fn stream_contains(mut reader: impl std::io::Read, needle: &[u8]) -> bool {
    let keep = needle.len().saturating_sub(1);
    let mut buf = vec![0u8; 64 * 1024 + keep];
    let mut carried = 0;
    loop {
        let n = match reader.read(&mut buf[carried..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let filled = carried + n;
        if buf[..filled].windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        carried = keep.min(filled);
        buf.copy_within(filled - carried..filled, 0);
    }
}

/// Whether one of `fds` is a connected unix socket.
pub fn connected_unix(fds: &[Fd], tables: &Tables) -> bool {
    fds.iter()
        .filter_map(Fd::socket_inode)
        .any(|i| tables.unix_connected.contains(&i))
}

/// The first reason of the module's list that keeps process `pid` here, if any.
pub fn reason(procfs: &ProcFs, pid: i32, tables: &Tables) -> Option<String> {
    Files::read(procfs, pid, tables, usize::MAX).reason(pid, tables)
}

/// What the open files and the memory map of one process say, for the reasons that need
/// them. They change only when the process does something (or, for the node-wide tables
/// they are held against, when the node does), so a listing keeps them from one look at
/// them to the next ([`super::linux`]) and holds them against each listing's [`Tables`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files {
    /// Inodes of its sockets, in the order of its fds (at most the number asked for).
    pub sockets: Vec<u64>,
    /// It has more sockets than were kept: [`Files::sockets`] is not all of them.
    pub overflow: bool,
    /// The first device among its fds that keeps it here ([`device`]).
    pub device: Option<String>,
    /// One of its open files is under an OFD lock that /proc/locks shows without a pid
    /// (as the tables were when the files were read).
    pub ofd_locked: bool,
    /// It has SysV shared memory attached ([`uses_sysv_shm`]).
    pub sysv: bool,
}

impl Files {
    /// Looks at the files of process `pid`, keeping at most `keep` socket inodes.
    pub fn read(procfs: &ProcFs, pid: i32, tables: &Tables, keep: usize) -> Files {
        let fds = open_fds(procfs, pid);
        let mut sockets = Vec::new();
        let mut overflow = false;
        for inode in fds.iter().filter_map(Fd::socket_inode) {
            if sockets.len() >= keep {
                overflow = true;
                break;
            }
            sockets.push(inode);
        }
        Files {
            sockets,
            overflow,
            device: device(&fds),
            ofd_locked: !tables.ofd_files.is_empty() && holds_file_lock(-1, &fds, tables),
            sysv: uses_sysv_shm(procfs, pid, tables),
        }
    }

    /// The first reason of the module's list that keeps process `pid` here, if any, with
    /// the node-wide `tables` as they are now.
    pub fn reason(&self, pid: i32, tables: &Tables) -> Option<String> {
        if let Some(peer) = self.sockets.iter().find_map(|i| tables.tcp.get(i)) {
            return Some(format!("it has a TCP connection to {peer}"));
        }
        if let Some(dev) = &self.device {
            return Some(format!("it has the device {dev} open"));
        }
        if tables.lock_pids.contains(&pid) || self.ofd_locked {
            return Some("it holds a file lock".into());
        }
        if self.sysv {
            return Some("it uses SysV shared memory".into());
        }
        if self
            .sockets
            .iter()
            .any(|i| tables.unix_connected.contains(i))
        {
            return Some("it has a connected unix socket".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fixture /proc with process `pid` holding fds linked to `targets`.
    fn tree(pid: i32, targets: &[&str]) -> (tempfile::TempDir, ProcFs) {
        let dir = tempfile::TempDir::new().unwrap();
        let fd = dir.path().join(pid.to_string()).join("fd");
        fs::create_dir_all(&fd).unwrap();
        for (n, t) in targets.iter().enumerate() {
            symlink(t, fd.join(n.to_string())).unwrap();
        }
        let procfs = ProcFs::new(dir.path());
        (dir, procfs)
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    const UNIX: &str = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 1111 /run/listen.sock
0000000000000000: 00000003 00000000 00000000 0001 03 2222
0000000000000000: 00000003 00000000 00000000 0001 03 3333 /run/x.sock
";

    const LOCKS: &str = "1: POSIX  ADVISORY  WRITE 4100 08:01:1234567 0 EOF
2: FLOCK  ADVISORY  WRITE 4200 00:1a:99 0 EOF
2: -> FLOCK  ADVISORY  WRITE 4300 00:1a:99 0 EOF
3: OFDLCK ADVISORY  READ  -1 fd:00:777 0 EOF
4: LEASE  ACTIVE    READ  4400 00:1a:5 0 EOF
";

    #[test]
    fn tables_parse() {
        assert_eq!(parse_unix(UNIX), HashSet::from([2222, 3333]));
        let (pids, ofd) = parse_locks(LOCKS);
        assert_eq!(pids, HashSet::from([4100, 4200]));
        assert_eq!(ofd, HashSet::from([(0xfd, 0, 777)]));
        let shm = "       key      shmid perms       size  cpid  lpid nattch   uid   gid\n";
        assert!(!parse_shm_attached(shm));
        assert!(parse_shm_attached(&format!(
            "{shm}         0          5   600     524288  1000  1001      2  1000  1000\n"
        )));
        assert!(!parse_shm_attached(&format!(
            "{shm}         0          5   600     524288  1000  1001      0  1000  1000\n"
        )));
        assert_eq!(dev_major_minor(0x0801), (8, 1));
        assert_eq!(dev_major_minor(0xfd00), (0xfd, 0));
    }

    #[test]
    fn devices() {
        let (_dir, procfs) = tree(
            50,
            &[
                "/dev/null",
                "/dev/urandom",
                "/dev/pts/3",
                "/dev/tty1",
                "/dev/ptmx",
                "/dev/shm/segment",
                "pipe:[12]",
                "/home/me/file",
            ],
        );
        let tables = Tables::default();
        assert_eq!(reason(&procfs, 50, &tables), None);

        let (_dir, procfs) = tree(51, &["/dev/null", "/nonexistent-dir/x", "/dev/sda"]);
        assert_eq!(
            reason(&procfs, 51, &tables).as_deref(),
            Some("it has the device /dev/sda open")
        );
        assert_eq!(device(&open_fds(&procfs, 51)).as_deref(), Some("/dev/sda"));
    }

    #[test]
    fn file_locks() {
        let (dir, procfs) = tree(4100, &["/home/me/db"]);
        write(dir.path(), "locks", LOCKS);
        let tables = Tables::read(&procfs);
        assert_eq!(
            reason(&procfs, 4100, &tables).as_deref(),
            Some("it holds a file lock")
        );
        // A waiter holds nothing.
        let (_dir2, procfs2) = tree(4300, &[]);
        assert_eq!(reason(&procfs2, 4300, &tables), None);
        // An OFD lock on a file it has open.
        let file = tempfile::NamedTempFile::new().unwrap();
        let m = fs::metadata(file.path()).unwrap();
        let (major, minor) = dev_major_minor(m.dev());
        let (dir3, procfs3) = tree(77, &[file.path().to_str().unwrap()]);
        write(
            dir3.path(),
            "locks",
            &format!(
                "1: OFDLCK ADVISORY  WRITE -1 {major:02x}:{minor:02x}:{} 0 EOF\n",
                m.ino()
            ),
        );
        let tables3 = Tables::read(&procfs3);
        assert!(holds_file_lock(77, &open_fds(&procfs3, 77), &tables3));
        assert_eq!(
            reason(&procfs3, 77, &tables3).as_deref(),
            Some("it holds a file lock")
        );
    }

    #[test]
    fn sysv_shared_memory() {
        let (dir, procfs) = tree(60, &[]);
        write(
            dir.path(),
            "60/maps",
            "55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 131 /usr/bin/cat\n\
             7f00aa000000-7f00aa080000 rw-s 00000000 00:01 5 /SYSV0000abcd (deleted)\n",
        );
        write(
            dir.path(),
            "61/maps",
            "55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 131 /usr/bin/cat\n\
             7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0 [stack]\n",
        );
        let tables = Tables::read(&procfs);
        assert_eq!(tables.shm_attached, None);
        assert_eq!(
            reason(&procfs, 60, &tables).as_deref(),
            Some("it uses SysV shared memory")
        );
        assert_eq!(reason(&procfs, 61, &tables), None);
        // Nothing attached in the agent's IPC namespace: the maps of a process of the same
        // namespace are not read.
        for (rel, ns) in [
            ("self/ns/ipc", "ipc:[4026531839]"),
            ("60/ns/ipc", "ipc:[4026531839]"),
        ] {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            symlink(ns, p).unwrap();
        }
        write(
            dir.path(),
            "sysvipc/shm",
            "       key      shmid perms       size  cpid  lpid nattch   uid   gid\n",
        );
        let tables = Tables::read(&procfs);
        assert_eq!(tables.shm_attached, Some(false));
        assert!(!uses_sysv_shm(&procfs, 60, &tables));
    }

    #[test]
    fn connected_unix_sockets() {
        let (dir, procfs) = tree(70, &["socket:[1111]", "socket:[3333]"]);
        write(dir.path(), "net/unix", UNIX);
        let tables = Tables::read(&procfs);
        assert_eq!(
            reason(&procfs, 70, &tables).as_deref(),
            Some("it has a connected unix socket")
        );
        let (dir, procfs) = tree(71, &["socket:[1111]", "socket:[9]"]);
        write(dir.path(), "net/unix", UNIX);
        assert_eq!(reason(&procfs, 71, &Tables::read(&procfs)), None);
    }

    #[test]
    fn first_reason_wins() {
        let (dir, procfs) = tree(4100, &["socket:[2222]", "/dev/kvm", "socket:[8]"]);
        write(dir.path(), "net/unix", UNIX);
        write(dir.path(), "locks", LOCKS);
        write(
            dir.path(),
            "net/tcp",
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
             0: 0100007F:1F90 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 8 1 0 20 4 30 10 -1\n",
        );
        let tables = Tables::read(&procfs);
        assert_eq!(
            reason(&procfs, 4100, &tables).as_deref(),
            Some("it has a TCP connection to 127.0.0.1:40960")
        );
        fs::remove_file(dir.path().join("net/tcp")).unwrap();
        let tables = Tables::read(&procfs);
        assert_eq!(
            reason(&procfs, 4100, &tables).as_deref(),
            Some("it has the device /dev/kvm open")
        );
    }

    #[test]
    fn a_match_across_chunks_is_found() {
        let mut text = vec![b'a'; 64 * 1024 - 3];
        text.extend_from_slice(b" /SYSV0000 (deleted)");
        assert!(stream_contains(&text[..], b" /SYSV"));
        assert!(stream_contains(std::io::Cursor::new(b" /SYSV"), b" /SYSV"));
        assert!(!stream_contains(&vec![b'b'; 200 * 1024][..], b" /SYSV"));
    }
}
