//! Post-copy with criu's lazy pages (docs/migration.md, "Post-copy"): the two criu
//! calls that outlive the request that starts them.
//!
//! On the source, `criu dump --lazy-pages --ps-socket FD` dumps everything but the
//! private memory, says so on its status descriptor, then serves those pages on the
//! page stream until the target has them all; the tree stays frozen meanwhile. On the
//! target, `criu lazy-pages --page-server --ps-socket FD` waits for `criu restore
//! --lazy-pages` on `lazy-pages.socket` in the image folder and fetches each page the
//! restored process touches, then all the others. Both start as a [`Running`] once
//! criu is ready, and are waited for later.

use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::criu::{Criu, failure};
use openmosix_hpc::protocol::{AgentError, ErrorKind};

/// How long criu may take to be ready (the dump of everything but the private memory;
/// the daemon's start).
const READY: Duration = Duration::from_secs(300);

fn failed(message: impl Into<String>) -> AgentError {
    AgentError::new(ErrorKind::MigrationFailed, message)
}

/// A criu that said it is ready and goes on.
#[derive(Debug)]
pub struct Running {
    child: Child,
    what: &'static str,
    log: PathBuf,
    limit: Duration,
}

impl Running {
    /// criu's pid.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(0)
    }

    /// Whether it has ended (without waiting).
    pub fn ended(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until criu ends, at most its time limit (then it is killed): whether it
    /// succeeded, else why not in a sentence.
    pub fn wait(mut self) -> Result<(), AgentError> {
        self.wait_for(self.limit)
    }

    /// [`Running::wait`] with a limit of `limit`.
    pub fn wait_for(&mut self, limit: Duration) -> Result<(), AgentError> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(_)) => return Err(failure(self.what, &self.log)),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    self.kill();
                    return Err(failed(format!(
                        "criu {} ran longer than {limit:?} and was stopped",
                        self.what
                    )));
                }
                Err(e) => return Err(failed(format!("waiting for criu: {e}"))),
            }
        }
    }

    /// Kills criu and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `criu ARGS` with a status descriptor and waits until criu writes to it
/// (ready) or ends (failed).
fn start(
    criu: &Criu,
    what: &'static str,
    args: &[&str],
    dir: &Path,
    log_name: &str,
    inherit: &[i32],
) -> Result<Running, AgentError> {
    let (mut ready, said) =
        std::io::pipe().map_err(|e| failed(format!("criu {what}: no pipe: {e}")))?;
    let fd = said.as_raw_fd().to_string();
    let mut all = args.to_vec();
    all.extend(["--status-fd", fd.as_str()]);
    let inherit: Vec<i32> = inherit.iter().copied().chain([said.as_raw_fd()]).collect();
    let child = criu
        .command(&all, dir, log_name, &inherit)
        .spawn()
        .map_err(|e| failed(format!("cannot run criu: {e}")))?;
    // Only criu writes now: the pipe reads its end when criu ends without a word.
    drop(said);
    let mut running = Running {
        child,
        what,
        log: dir.join(log_name),
        limit: criu.limit(),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let _ = tx.send(ready.read(&mut byte).map(|n| n == 1).unwrap_or(false));
    });
    match rx.recv_timeout(READY) {
        Ok(true) => Ok(running),
        Ok(false) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            // Ended before it was ready: its log says why.
            let _ = running.wait_for(Duration::from_secs(5));
            Err(failure(what, &running.log))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            running.kill();
            Err(failed(format!(
                "criu {what} was not ready within {READY:?} and was stopped"
            )))
        }
    }
}

impl Criu {
    /// `criu dump --lazy-pages` of `pid` into `dir`, its private memory served on the
    /// connected page stream `socket`; criu holds `hold` (the image's claim). Returns
    /// once everything else is dumped; the tree stays frozen until the target has
    /// every page, and is then left stopped.
    pub fn dump_lazy(
        &self,
        pid: i32,
        dir: &Path,
        hold: i32,
        socket: i32,
    ) -> Result<Running, AgentError> {
        let (pid, fd) = (pid.to_string(), socket.to_string());
        let args = [
            "dump",
            "-t",
            &pid,
            "--shell-job",
            "--leave-stopped",
            // No --page-server: the pages criu copies during the freeze (stack, shared,
            // file-backed) go to the image folder, and the lazy ones to the socket.
            "--lazy-pages",
            "--ps-socket",
            &fd,
        ];
        start(self, "dump", &args, dir, "dump.log", &[hold, socket])
    }

    /// `criu lazy-pages` on the image in `dir`, fetching pages over the connected
    /// `socket`; returns once it waits for the restore.
    pub fn lazy_pages(&self, dir: &Path, socket: i32) -> Result<Running, AgentError> {
        let fd = socket.to_string();
        let args = ["lazy-pages", "--page-server", "--ps-socket", &fd];
        start(self, "lazy-pages", &args, dir, "lazy-pages.log", &[socket])
    }
}
