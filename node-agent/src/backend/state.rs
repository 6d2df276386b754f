//! The linux backend's state file: the admin switches, the measured speed, the cluster
//! map, the jobs started with `run` and the per-process lock and cluster-mask settings,
//! kept across agent restarts.
//!
//! Written atomically (temporary file, then rename) with mode 0600 in a 0700 folder,
//! so a crash never leaves half a file and other users can't read it.

use std::fs;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Result;
use openmosix_hpc::model::{AdminState, MapNode, MigMask, NodeId, RunOptions};
use openmosix_hpc::protocol::{AgentError, ErrorKind};

/// A process the agent started, recorded with its start time so a reused pid is not
/// mistaken for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Pid on this node.
    pub pid: i32,
    /// /proc/PID/stat start time (ticks after boot).
    pub starttime: u64,
    /// How it was started.
    pub options: RunOptions,
}

/// The `/proc/PID/lock` and cluster-mask settings (HOWTO table 8-5 and 8.4) given to one
/// process with `set_lock` / `set_mask`, keyed like [`RunRecord`] by pid and start time.
/// `None` leaves the default: the lock its `run` options imply, no mask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcRecord {
    /// Pid on this node.
    pub pid: i32,
    /// /proc/PID/stat start time (ticks after boot).
    pub starttime: u64,
    /// Lock override: wins over the lock of `nomig` / `runhome` / `runon`.
    #[serde(default)]
    pub lock: Option<bool>,
    /// Cluster mask, when one was set.
    #[serde(default)]
    pub mask: Option<MigMask>,
}

/// A guest: a process that arrived here by migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestRecord {
    /// Its pid here.
    pub pid: i32,
    /// Its start time here (ticks after boot), to tell a reused pid apart.
    pub starttime: u64,
    /// The node it came from.
    pub from: NodeId,
    /// Its home node.
    pub home: NodeId,
    /// Its pid on its home node.
    pub home_pid: i32,
    /// Migrations so far.
    pub nmigs: u32,
    /// The mosrun options it was started with on its home node.
    #[serde(default)]
    pub run: Option<RunOptions>,
    /// A candidate for automatic load balancing (it was one where it came from).
    #[serde(default)]
    pub candidate: bool,
    /// It arrived by an automatic move of the load balancer.
    #[serde(default)]
    pub auto: bool,
}

/// A process whose home is here and that runs on another node now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emigrant {
    /// The pid it had here.
    pub home_pid: i32,
    /// The node it runs on.
    pub node: NodeId,
    /// Its pid there.
    pub pid: i32,
}

/// What the state file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    /// The node id this state belongs to, when known.
    #[serde(default)]
    pub node_id: Option<NodeId>,
    /// Admin switches and speed.
    #[serde(default)]
    pub admin: AdminState,
    /// Whether `admin.speed` was measured (or set) rather than the default.
    #[serde(default)]
    pub speed_known: bool,
    /// Whether `admin.stay` got its opt-in default: automatic load balancing is opt-in
    /// (docs/balancing.md), so a node starts with `stay` on — also one whose state file
    /// was written before the balancer existed, when `stay` off meant nothing yet.
    #[serde(default)]
    pub stay_opt_in: bool,
    /// The cluster map installed with `setpe -w`.
    #[serde(default)]
    pub map: Vec<MapNode>,
    /// Jobs started with `run`.
    #[serde(default)]
    pub runs: Vec<RunRecord>,
    /// Lock and mask settings of processes.
    #[serde(default)]
    pub procs: Vec<ProcRecord>,
    /// Guests running here.
    #[serde(default)]
    pub guests: Vec<GuestRecord>,
    /// Processes of this home node running elsewhere.
    #[serde(default)]
    pub emigrants: Vec<Emigrant>,
}

/// The state file on disk.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
}

/// Holds the state file's lock; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: fs::File,
}

/// What identifies one version of the state file: it is replaced by rename on every save,
/// so a new inode (or a new time or size) means someone wrote it.
pub type Version = (u64, i128, u64);

