//! The map a discovery daemon writes for the node's other programs: `discovery.json` in
//! the agent's state folder (0700), replaced atomically (write beside, then rename) with
//! mode 0600. The daemon holds an exclusive lock on `discovery.lock` for its whole life, so a
//! reader can tell a live map from one a killed daemon left behind.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::DiscoveryError;
use super::node_set::DiscoveredNode;
use crate::files;
use crate::model::{MapNode, NodeId};

/// The map's file name in the state folder.
pub const MAP_FILE: &str = "discovery.json";
/// The lock file's name in the state folder.
pub const LOCK_FILE: &str = "discovery.lock";

/// What a running discovery daemon knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryFile {
    /// The daemon's process id.
    pub pid: u32,
    /// The interface it announces and listens on.
    pub interface: String,
    /// Its address there.
    pub address: Ipv4Addr,
    /// This node's id.
    pub my_id: NodeId,
    /// The multicast group.
    pub group: Ipv4Addr,
    /// The UDP port.
    pub port: u16,
    /// How often it announces, in milliseconds.
    pub interval_ms: u64,
    /// The nodes heard (this one included), by id.
    pub nodes: Vec<DiscoveredNode>,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> DiscoveryError {
    move |source| DiscoveryError::Io { what, source }
}

impl DiscoveryFile {
    /// Where the map lives in `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(MAP_FILE)
    }

    /// The nodes as an openMosix map.
    pub fn to_map(&self) -> Vec<MapNode> {
        self.nodes.iter().map(|n| n.to_map_node()).collect()
    }

    /// Replaces the map in `state_dir` atomically; readers see the old or the new one.
    pub fn write(&self, state_dir: &Path) -> Result<(), DiscoveryError> {
        let path = Self::path(state_dir);
        let mut text = serde_json::to_vec_pretty(self).unwrap_or_default();
        text.push(b'\n');
        files::replace(&path, &text, files::FILE_MODE)
            .map_err(io(format!("writing {}", path.display())))
    }

    /// Reads the map in `state_dir`; `None` when there is none.
    pub fn read(state_dir: &Path) -> Result<Option<DiscoveryFile>, DiscoveryError> {
        let path = Self::path(state_dir);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| DiscoveryError::BadFile {
                path,
                message: e.to_string(),
            })
    }

    /// Reads the map if a discovery daemon is running with this state folder; `None`
    /// when none is (a map a killed daemon left is not read).
    pub fn read_live(state_dir: &Path) -> Result<Option<DiscoveryFile>, DiscoveryError> {
        if !daemon_running(state_dir) {
            return Ok(None);
        }
        Self::read(state_dir)
    }
}

/// The agent's state folder when none is given: `/var/lib/openmosix` for root,
/// `$XDG_STATE_HOME/openmosix` (`~/.local/state/openmosix`) for other users.
pub fn default_state_dir() -> PathBuf {
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if root {
        return PathBuf::from("/var/lib/openmosix");
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("openmosix");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/openmosix")
}

/// The state folder a program on this node uses: `$OPENMOSIX_STATE_DIR`, else
/// [`default_state_dir`].
pub fn state_dir_from_env() -> PathBuf {
    std::env::var_os("OPENMOSIX_STATE_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(default_state_dir, PathBuf::from)
}

/// Whether a discovery daemon holds the lock of `state_dir`.
pub fn daemon_running(state_dir: &Path) -> bool {
    let Ok(f) = File::open(state_dir.join(LOCK_FILE)) else {
        return false;
    };
    matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
}

/// The daemon's lock on its state folder, held while it runs; dropping it removes the
/// map (a stopped daemon announces nothing).
#[derive(Debug)]
pub struct DaemonLock {
    file: File,
    state_dir: PathBuf,
}

impl DaemonLock {
    /// Takes the lock, creating the state folder (or making it 0700 again, see
    /// [`files::private_dir`]); fails if another daemon holds it.
    pub fn acquire(state_dir: &Path) -> Result<DaemonLock, DiscoveryError> {
        files::private_dir(state_dir).map_err(io(format!("preparing {}", state_dir.display())))?;
        let path = state_dir.join(LOCK_FILE);
        let file = files::open_nofollow(&path, files::FILE_MODE)
            .map_err(io(format!("opening {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(DaemonLock {
                file,
                state_dir: state_dir.to_path_buf(),
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(DiscoveryError::AlreadyRunning {
                state_dir: state_dir.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(io(format!("locking {}", path.display()))(e))
            }
        }
    }

    /// The state folder it locks.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

impl Drop for DaemonLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(DiscoveryFile::path(&self.state_dir));
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DiscoveryFile {
        DiscoveryFile {
            pid: 42,
            interface: "eth0".into(),
            address: "10.0.0.2".parse().unwrap(),
            my_id: 2,
            group: super::super::DEFAULT_GROUP,
            port: super::super::DEFAULT_PORT,
            interval_ms: 1000,
            nodes: vec![DiscoveredNode {
                id: 2,
                address: "10.0.0.2".parse().unwrap(),
            }],
        }
    }

    #[test]
    fn written_atomically_readable_and_live_only_under_the_lock() {
        let dir = tempfile::TempDir::new().unwrap();
        assert_eq!(DiscoveryFile::read(dir.path()).unwrap(), None);
        let lock = DaemonLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            DaemonLock::acquire(dir.path()),
            Err(DiscoveryError::AlreadyRunning { .. })
        ));
        sample().write(dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(DiscoveryFile::path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            DiscoveryFile::read_live(dir.path()).unwrap(),
            Some(sample())
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        drop(lock);
        assert_eq!(DiscoveryFile::read_live(dir.path()).unwrap(), None);
        assert!(!DiscoveryFile::path(dir.path()).exists());
    }

    #[test]
    fn stale_map_is_not_live_and_bad_map_is_an_error() {
        let dir = tempfile::TempDir::new().unwrap();
        sample().write(dir.path()).unwrap();
        assert_eq!(DiscoveryFile::read_live(dir.path()).unwrap(), None);
        std::fs::write(DiscoveryFile::path(dir.path()), "{").unwrap();
        let err = DiscoveryFile::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains(MAP_FILE), "{err}");
    }
}
