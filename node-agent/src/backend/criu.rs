//! Running criu: finding it, `criu check`, pre-dump, dump and restore, and turning its
//! log into one plain sentence when it fails.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use openmosix_hpc::protocol::{AgentError, Capability, ErrorKind};

mod checks;
mod probe_cache;

pub use checks::{CHECKS_LIMIT, CriuChecks, Found};

/// A criu binary that passed `criu check`.
#[derive(Debug, Clone)]
pub struct Criu {
    path: PathBuf,
    /// The kernel tracks dirty memory (soft-dirty bits): pre-dump rounds can work.
    track_mem: bool,
    /// userfaultfd works for criu: post-copy (lazy pages) can work.
    lazy: bool,
    /// How long one criu call may run before it is stopped.
    limit: Duration,
}

/// How long one criu call may run: a dump or restore of many GiB takes minutes; one that
/// runs longer hangs (a peer that never answers, a process stuck in the kernel).
pub const CRIU_LIMIT: Duration = Duration::from_secs(900);

/// Finds criu: `setting` (the agent's `--criu` / `OPENMOSIX_CRIU`), else `criu` on PATH,
/// and checks it once. Returns the binary (if usable) and what `hello` says about it.
/// With `state_dir`, the checks' outcome is kept there and reused while the same criu
/// binary runs on the same boot of the same kernel ([`probe_cache`]).
pub fn detect(setting: Option<&Path>, state_dir: Option<&Path>) -> (Option<Criu>, Capability) {
    let path = match setting {
        Some(p) => p.to_path_buf(),
        None => match find_on_path("criu") {
            Some(p) => p,
            None => {
                return (
                    None,
                    unavailable(
                        "criu is not installed (scripts/install-criu.sh provides criu 4.1)".into(),
                    ),
                );
            }
        },
    };
    let probe = match state_dir {
        Some(dir) => probe_cache::probe(&path, dir),
        None => probe(&path),
    };
    let probe = match probe {
        Ok(p) => p,
        Err(e) => {
            return (
                None,
                unavailable(format!("cannot run {}: {e}", path.display())),
            );
        }
    };
    let version = &probe.version;
    if let Some(why) = probe.check_failed {
        return (
            None,
            unavailable(format!(
                "{} ({version}) fails `criu check`: {why}",
                path.display()
            )),
        );
    }
    let predump = if probe.track_mem {
        "pre-dump rounds available"
    } else {
        "no pre-dump: this kernel does not track dirty memory"
    };
    let detail = format!(
        "{} ({version}): criu check passed; {predump}{}",
        path.display(),
        probe_note(Path::new(KERNEL_PROBE_DIR))
    );
    (
        Some(Criu {
            path,
            track_mem: probe.track_mem,
            // The pipes' limit can change without a reboot: asked every time (cheap).
            lazy: probe.uffd && lazy_pipes_fit(),
            limit: CRIU_LIMIT,
        }),
        Capability {
            available: true,
            detail,
        },
    )
}

/// What running criu says about itself and this kernel: four criu runs, about 80 ms of
/// CPU together (`criu check` probes many kernel features).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    /// The first line of `criu --version`.
    pub version: String,
    /// Why `criu check` failed (its last error line); `None`: it passed.
    pub check_failed: Option<String>,
    /// `criu check --feature mem_dirty_track` passed.
    pub track_mem: bool,
    /// `criu check --feature uffd-noncoop` passed.
    pub uffd: bool,
}

/// Runs the checks; an error when criu cannot be started at all.
pub fn probe(criu: &Path) -> std::io::Result<Probe> {
    let version = version_of(criu);
    let out = checking(criu).arg("check").stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Ok(Probe {
            version,
            check_failed: Some(last_error(&out.stderr)),
            track_mem: false,
            uffd: false,
        });
    }
    Ok(Probe {
        version,
        check_failed: None,
        track_mem: has_feature(criu, "mem_dirty_track"),
        uffd: has_feature(criu, "uffd-noncoop"),
    })
}

