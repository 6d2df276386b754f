//! The per-process migration lock on the source node. Every SSH channel has its own
//! agent process, so the lock is a file lock: `moving/PID` in the state folder, locked
//! (flock) by the agent process that moves the process, and holding a line that names
//! who moves it where. The kernel drops the lock when that process ends, so a client or
//! agent that dies never leaves a process locked.

use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use openmosix_hpc::model::NodeId;
use openmosix_hpc::protocol::{AgentError, ErrorKind};

/// A held migration lock; dropping it releases the lock.
#[derive(Debug)]
pub struct MoveLock {
    file: fs::File,
    path: PathBuf,
}

impl Drop for MoveLock {
    fn drop(&mut self) {
        // Removed while still locked: whoever waits on the old file sees it is gone.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Who this agent process is, for the sentence a second mover gets: the agent's pid and
/// the client's address when it came over SSH.
pub fn holder_here() -> String {
    let me = std::process::id();
    match std::env::var("SSH_CLIENT")
        .ok()
        .and_then(|c| c.split_whitespace().next().map(str::to_owned))
    {
        Some(addr) => format!("the client at {addr} (agent process {me})"),
        None => format!("agent process {me}"),
    }
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> AgentError {
    AgentError::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

/// Takes the lock on moving process `pid` to node `to` (unknown: `None`), kept in
/// `dir`, for `holder`. Refused with a sentence naming the holder when another
/// migration of `pid` is under way.
pub fn acquire(
    dir: &Path,
    pid: i32,
    to: Option<NodeId>,
    holder: &str,
) -> Result<MoveLock, AgentError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("creating", dir, &e))?;
    let path = dir.join(pid.to_string());
    let mut file = match try_lock_file(&path) {
        Ok(Locked::Mine(file)) => file,
        Ok(Locked::Theirs(who)) => {
            return Err(AgentError::new(
                ErrorKind::PermissionDenied,
                busy(pid, &who),
            ));
        }
        Err(e) => return Err(io("locking", &path, &e)),
    };
    let whereto = to.map_or_else(String::new, |n| format!("to node {n} "));
    let line = format!("{whereto}by {holder}\n");
    file.set_len(0)
        .and_then(|()| file.write_all(line.as_bytes()))
        .map_err(|e| io("writing", &path, &e))?;
    Ok(MoveLock { file, path })
}

/// The sentence for a process that `who` (the lock file's line) is moving.
fn busy(pid: i32, who: &str) -> String {
    let who = who.trim();
    let who = if who.is_empty() {
        "another connection"
    } else {
        who
    };
    format!("process {pid} is already being moved {who}")
}

/// Who moves process `pid` now, if anyone: the sentence a second mover gets.
pub fn moved_by(dir: &Path, pid: i32) -> Option<String> {
    let path = dir.join(pid.to_string());
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(fs::TryLockError::WouldBlock) => {
            let mut who = String::new();
            let _ = file.read_to_string(&mut who);
            Some(busy(pid, &who))
        }
        Err(fs::TryLockError::Error(_)) => None,
    }
}

/// The outcome of [`try_lock_file`].
#[derive(Debug)]
pub enum Locked {
    /// This process holds the lock now.
    Mine(fs::File),
    /// Another process holds it; what its file says.
    Theirs(String),
}

/// Takes the flock of the file at `path` (created 0600, never through a link) without
/// waiting. A holder may remove the file while it holds the lock (as [`MoveLock`] does);
/// the lock is only ours once the path still names the file we locked.
pub fn try_lock_file(path: &Path) -> std::io::Result<Locked> {
    loop {
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                return Ok(Locked::Theirs(who));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        let same = fs::symlink_metadata(path)
            .ok()
            .zip(file.metadata().ok())
            .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
        if same {
            return Ok(Locked::Mine(file));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_mover_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = acquire(dir.path(), 1234, Some(3), "the balancer").unwrap();
        let err = acquire(dir.path(), 1234, Some(2), "a window").unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
        assert_eq!(
            err.message,
            "process 1234 is already being moved to node 3 by the balancer"
        );
        // Another pid is free; the first is free again once released.
        let b = acquire(dir.path(), 99, None, "x").unwrap();
        drop(a);
        let c = acquire(dir.path(), 1234, Some(2), "a window").unwrap();
        drop((b, c));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
