//! State folders and the files in them, the same way for every program of the suite (the
//! agent, its discovery daemon, the collector):
//!
//! - a state folder is mode 0700, set at every start ([`private_dir`]), not only when the
//!   folder is created: a folder someone opened up (`chmod 777`) is closed again;
//! - a file is created with `O_EXCL|O_NOFOLLOW` ([`create_new`]), so a link or a file
//!   planted under its name by another user is never written through;
//! - a file is replaced atomically ([`replace`]): written to a fresh temporary name beside
//!   it (created as above), synced, then renamed over the old one.
//!
//! Files are 0600 ([`FILE_MODE`]) unless a caller says otherwise.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The mode of every state folder.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the files in them.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its missing parents, 0700) and makes it 0700 if it is not: at
/// every start, so that a folder whose mode was changed is closed again. A `dir` that is
/// not a folder is refused. A shared folder with the sticky bit (such as `/tmp`, named as
/// a state folder by mistake) is left as it is: it is never the program's own.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| with_path("cannot create the folder", dir, &e))?;
    let meta = std::fs::metadata(dir).map_err(|e| with_path("cannot read the folder", dir, &e))?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a folder",
            dir.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode != DIR_MODE && mode & 0o1000 == 0 {
        std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
            .map_err(|e| with_path("cannot make the folder private (0700)", dir, &e))?;
    }
    Ok(())
}

/// The parent folder of a file path (`.` for a bare name).
pub fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates `path` for writing with `O_CREAT|O_EXCL|O_NOFOLLOW`: fails if anything (a
/// file, a link) is already there. The mode is set exactly (not masked by the umask).
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(mode))?;
    Ok(f)
}

/// Opens (creating if needed) `path` for reading and writing without following a link
/// at its name (`O_NOFOLLOW`); a new file gets `mode`. Something that is not a regular
/// file there is refused.
pub fn open_nofollow(path: &Path, mode: u32) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::other(format!(
                    "{} is a symbolic link; refusing to follow it",
                    path.display()
                ))
            } else {
                e
            }
        })?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// Opens (creating if needed, 0600) `path` for appending, without following a link at
/// its name: for log files.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// A temporary name beside `path` that no other writer (process or thread) picks.
pub fn temp_name(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Replaces `path` with `bytes` atomically (readers see the old file or the new one),
/// the new file with `mode`. The temporary file is created with [`create_new`].
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let tmp = temp_name(path);
    let result = (|| {
        let mut f = create_new(&tmp, mode)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn with_path(what: &str, path: &Path, e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn an_opened_up_folder_is_closed_again() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        private_dir(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
        std::fs::set_permissions(&state, Permissions::from_mode(0o777)).unwrap();
        private_dir(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
    }

    #[test]
    fn a_file_is_refused_and_a_shared_folder_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = private_dir(&file).unwrap_err().to_string();
        assert!(
            err.contains("not a folder") || err.contains("File exists"),
            "{err}"
        );
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, Permissions::from_mode(0o1777)).unwrap();
        private_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o1777);
        // A link to a folder is followed: the folder is closed.
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, Permissions::from_mode(0o755)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        private_dir(&link).unwrap();
        assert_eq!(mode(&real), 0o700);
    }

    #[test]
    fn create_new_never_writes_through_a_link_or_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert!(create_new(&planted, FILE_MODE).is_err());
        assert!(create_new(&victim, FILE_MODE).is_err());
        assert!(open_nofollow(&planted, FILE_MODE).is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let fresh = dir.path().join("fresh");
        drop(create_new(&fresh, FILE_MODE).unwrap());
        assert_eq!(mode(&fresh), 0o600);
    }

    #[test]
    fn replace_is_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("map.json");
        replace(&path, b"one", FILE_MODE).unwrap();
        replace(&path, b"two", FILE_MODE).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(mode(&path), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