/// The criu a page pump runs (`setting`, else criu on PATH or in an sbin folder),
/// without `criu check`: the agent that prepared the move has checked it.
pub fn locate(setting: Option<&Path>) -> Option<Criu> {
    let path = match setting {
        Some(p) => p.to_path_buf(),
        None => find_on_path("criu")?,
    };
    Some(Criu {
        path,
        track_mem: false,
        lazy: true,
        limit: CRIU_LIMIT,
    })
}

/// Where criu keeps what it learnt of the kernel (`criu.kdat`), as root.
const KERNEL_PROBE_DIR: &str = "/run";

/// What `hello` adds when criu cannot keep its kernel probe: it keeps it only on a
/// tmpfs, and without it every criu call probes the kernel again (some 60 ms on this
/// project's machines; a post-copy freeze has three criu calls).
fn probe_note(dir: &Path) -> &'static str {
    match super::syscalls::fs_stats(dir) {
        Some(s) if !s.tmpfs => {
            "; /run is not a tmpfs, so criu probes the kernel again at every call (about 60 ms each)"
        }
        _ => "",
    }
}

/// What `hello` says when migration is not available.
fn unavailable(detail: String) -> Capability {
    Capability {
        available: false,
        detail,
    }
}

/// The first line of `criu --version` ("" if it says nothing).
fn version_of(criu: &Path) -> String {
    checking(criu)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// Whether the kernel tracks dirty memory, which pre-dump rounds need.
/// Whether criu's lazy-pages dump can size its pipes (about 3.3 MB): with
/// CAP_SYS_RESOURCE, or where `fs.pipe-max-size` allows it (root in a container often
/// lacks the capability; `openmosix-testbed up` raises the limit).
fn lazy_pipes_fit() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let capable = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0);
    let limit = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    capable || limit >= 4 << 20
}

