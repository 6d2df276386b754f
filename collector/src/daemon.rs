//! Running as a daemon: default paths, the pid file, starting in the background, and
//! what `-k`, `-n` and `-r` do to a running collector.
//!
//! The pid file is also a lock: the running collector holds an exclusive `flock` on it
//! for its whole life, so "is one running?" never trusts a stale file left by a kill -9.
//! `-d` re-executes this program with the hidden `--foreground --detached` flags in a
//! new session (setsid), its output appended to `openmosixcollector.log` beside the
//! database, and returns once the child has written its pid (or says why it could not).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use tokio::sync::mpsc;

use crate::metrics::{self, Metrics};
use crate::poll::{self, Config, Control};
use crate::sys;
use openmosix_hpc::files;
use openmosix_store::paths;
use openmosix_store::store::{Store, link_target};

/// How long `-d`, `-k` and `-r` wait for the collector.
pub const WAIT: Duration = Duration::from_secs(15);

/// `/run/openmosixcollector.pid` for root, else
/// `$XDG_STATE_HOME/openmosix/collector/openmosixcollector.pid`.
pub fn default_pid_file() -> PathBuf {
    if paths::is_root() {
        PathBuf::from("/run/openmosixcollector.pid")
    } else {
        paths::state_dir().join("openmosixcollector.pid")
    }
}

/// The daemon's log file: `openmosixcollector.log` beside the database.
pub fn log_file(db: &Path) -> PathBuf {
    db.parent()
        .unwrap_or(Path::new("."))
        .join("openmosixcollector.log")
}

/// What the pid file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No collector holds it.
    Stopped,
    /// A collector holds it but has not written its pid yet.
    Starting,
    /// A collector with this pid holds it.
    Running(i32),
}

/// Whether a collector holds `pid_file`.
pub fn status(pid_file: &Path) -> Result<Status> {
    let mut f = match open_pid_file(pid_file, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Status::Stopped),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", pid_file.display())),
    };
    match f.try_lock_shared() {
        Ok(()) => {
            let _ = f.unlock();
            Ok(Status::Stopped)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            f.read_to_string(&mut text)
                .with_context(|| format!("cannot read {}", pid_file.display()))?;
            Ok(text
                .trim()
                .parse()
                .map_or(Status::Starting, Status::Running))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", pid_file.display()))
        }
    }
}

/// Opens the pid file without following a link at its name (`O_NOFOLLOW`), creating it
/// (0600) if `create`; anything but a regular file there is refused.
fn open_pid_file(path: &Path, create: bool) -> std::io::Result<File> {
    if create {
        return files::open_nofollow(path, files::FILE_MODE);
    }
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(format!(
                    "{} is a symbolic link; refusing to follow it",
                    path.display()
                ))
            } else {
                e
            }
        })?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// The pid file of the running collector, locked; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: File,
}

impl PidFile {
    /// Takes the pid file, or says which collector holds it.
    pub fn acquire(path: &Path) -> Result<PidFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = open_pid_file(path, true)
            .with_context(|| format!("cannot open the pid file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => match status(path)? {
                Status::Running(pid) => {
                    bail!("openmosixcollector is already running (pid {pid})")
                }
                _ => bail!("openmosixcollector is already running"),
            },
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Writes this process's pid: the collector is up.
    pub fn write_pid(&mut self) -> Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        writeln!(self.file, "{}", std::process::id())?;
        self.file.sync_all()?;
        Ok(())
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so that nobody takes a file about to vanish.
        let _ = std::fs::remove_file(&self.path);
    }
}

fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "no reason given".into())
}

