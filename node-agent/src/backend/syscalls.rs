//! The few system calls both backends make on processes: signals, nice values and
//! starting a detached program; and the agent's limits: open descriptors, allocator.

#![allow(unsafe_code)] // kill(2), setpriority(2), setsid(2), autogroups, rlimits, mallopt, geteuid(2) and statfs(2) have no safe std wrapper.

use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};

use super::Result;
use openmosix_hpc::model::Signal;
use openmosix_hpc::protocol::{AgentError, ErrorKind};

fn errno_error(pid: i32, what: &str) -> AgentError {
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ESRCH) => AgentError::no_such_process(pid),
        Some(libc::EPERM | libc::EACCES) => AgentError::new(
            ErrorKind::PermissionDenied,
            format!("not allowed to {what} process {pid}"),
        ),
        _ => AgentError::new(ErrorKind::Io, format!("{what} process {pid}: {err}")),
    }
}

fn check_pid(pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(AgentError::new(
            ErrorKind::InvalidArgument,
            format!("{pid} is not a process id"),
        ));
    }
    Ok(())
}

/// Sends `signal` to process `pid` (never to a group: pid must be positive).
pub fn send_signal(pid: i32, signal: Signal) -> Result<()> {
    check_pid(pid)?;
    // SAFETY: kill(2) with a positive pid touches no memory of ours.
    let rc = unsafe { libc::kill(pid, signal.number()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno_error(pid, "signal"))
    }
}

/// Sets the nice value of process `pid`.
pub fn renice(pid: i32, nice: i32) -> Result<()> {
    check_pid(pid)?;
    if !(-20..=19).contains(&nice) {
        return Err(AgentError::new(
            ErrorKind::InvalidArgument,
            format!("nice value {nice} is outside -20..19"),
        ));
    }
    let who = pid as libc::id_t;
    // SAFETY: setpriority(2) touches no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno_error(pid, "renice"))
    }
}

/// The nice value of process `pid` (its main thread's, as /proc/PID/stat shows it), or
/// `None` when it cannot be read (the process is gone).
pub fn nice_of(pid: i32) -> Option<i32> {
    let who = libc::id_t::try_from(pid).ok()?;
    // getpriority(2) may return -1 as a nice value: errno, cleared first, tells an
    // error apart.
    // SAFETY: __errno_location gives this thread's errno; getpriority(2) touches no
    // memory of ours.
    let nice = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, who)
    };
    let failed = nice == -1 && std::io::Error::last_os_error().raw_os_error() != Some(0);
    (!failed).then_some(nice)
}

/// Starts `argv` in a new session with its standard streams on /dev/null, so that it
/// outlives the SSH channel the agent was started on. A thread waits for it so it never
/// lingers as a zombie while the agent runs.
pub fn spawn_detached(argv: &[Vec<u8>]) -> Result<u32> {
    let Some((program, args)) = argv.split_first() else {
        return Err(AgentError::new(
            ErrorKind::InvalidArgument,
            "run needs a program",
        ));
    };
    let mut cmd = Command::new(std::ffi::OsStr::from_bytes(program));
    cmd.args(args.iter().map(|a| std::ffi::OsStr::from_bytes(a)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| {
        AgentError::new(
            ErrorKind::InvalidArgument,
            format!("cannot start {}: {e}", String::from_utf8_lossy(program)),
        )
    })?;
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(pid)
}
/// Lets a child started with `cmd` inherit descriptor `fd` (Rust opens files
/// close-on-exec), e.g. a lock the child must hold as long as it runs.
pub fn inherit_fd(cmd: &mut std::process::Command, fd: i32) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: fcntl on a descriptor is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes the child started with `cmd` yield the CPU to everything else: nice 19, in a
/// session (and so, where the kernel groups tasks by session, an autogroup) of its own
/// at nice 19, so that it does not take a share equal to the session it came from.
/// Best effort: a child whose priority cannot be lowered runs as it is.
pub fn yield_cpu(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: setsid, open, write, close and setpriority are async-signal-safe, as
    // pre_exec requires; the path and the text are static.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            let fd = libc::open(
                c"/proc/self/autogroup".as_ptr(),
                libc::O_WRONLY | libc::O_CLOEXEC,
            );
            if fd >= 0 {
                libc::write(fd, b"19".as_ptr().cast(), 2);
                libc::close(fd);
            }
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            Ok(())
        });
    }
}

/// Lets the socket `fd` hold `bytes` unread before its writer blocks: root may go past
/// `net.core.wmem_max` (SO_SNDBUFFORCE), anyone else up to it. A page stream's writer
/// then hands over a whole answer of criu's (up to 4 MiB) at once, instead of waking
/// its reader every 200 KiB, which on a busy machine costs a wait for a CPU each time.
/// Best effort: a socket left at its default still works.
pub fn widen_send_buffer(fd: i32, bytes: usize) {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    for opt in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
        // SAFETY: setsockopt reads an int we own; a bad descriptor only fails.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                std::ptr::from_ref(&size).cast(),
                len,
            )
        };
        if r == 0 {
            return;
        }
    }
}

/// Ends this process at once with SIGKILL, as `kill -9` would (the fault hook).
pub fn kill_self() {
    // SAFETY: kill(2) on our own pid.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

/// This process's stdin and stdout as files it owns: a page pump closes its stdout
/// (the client reads the end of the stream) while it goes on, which `std::io::stdout`
/// cannot do. Call once, before anything else uses them.
pub fn take_stdio() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd as _;
    // SAFETY: descriptors 0 and 1 are open for the life of the process, and from here
    // on only these two files use them.
    unsafe { (std::fs::File::from_raw_fd(0), std::fs::File::from_raw_fd(1)) }
}

/// The soft and hard limits on open descriptors (RLIMIT_NOFILE); (1024, 1024) when they
/// cannot be read.
pub fn fd_limits() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        return (1024, 1024);
    }
    (lim.rlim_cur, lim.rlim_max)
}

/// Raises the soft limit on open descriptors towards `want`, as far as the hard limit
/// allows (never lowers it); the soft limit in force afterwards.
pub fn raise_fd_limit(want: u64) -> u64 {
    let (soft, hard) = fd_limits();
    let target = want.min(hard);
    if soft >= target {
        return soft;
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } == 0 {
        target
    } else {
        soft
    }
}

/// Keeps the C allocator lean for a long-running agent with a few threads: one arena
/// for all threads (the blocking threads' own arenas each hold freed memory), and large
/// blocks mapped and unmapped rather than kept (glibc otherwise raises that threshold as
/// it frees them, and a process list of a big node is then never given back). Call once,
/// before any thread starts. Does nothing with other C libraries.
pub fn lean_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets the allocator's parameters; no thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 * 1024);
    }
}

/// This process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// What statfs(2) says of the file system holding `path`.
#[derive(Debug, Clone, Copy)]
pub struct FsStats {
    /// It is a tmpfs (memory).
    pub tmpfs: bool,
    /// Bytes a non-root user may still write there.
    pub room: u64,
}

/// statfs(2) of `path`; `None` when it cannot be read.
pub fn fs_stats(path: &std::path::Path) -> Option<FsStats> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statfs is a valid out buffer; `c` is NUL-terminated and
    // outlives the call.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let blocks = s.f_bavail;
    let size = u64::try_from(s.f_bsize).unwrap_or(0);
    Some(FsStats {
        tmpfs: s.f_type == libc::TMPFS_MAGIC,
        room: blocks.saturating_mul(size),
    })
}