/// `criu check --feature FEATURE` passes.
fn has_feature(criu: &Path, feature: &str) -> bool {
    checking(criu)
        .args(["check", "--feature", feature])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A criu run of the checks: it yields the CPU to the node's work (the checks run in
/// the background, [`CriuChecks`]).
fn checking(criu: &Path) -> Command {
    let mut cmd = Command::new(criu);
    super::syscalls::yield_cpu(&mut cmd);
    cmd
}

/// The last error line of a failed `criu check`.
fn last_error(stderr: &[u8]) -> String {
    let said = String::from_utf8_lossy(stderr);
    said.lines()
        .rev()
        .find(|l| l.contains("Error") || l.contains("error"))
        .unwrap_or("no reason given")
        .trim()
        .to_owned()
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    // criu lives in sbin, which a non-login PATH may lack.
    for extra in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        dirs.push(PathBuf::from(extra));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// What a failed criu run is reported as.
pub(super) fn failure(what: &str, log: &Path) -> AgentError {
    AgentError::new(
        ErrorKind::MigrationFailed,
        format!("{what} failed: {}", explain(log)),
    )
}

/// One sentence from a criu log: the known causes in words, else criu's last error.
pub fn explain(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Error (") && !l.contains("RLIMIT_NOFILE"))
        .collect();
    let all = errors.join("\n");
    let has = |s: &str| all.contains(s);
    if let Some(pid) = errors
        .iter()
        .find_map(|l| l.split("Can't fork for ").nth(1)?.split(':').next())
    {
        return format!(
            "pid {pid} is already taken on the target node, and a restored process keeps its pid"
        );
    }
    if has("Connected TCP socket") || has("TCP") && has("established") {
        return "it has a TCP connection to a peer outside it".into();
    }
    if has("unix") && (has("peer") || has("external")) {
        return "it has a unix socket connected to a process outside it".into();
    }
    if has("ptrace") || has("traced") {
        return "it is being traced by another process".into();
    }
    if has("No such process") || has("Can't stop") || has("Unable to seize") {
        return "the process went away or could not be stopped".into();
    }
    if has("SysV") || has("shmem") {
        return "it shares SysV shared memory with processes outside it".into();
    }
    if has("flock") || has("file lock") || has("posix lock") {
        return "it holds a file lock".into();
    }
    if has("Unsupported") || has("not supported") {
        return "it uses something criu cannot save here".into();
    }
    match errors.last() {
        Some(l) => {
            let msg = l.rsplit("): ").next().unwrap_or(l).trim();
            format!("criu said: {msg}")
        }
        None if text.is_empty() => "criu left no log".into(),
        None => "criu gave no reason".into(),
    }
}

impl Criu {
    /// The same criu with another time limit per call.
    #[must_use]
    pub fn with_limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Whether pre-dump rounds can work on this kernel.
    pub fn can_predump(&self) -> bool {
        self.track_mem
    }

    /// Whether post-copy (lazy pages) can work here.
    pub fn can_postcopy(&self) -> bool {
        self.lazy
    }

    /// The time limit of one criu call.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// The criu binary.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `criu ARGS -D dir -v2 -o LOG`, quiet, with descriptors `inherit` kept open.
    pub(super) fn command(
        &self,
        args: &[&str],
        dir: &Path,
        log_name: &str,
        inherit: &[i32],
    ) -> Command {
        let mut cmd = Command::new(&self.path);
        for &fd in inherit {
            super::syscalls::inherit_fd(&mut cmd, fd);
        }
        cmd.args(args)
            .arg("-D")
            .arg(dir)
            .args(["-v2", "-o", log_name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Runs criu; `inherit`: descriptors criu gets (a claim it keeps open while it
    /// runs, a page stream; [`super::syscalls::inherit_fd`]).
    fn run(
        &self,
        what: &str,
        args: &[&str],
        dir: &Path,
        log_name: &str,
        inherit: &[i32],
    ) -> Result<(), AgentError> {
        let mut child = self
            .command(args, dir, log_name, inherit)
            .spawn()
            .map_err(|e| {
                AgentError::new(ErrorKind::MigrationFailed, format!("cannot run criu: {e}"))
            })?;
        // A watchdog stops criu at the limit; it is told when criu ends first.
        let (done, ended) = mpsc::channel::<()>();
        let stopped = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let stopped = Arc::clone(&stopped);
            let pid = i32::try_from(child.id()).unwrap_or(0);
            let limit = self.limit;
            std::thread::spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(limit) {
                    stopped.store(true, Ordering::Release);
                    let _ = super::syscalls::send_signal(pid, openmosix_hpc::model::Signal::Kill);
                }
            })
        };
        let status = child.wait();
        let _ = done.send(());
        let _ = watchdog.join();
        if stopped.load(Ordering::Acquire) {
            return Err(AgentError::new(
                ErrorKind::MigrationFailed,
                format!(
                    "criu {what} ran longer than {:?} and was stopped",
                    self.limit
                ),
            ));
        }
        let out = status.map_err(|e| {
            AgentError::new(ErrorKind::MigrationFailed, format!("waiting for criu: {e}"))
        })?;
        if out.success() {
            Ok(())
        } else {
            Err(failure(what, &dir.join(log_name)))
        }
    }

    /// `criu pre-dump`: copies memory while the process runs.
    pub fn pre_dump(&self, pid: i32, dir: &Path, prev: Option<&str>) -> Result<(), AgentError> {
        if !self.track_mem {
            return Err(AgentError::new(
                ErrorKind::Unsupported,
                "pre-dump needs dirty-memory tracking, which this kernel lacks",
            ));
        }
        let pid = pid.to_string();
        let mut args = vec!["pre-dump", "-t", &pid, "--shell-job", "--track-mem"];
        if let Some(p) = prev {
            args.extend(["--prev-images-dir", p]);
        }
        self.run("pre-dump", &args, dir, "pre-dump.log", &[])
    }

    /// `criu dump --leave-stopped`: the process tree stays stopped here until the target
    /// confirms the restore. criu holds `hold` (the image's claim) while it runs.
    ///
    /// With `pages` (a connected socket) the memory pages go there, to a `criu
    /// page-server` at its other end, instead of into `dir`.
    pub fn dump(
        &self,
        pid: i32,
        dir: &Path,
        prev: Option<&str>,
        hold: Option<i32>,
        pages: Option<i32>,
    ) -> Result<(), AgentError> {
        let pid = pid.to_string();
        let mut args = vec!["dump", "-t", &pid, "--shell-job", "--leave-stopped"];
        if let Some(p) = prev.filter(|_| self.track_mem) {
            args.extend(["--track-mem", "--prev-images-dir", p]);
        }
        let socket = pages.map(|fd| fd.to_string());
        if let Some(fd) = &socket {
            args.extend(["--page-server", "--ps-socket", fd]);
        }
        let inherit: Vec<i32> = hold.into_iter().chain(pages).collect();
        self.run("dump", &args, dir, "dump.log", &inherit)
    }

    /// `criu page-server` on the connected socket `socket`: writes the pages a
    /// disk-less dump sends into `dir`, until the dump closes the stream.
    pub fn page_server(&self, dir: &Path, socket: i32) -> Result<(), AgentError> {
        let fd = socket.to_string();
        let args = ["page-server", "--ps-socket", fd.as_str()];
        self.run("page-server", &args, dir, "page-server.log", &[socket])
    }

    /// `criu restore -d`: the tree is restored detached (and left stopped with
    /// `stopped`); returns its root's pid. criu holds `hold` (the image's claim) while
    /// it runs.
    /// With `lazy`, private memory comes from the `criu lazy-pages` daemon that waits
    /// on `lazy-pages.socket` in `dir` ([`super::lazy`]).
    pub fn restore(
        &self,
        dir: &Path,
        stopped: bool,
        lazy: bool,
        hold: Option<i32>,
    ) -> Result<i32, AgentError> {
        // The log is created here first, exclusively and never through a link, so criu
        // writes into a fresh file of the image folder (criu creates its pid file with
        // O_EXCL itself).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join("restore.log"))
            .map_err(|e| {
                AgentError::new(
                    ErrorKind::MigrationFailed,
                    format!("cannot create restore.log in the image: {e}"),
                )
            })?;
        let pidfile = dir.join("restored.pid");
        let pidfile_s = pidfile.to_string_lossy().into_owned();
        let mut args = vec!["restore", "-d", "--shell-job", "--pidfile", &pidfile_s];
        if stopped {
            args.push("--leave-stopped");
        }
        if lazy {
            args.push("--lazy-pages");
        }
        let inherit: Vec<i32> = hold.into_iter().collect();
        self.run("restore", &args, dir, "restore.log", &inherit)?;
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| AgentError::new(ErrorKind::MigrationFailed, "restore left no pid file"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_criu_that_hangs_is_stopped_at_the_limit() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let hang = dir.path().join("criu");
        std::fs::write(&hang, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&hang, std::fs::Permissions::from_mode(0o755)).unwrap();
        let criu = Criu {
            path: hang,
            track_mem: false,
            lazy: false,
            limit: CRIU_LIMIT,
        }
        .with_limit(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = criu
            .run("dump", &["dump"], dir.path(), "dump.log", &[])
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "not stopped");
        assert_eq!(
            err.message,
            "criu dump ran longer than 300ms and was stopped"
        );
    }

    #[test]
    fn logs_become_sentences() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("l.log");
        std::fs::write(
            &log,
            "(00.1) Error (criu/cr-restore.c:1480): Can't fork for 3012: File exists\n",
        )
        .unwrap();
        assert!(explain(&log).contains("pid 3012 is already taken"));
        std::fs::write(&log, "Error (criu/sk-inet.c:200): inet: Connected TCP socket, consider using --tcp-established option.\n").unwrap();
        assert_eq!(
            explain(&log),
            "it has a TCP connection to a peer outside it"
        );
        std::fs::write(&log, "Error (criu/x.c:1): something odd: here\n").unwrap();
        assert_eq!(explain(&log), "criu said: something odd: here");
    }
}