/// `-d`: starts `exe args…` (which must include `--foreground --detached`) in the
/// background and waits until it runs. Returns its pid.
pub fn start(args: &[OsString], pid_file: &Path, log: &Path) -> Result<i32> {
    match status(pid_file)? {
        Status::Running(pid) => bail!("openmosixcollector is already running (pid {pid})"),
        Status::Starting => bail!("openmosixcollector is already running (starting)"),
        Status::Stopped => {}
    }
    files::private_dir(files::parent_of(log))?;
    if std::fs::symlink_metadata(log).is_ok_and(|m| m.len() > 1024 * 1024) {
        let _ = std::fs::rename(log, log.with_extension("log.1"));
    }
    let out = files::open_append(log)
        .with_context(|| format!("cannot open the log {}", log.display()))?;
    let err = out.try_clone()?;
    let exe = std::env::current_exe().context("cannot find this program")?;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .current_dir("/")
        .spawn()
        .context("cannot start the collector")?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(st) = child.try_wait()? {
            bail!(
                "the collector exited at once ({st}): {}",
                last_line(log).trim()
            );
        }
        if status(pid_file)? == Status::Running(pid) {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            bail!(
                "the collector (pid {pid}) did not report within {WAIT:?}; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `-k`: stops the running collector and waits until it is gone. Returns its pid.
pub fn stop(pid_file: &Path) -> Result<i32> {
    let pid = match status(pid_file)? {
        Status::Running(pid) => pid,
        Status::Starting => bail!("openmosixcollector is starting; try again"),
        Status::Stopped => {
            // A kill -9 leaves the file; it means nothing.
            let _ = std::fs::remove_file(pid_file);
            bail!("openmosixcollector is not running")
        }
    };
    if let Some(other) = not_a_collector(pid) {
        bail!(
            "{} names pid {pid}, which is not openmosixcollector ({other}); not stopping it",
            pid_file.display()
        );
    }
    sys::kill(pid, libc::SIGTERM).with_context(|| format!("cannot stop pid {pid}"))?;
    let deadline = Instant::now() + WAIT;
    // First the pid file (released once the history is closed), then the process.
    while status(pid_file)? != Status::Stopped || alive(pid) {
        if Instant::now() > deadline {
            bail!("openmosixcollector (pid {pid}) did not stop within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(pid)
}

/// What process `pid` is, when it is not an openmosixcollector (`None`: it is one). Its
/// program (`/proc/PID/exe`) is asked first, its name (`/proc/PID/comm`, which anyone
/// may read) when the program cannot be read.
fn not_a_collector(pid: i32) -> Option<String> {
    const NAME: &str = "openmosixcollector";
    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) {
        let name = exe
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A program replaced while it runs (an upgrade) reads "NAME (deleted)".
        let name = name.trim_end_matches(" (deleted)");
        return (name != NAME).then(|| format!("it runs {}", exe.display()));
    }
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        // comm holds the first 15 bytes of the name.
        Ok(comm) if NAME.starts_with(comm.trim_end()) && comm.trim_end().len() == 15 => None,
        Ok(comm) => Some(format!("it is {:?}", comm.trim_end())),
        Err(_) => Some("no such process".to_owned()),
    }
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
    })
}

/// `-n NOTE`: writes a checkpoint straight into the live history (the running collector,
/// if any, waits on SQLite's lock for the moment it takes). Returns the file.
pub fn checkpoint(db: &Path, note: &str) -> Result<PathBuf> {
    let store = Store::open_live(db)
        .with_context(|| format!("cannot open the history {}", db.display()))?;
    store.add_checkpoint(note)?;
    Ok(store.file().to_path_buf())
}

/// `-r`: saves the current history and starts a new one — through the running
/// collector (SIGUSR2) if there is one, else directly. Returns (saved, new).
pub fn rotate(db: &Path, pid_file: &Path, keep: usize) -> Result<(PathBuf, PathBuf)> {
    if let Status::Running(pid) = status(pid_file)? {
        let before = link_target(db);
        sys::kill(pid, libc::SIGUSR2).with_context(|| format!("cannot signal pid {pid}"))?;
        let deadline = Instant::now() + WAIT;
        loop {
            let now = link_target(db);
            if now.is_some() && now != before {
                let saved = before.unwrap_or_else(|| db.to_path_buf());
                return Ok((saved, now.unwrap_or_default()));
            }
            if Instant::now() > deadline {
                bail!("openmosixcollector (pid {pid}) did not start a new history in time");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let store = Store::open_live(db)
        .with_context(|| format!("cannot open the history {}", db.display()))?;
    let (new, saved) = store.rotate()?;
    openmosix_store::store::prune_rotated(db, new.file(), keep);
    Ok((saved, new.file().to_path_buf()))
}

/// Runs the collector in this process until SIGTERM or SIGINT: SIGUSR1 writes a
/// checkpoint, SIGUSR2 saves the history and starts a new one. `detached`: first leave
/// the session (the `-d` child).
pub fn run(
    config: Config,
    pid_file: &Path,
    metrics_addr: Option<std::net::SocketAddr>,
    detached: bool,
) -> Result<()> {
    if detached {
        sys::setsid().context("setsid")?;
    }
    // The history's folder is the collector's: 0700 at every start.
    files::private_dir(files::parent_of(&config.db))?;
    let mut pid = PidFile::acquire(pid_file)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let store = poll::open_store(&config)?;
        let metrics = Arc::new(Metrics::default());
        if let Some(addr) = metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for --metrics"))?;
            tokio::spawn(metrics::serve(listener, Arc::clone(&metrics)));
        }
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        watch_signals(ctl)?;
        pid.write_pid()?;
        tracing::info!(
            "openmosixcollector {} (pid {}) collects {} nodes every {} s into {}",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            config.cluster.nodes.len(),
            config.interval,
            store.file().display()
        );
        poll::collect(config, store, metrics, ctl_rx).await?;
        tracing::info!("openmosixcollector stopped");
        drop(pid);
        anyhow::Ok(())
    })
}

fn watch_signals(ctl: mpsc::UnboundedSender<Control>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            let c = tokio::select! {
                _ = term.recv() => Control::Stop,
                _ = int.recv() => Control::Stop,
                _ = usr1.recv() => Control::Checkpoint("checkpoint".into()),
                _ = usr2.recv() => Control::Rotate,
                _ = hup.recv() => continue,
            };
            let stop = matches!(c, Control::Stop);
            if ctl.send(c).is_err() || stop {
                return;
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_is_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pid");
        assert_eq!(status(&path).unwrap(), Status::Stopped);
        let mut p = PidFile::acquire(&path).unwrap();
        assert_eq!(status(&path).unwrap(), Status::Starting);
        p.write_pid().unwrap();
        let me = i32::try_from(std::process::id()).unwrap();
        assert_eq!(status(&path).unwrap(), Status::Running(me));
        let err = PidFile::acquire(&path).unwrap_err().to_string();
        assert!(err.contains("already running"), "{err}");
        drop(p);
        assert!(!path.exists());
        // A stale file (as a kill -9 leaves it) does not count.
        std::fs::write(&path, "12345\n").unwrap();
        assert_eq!(status(&path).unwrap(), Status::Stopped);
        drop(PidFile::acquire(&path).unwrap());
    }
}