/// Waits (at most `limit`) until nobody holds the state lock at `lock_path`, without
/// taking it: a request that will change the state waits here, before it takes the
/// backend, so that the requests that only read are not held up behind it.
pub fn wait_until_free(lock_path: &Path, limit: std::time::Duration) {
    let Ok(file) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(lock_path)
    else {
        return;
    };
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                return;
            }
            Err(fs::TryLockError::WouldBlock) => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(fs::TryLockError::Error(_)) => return,
        }
    }
}

impl StateFile {
    /// The lock file of the state in `dir` (what [`StateFile::lock`] locks).
    pub fn lock_path_in(dir: &Path) -> PathBuf {
        dir.join("agent-state.lock")
    }

    /// Serializes writers: every agent process of a node (one per SSH channel, all
    /// sharing this file) takes this lock around read-modify-write.
    pub fn lock(&self) -> Result<StateLock> {
        let path = self.path.with_extension("lock");
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| AgentError::io(format!("opening {}", path.display()), &e))?;
        // Another agent holds it for a few milliseconds at most; waiting for ever would
        // hang a node on a bug, so give up after a while and say so.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(AgentError::new(
                        ErrorKind::Io,
                        format!("{} stayed locked for 5 s", path.display()),
                    ));
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(AgentError::io(format!("locking {}", path.display()), &e));
                }
            }
        }
        Ok(StateLock { _file: file })
    }

    /// The current version on disk, if the file exists.
    pub fn version(&self) -> Option<Version> {
        use std::os::unix::fs::MetadataExt as _;
        let m = fs::metadata(&self.path).ok()?;
        let mtime = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
        Some((m.ino(), mtime, m.len()))
    }

    /// The state file inside `dir` (created 0700 if missing, made 0700 again if its mode
    /// was changed: [`openmosix_hpc::files::private_dir`]).
    pub fn in_dir(dir: &Path) -> Result<StateFile> {
        openmosix_hpc::files::private_dir(dir).map_err(|e| {
            AgentError::io(format!("preparing the state folder {}", dir.display()), &e)
        })?;
        Ok(StateFile {
            path: dir.join("agent-state.json"),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state; a missing file is the default state. A corrupt file is an error
    /// (the agent refuses to start rather than silently forget the admin's settings).
    pub fn load(&self) -> Result<AgentState> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                AgentError::new(
                    ErrorKind::Io,
                    format!(
                        "state file {} is corrupt ({e}); move it away to start afresh",
                        self.path.display()
                    ),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AgentState::default()),
            Err(e) => Err(AgentError::io(
                format!("reading {}", self.path.display()),
                &e,
            )),
        }
    }

    /// Writes the state atomically (a fresh temporary file, `O_EXCL|O_NOFOLLOW`, renamed
    /// over the old one).
    pub fn save(&self, state: &AgentState) -> Result<()> {
        let text = serde_json::to_vec_pretty(state)
            .map_err(|e| AgentError::new(ErrorKind::Io, format!("encoding the state: {e}")))?;
        openmosix_hpc::files::replace(&self.path, &text, openmosix_hpc::files::FILE_MODE)
            .map_err(|e| AgentError::io(format!("writing {}", self.path.display()), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn round_trip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let sf = StateFile::in_dir(&dir.path().join("st")).unwrap();
        assert_eq!(sf.load().unwrap(), AgentState::default());
        let mut st = AgentState::default();
        st.admin.speed = 5000;
        st.admin.block = true;
        sf.save(&st).unwrap();
        assert_eq!(sf.load().unwrap(), st);
        let mode = fs::metadata(sf.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::write(sf.path(), b"{not json").unwrap();
        let err = sf.load().unwrap_err();
        assert!(err.message.contains("corrupt"), "{err}");
    }

    #[test]
    fn an_opened_up_state_folder_is_0700_again_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("st");
        fs::create_dir(&st).unwrap();
        fs::set_permissions(&st, fs::Permissions::from_mode(0o777)).unwrap();
        let sf = StateFile::in_dir(&st).unwrap();
        let mode = fs::metadata(&st).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A save goes through a temporary file and leaves none behind.
        sf.save(&AgentState::default()).unwrap();
        let names: Vec<_> = fs::read_dir(&st).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
    }
}
