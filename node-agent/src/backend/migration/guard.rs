//! The guard of a post-copy copy (`openmosix-agent lazy-guard IMAGE`): the process that
//! runs `criu lazy-pages` for the target's page pump and outlives it.
//!
//! Until the last page has come, the copy restored here reads its missing pages as zeros
//! if the daemon stops. The pump cannot be the one to kill the copy then: the pump may
//! be what died (killed with its SSH channel, say, while the client died too). So the
//! daemon runs under a guard in a process group of its own, which waits for it and,
//! when it ended before serving every page, kills the restored tree — whoever is left
//! to notice. The pump hears the guard on a pipe: `ready PID` once the daemon waits
//! for the restore, then `served` or `failed WHY`.

use std::io::{BufRead as _, BufReader};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::pages::say;
use super::{Migrator, failed_with};
use crate::backend::criu::Criu;
use crate::backend::syscalls;
use openmosix_hpc::model::Signal;
use openmosix_hpc::protocol::AgentError;

/// How long the daemon may take to start (it reads the image).
const START: Duration = Duration::from_secs(60);

/// The guard, seen from the pump.
pub(super) struct Guard {
    child: Child,
    lines: mpsc::Receiver<String>,
    daemon: i32,
}

impl Guard {
    /// Starts the guard of image `id`, whose daemon fetches pages over `socket`;
    /// returns once the daemon waits for the restore.
    pub(super) fn start(
        m: &Migrator,
        criu: &Criu,
        id: &str,
        socket: UnixStream,
    ) -> Result<Guard, AgentError> {
        let exe = std::env::current_exe()
            .map_err(|e| failed_with(format!("cannot find this agent's program: {e}")))?;
        let mut child = Command::new(exe)
            .arg("lazy-guard")
            .arg("--state-dir")
            .arg(m.state_dir())
            .arg("--criu")
            .arg(criu.path())
            .arg(id)
            .stdin(Stdio::from(OwnedFd::from(socket)))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Not in the pump's group: what ends the pump leaves the guard.
            .process_group(0)
            .spawn()
            .map_err(|e| failed_with(format!("cannot start the post-copy guard: {e}")))?;
        let out = child.stdout.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let Some(out) = out else { return };
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut guard = Guard {
            child,
            lines,
            daemon: 0,
        };
        let first = guard.line(START);
        match first.as_deref().and_then(|l| l.strip_prefix("ready ")) {
            Some(pid) => {
                guard.daemon = pid.trim().parse().unwrap_or(0);
                Ok(guard)
            }
            None => {
                let why = guard.ended_because(first);
                let _ = guard.child.kill();
                let _ = guard.child.wait();
                Err(failed_with(why))
            }
        }
    }

    fn line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    fn ended_because(&self, line: Option<String>) -> String {
        match line {
            Some(l) => l
                .strip_prefix("failed ")
                .map_or_else(|| format!("the post-copy guard said {l:?}"), str::to_owned),
            None => "the post-copy guard ended without a word".into(),
        }
    }

    /// Stops the daemon (the page stream broke): the guard then kills the copy.
    pub(super) fn stop_daemon(&self) {
        if self.daemon > 1 {
            let _ = syscalls::send_signal(self.daemon, Signal::Kill);
        }
    }

    /// Waits (at most `limit`) for the guard's word: `Ok` once every page came; else
    /// why not, the copy killed by the guard (`Err(true, …)`) or perhaps not (the guard
    /// itself is gone: `Err(false, …)`).
    pub(super) fn served(mut self, limit: Duration) -> Result<(), (bool, String)> {
        let line = self.line(limit);
        let _ = self.child.kill();
        let _ = self.child.wait();
        match line.as_deref() {
            Some("served") => Ok(()),
            Some(l) if l.starts_with("failed ") => Err((true, self.ended_because(line))),
            _ => Err((false, self.ended_because(line))),
        }
    }
}

/// The guard's own side: runs `criu lazy-pages` for image `id` on the page stream
/// `socket`, says `ready PID`, waits for it, and kills the restored tree when it ended
/// before every page came.
pub fn run(
    m: &Migrator,
    criu: &Criu,
    id: &str,
    socket: UnixStream,
    mut out: std::fs::File,
) -> Result<(), AgentError> {
    let dump = m.image_dir(id)?.join("dump");
    let daemon = criu.lazy_pages(&dump, socket.as_raw_fd());
    drop(socket);
    let mut daemon = match daemon {
        Ok(d) => d,
        Err(e) => {
            let _ = say(&mut out, &format!("failed {}", e.message));
            return Err(e);
        }
    };
    let _ = say(&mut out, &format!("ready {}", daemon.pid()));
    let served = daemon.wait_for(criu.limit());
    match &served {
        Ok(()) => {
            let _ = say(&mut out, "served");
        }
        Err(e) => {
            // Pages are missing: the copy must not run on with zeros. A restore still
            // under way is waited for, so that its pid file names the tree.
            m.wait_restored(id);
            kill_restored(m, &dump);
            let _ = say(&mut out, &format!("failed {}", e.message));
        }
    }
    served
}

/// Kills the tree restored from `dump` (its root named by criu's pid file), whose
/// missing pages would read as zeros.
pub(super) fn kill_restored(m: &Migrator, dump: &std::path::Path) {
    let root = std::fs::read_to_string(dump.join("restored.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    if let Some(root) = root.filter(|&p| p > 1) {
        m.kill_tree(&m.tree(root));
    }
}
