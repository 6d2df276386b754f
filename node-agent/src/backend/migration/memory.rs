//! Images in memory (docs/migration.md, "Images in memory"): an image that arrives on
//! this node goes into a folder on a tmpfs when it fits in the node's memory, so that
//! neither the pages' arrival nor criu restore reading them waits on a disk; on disk
//! (the state folder's `images/`) otherwise.
//!
//! It fits when the node's available memory holds it twice (the image and the restored
//! process, until the image is removed) and [`SPARE`] more, and the tmpfs has room.

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::Migrator;
use crate::backend::syscalls;

/// Memory left to the node beside an image in memory and its restored process.
const SPARE: u64 = 256 << 20;
/// Room left on the tmpfs beside an image.
const TMPFS_SPARE: u64 = 64 << 20;

/// Makes `dir` (and, when `private_parent`, its parent too) a folder of this user's,
/// mode 0700, on a tmpfs: the memory folder, or why it cannot be.
pub fn prepare(dir: &Path, private_parent: bool) -> Result<PathBuf, String> {
    let parent = dir.parent().ok_or("a memory folder needs a parent")?;
    let grand = if private_parent {
        parent.parent().ok_or("a memory folder needs a parent")?
    } else {
        parent
    };
    if !on_tmpfs(grand) {
        return Err(format!("{} is not a tmpfs", grand.display()));
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    private(dir)?;
    if private_parent {
        private(parent)?;
    }
    Ok(dir.to_path_buf())
}

/// `dir` is a real folder (no link) of this user, and nobody else may enter it: one of
/// ours opened up is closed again (as the state folders are, `hpc::files`).
fn private(dir: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.file_type().is_dir() || meta.uid() != syscalls::euid() {
        return Err(format!(
            "{} is not a folder of this user (someone else made it)",
            dir.display()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{} is open to other users: {e}", dir.display()))?;
    }
    Ok(())
}

fn on_tmpfs(path: &Path) -> bool {
    syscalls::fs_stats(path).is_some_and(|s| s.tmpfs)
}

/// MemAvailable of /proc/meminfo, in bytes.
fn available_memory() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Whether an image of `bytes` fits in memory beside the memory folder `dir`.
fn fits(dir: &Path, bytes: u64) -> bool {
    let memory = available_memory().unwrap_or(0);
    let tmpfs = syscalls::fs_stats(dir).map_or(0, |s| s.room);
    bytes.saturating_mul(2).saturating_add(SPARE) <= memory
        && bytes.saturating_add(TMPFS_SPARE) <= tmpfs
}

impl Migrator {
    /// Keeps images that fit in memory in the folder `dir` (made by [`prepare`]).
    pub fn with_memory(mut self, dir: PathBuf) -> Self {
        self.memory = Some(dir);
        self
    }

    /// Whether images may go into memory here.
    pub fn has_memory_folder(&self) -> bool {
        self.memory.is_some()
    }

    /// The folder of image `id` in memory, when it is there.
    pub(super) fn in_memory_dir(&self, id: &str) -> Option<PathBuf> {
        let dir = self.memory.as_ref()?.join(id);
        fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.file_type().is_dir())
            .then_some(dir)
    }

    /// Whether image `id` is kept in memory.
    pub fn is_in_memory(&self, id: &str) -> bool {
        super::valid_image(id) && self.in_memory_dir(id).is_some()
    }

    /// Where a new folder `id` goes for an image of about `bytes` (unknown: disk): in
    /// memory when it fits or when `beside` (a folder being joined to it) is there, else
    /// on disk. The root folder exists after this.
    pub fn place(
        &self,
        id: &str,
        bytes: Option<u64>,
        beside: Option<&Path>,
    ) -> Result<PathBuf, openmosix_hpc::protocol::AgentError> {
        self.image_dir(id)?;
        let root = match (&self.memory, beside) {
            (Some(mem), Some(b)) if b.starts_with(mem) => mem.clone(),
            (_, Some(_)) => self.images.clone(),
            (Some(mem), None) if bytes.is_some_and(|b| fits(mem, b)) => mem.clone(),
            _ => self.images.clone(),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(|e| super::io("creating", &root, &e))?;
        Ok(root.join(id))
    }

    /// The folders images may live in: on disk, then in memory.
    pub(super) fn roots(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.images.as_path()).chain(self.memory.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::procfs::ProcFs;

    #[test]
    fn small_images_go_to_memory_and_huge_ones_to_disk() {
        let state = tempfile::tempdir().unwrap();
        let shm = tempfile::tempdir_in(openmosix_hpc::memory_images::BASE).unwrap();
        let mem = prepare(&shm.path().join("me/images"), true).unwrap();
        let m = Migrator::new(None, String::new(), state.path(), ProcFs::new("/proc"))
            .with_memory(mem.clone());
        let small = m.place("1-a", Some(1 << 20), None).unwrap();
        assert_eq!(small, mem.join("1-a"));
        let huge = m.place("2-b", Some(u64::MAX / 4), None).unwrap();
        assert_eq!(huge, state.path().join("images/2-b"));
        assert_eq!(
            m.place("3-c", None, None).unwrap(),
            state.path().join("images/3-c")
        );
        // The rest of an image joins its pages where they are.
        fs::create_dir(&small).unwrap();
        let aside = mem.join("4-d-pages");
        assert_eq!(m.place("4-d", None, Some(&aside)).unwrap(), mem.join("4-d"));
        assert!(m.is_in_memory("1-a") && !m.is_in_memory("2-b"));
        assert_eq!(m.image_dir("1-a").unwrap(), small);
        m.remove("1-a");
        assert!(!small.exists());
    }

    #[test]
    fn a_link_or_a_folder_off_tmpfs_is_refused_and_an_open_one_closed() {
        let disk = tempfile::tempdir().unwrap();
        let err = prepare(&disk.path().join("a/b"), true).unwrap_err();
        assert!(err.contains("is not a tmpfs"), "{err}");
        let shm = tempfile::tempdir_in(openmosix_hpc::memory_images::BASE).unwrap();
        let open = shm.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        prepare(&open.join("images"), true).unwrap();
        let mode = fs::metadata(&open).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::os::unix::fs::symlink(shm.path(), shm.path().join("link")).unwrap();
        let err = prepare(&shm.path().join("link"), false).unwrap_err();
        assert!(err.contains("not a folder of this user"), "{err}");
    }
}
