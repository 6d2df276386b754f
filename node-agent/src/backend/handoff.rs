//! Where a node keeps its handoff records ([`openmosix_hpc::handoff`]): one file per
//! image in `handoffs/` of the state folder, each phase written durably (a fresh
//! temporary file, fsync, rename, fsync of the folder) before the agent acts on it.
//!
//! Every SSH channel has its own agent process, so who drives a handoff is a file lock:
//! `handoffs/IMAGE.lock`, held (flock) by the agent process that works on the image and
//! by the criu it runs (the lock's descriptor is inherited), so a handoff whose lock is
//! free has nobody driving it: its agent died or its client went away, and any agent
//! of the node may settle it ([`crate::server`]'s settle).

use std::fs;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

use openmosix_hpc::handoff::Handoff;
use openmosix_hpc::protocol::{AgentError, ErrorKind};

use super::migration::valid_image;
use super::movelock::{Locked, try_lock_file};

/// The records of one node.
#[derive(Debug, Clone)]
pub struct Handoffs {
    dir: PathBuf,
}

/// A held claim on an image: this agent process drives its handoff until the claim
/// is dropped.
#[derive(Debug)]
pub struct Claim {
    file: fs::File,
    image: String,
}

impl Claim {
    /// The image claimed.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The lock's descriptor, for a child (criu) that must hold the claim as long as
    /// it runs: see [`super::syscalls::inherit_fd`].
    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> AgentError {
    AgentError::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`).
pub fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

impl Handoffs {
    /// The records under `state_dir/handoffs`.
    pub fn new(state_dir: &Path) -> Self {
        Handoffs {
            dir: state_dir.join("handoffs"),
        }
    }

    /// The folder of the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_dir(&self) -> Result<(), AgentError> {
        openmosix_hpc::files::private_dir(&self.dir).map_err(|e| io("creating", &self.dir, &e))
    }

    fn record_path(&self, image: &str) -> Result<PathBuf, AgentError> {
        if valid_image(image) {
            Ok(self.dir.join(format!("{image}.json")))
        } else {
            Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("{image:?} is not an image name"),
            ))
        }
    }

    /// Claims image `image` for this agent process; `None` when another live agent
    /// process (or its criu) holds it.
    pub fn try_claim(&self, image: &str) -> Result<Option<Claim>, AgentError> {
        self.ensure_dir()?;
        let path = self.record_path(image)?.with_extension("lock");
        match try_lock_file(&path) {
            Ok(Locked::Mine(file)) => Ok(Some(Claim {
                file,
                image: image.to_owned(),
            })),
            Ok(Locked::Theirs(_)) => Ok(None),
            Err(e) => Err(io("locking", &path, &e)),
        }
    }

    /// Claims image `image`, or says who has it.
    pub fn claim(&self, image: &str) -> Result<Claim, AgentError> {
        self.try_claim(image)?.ok_or_else(|| {
            AgentError::new(
                ErrorKind::PermissionDenied,
                format!("image {image} is being handled by another connection"),
            )
        })
    }

    /// Writes `record` durably (stamped with this boot's id): after this returns, a crash leaves this phase or a
    /// later one on disk, never an earlier one or a torn file.
    pub fn write(&self, record: &Handoff) -> Result<(), AgentError> {
        self.ensure_dir()?;
        let path = self.record_path(&record.image)?;
        let mut record = record.clone();
        record.boot = boot_id();
        let text = serde_json::to_vec(&record).unwrap_or_default();
        // The rename is durable once the folder is synced too.
        openmosix_hpc::files::replace(&path, &text, 0o600)
            .and_then(|()| fs::File::open(&self.dir)?.sync_all())
            .map_err(|e| io("recording the handoff in", &path, &e))
    }

    /// The record of image `image`, if any.
    pub fn read(&self, image: &str) -> Option<Handoff> {
        let path = self.record_path(image).ok()?;
        let bytes = fs::read(&path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Removes the record of the image `claim` holds (and its lock file).
    pub fn remove(&self, claim: &Claim) {
        if let Ok(path) = self.record_path(&claim.image) {
            let _ = fs::remove_file(&path);
            // Removed while locked: a later claimer sees the path is gone and retries.
            let _ = fs::remove_file(path.with_extension("lock"));
            if let Ok(d) = fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
        }
    }

    /// Every record, with `active` set for those a live agent process holds.
    pub fn list(&self) -> Vec<Handoff> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut all: Vec<Handoff> = rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let image = name.strip_suffix(".json")?;
                let mut h = self.read(image)?;
                h.active = self.is_active(image);
                Some(h)
            })
            .collect();
        all.sort_by_key(|h| h.since_ms);
        all
    }

    /// Whether a live agent process holds image `image`.
    pub fn is_active(&self, image: &str) -> bool {
        match self.try_claim(image) {
            Ok(Some(_claim)) => false,
            Ok(None) => true,
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmosix_hpc::handoff::{Phase, Role};
    use std::os::unix::fs::PermissionsExt as _;

    fn record(image: &str, phase: Phase) -> Handoff {
        Handoff {
            image: image.into(),
            role: Role::Source,
            phase,
            pid: 42,
            tree: vec![42, 43],
            peer: Some(3),
            new_pid: None,
            guest: None,
            since_ms: 1,
            boot: None,
            active: false,
        }
    }

    #[test]
    fn records_are_claimed_written_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let h = Handoffs::new(dir.path());
        let claim = h.claim("42-a").unwrap();
        assert!(h.try_claim("42-a").unwrap().is_none(), "claimed twice");
        h.write(&record("42-a", Phase::Dumped)).unwrap();
        h.write(&record("42-a", Phase::Committed)).unwrap();
        let listed = h.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].phase, Phase::Committed);
        assert!(listed[0].active, "a held claim shows as active");
        drop(claim);
        assert!(!h.list()[0].active);
        let mode = fs::metadata(h.dir.join("42-a.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let claim = h.claim("42-a").unwrap();
        h.remove(&claim);
        drop(claim);
        assert!(h.list().is_empty());
        assert!(h.record_path("../x").is_err());
    }
}
