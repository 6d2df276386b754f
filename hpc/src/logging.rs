//! Logging for every program of the suite: to stderr, filtered by `OPENMOSIX_LOG`
//! (`tracing` filter syntax, e.g. `OPENMOSIX_LOG=debug`), `default` otherwise. A daemon
//! that keeps its own log file writes it through [`RotatingFile`] ([`init_file`]), so
//! the file stays bounded.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn filter(default: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("OPENMOSIX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
}

/// Starts logging; call once at the top of `main`.
pub fn init(default: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A daemon's stderr is its log file: colour codes only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter(default))
        .init();
}

/// Starts logging into `path`, rotated at `max_bytes` (one old file kept: `path.1`).
/// If the file cannot be opened, logs to stderr and says why there.
pub fn init_file(default: &str, path: &Path, max_bytes: u64) {
    match RotatingFile::open(path, max_bytes) {
        Ok(file) => tracing_subscriber::fmt()
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .with_env_filter(filter(default))
            .init(),
        Err(e) => {
            init(default);
            tracing::warn!("cannot log to {}: {e}; logging to stderr", path.display());
        }
    }
}

/// A log file that, before it would grow beyond its bound, is renamed to `NAME.1`
/// (replacing the one before) and started afresh. Opened with `O_APPEND|O_NOFOLLOW`,
/// mode 0600. At most `2 × max_bytes` (plus one line) are ever kept.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    len: u64,
    max_bytes: u64,
}

impl RotatingFile {
    /// Opens (appending to) `path`.
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<RotatingFile> {
        let file = crate::files::open_append(path)?;
        let len = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            len,
            max_bytes: max_bytes.max(1),
        })
    }

    /// The old file's name: `NAME.1`.
    pub fn rotated_path(path: &Path) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        std::fs::rename(&self.path, Self::rotated_path(&self.path))?;
        self.file = crate::files::open_append(&self.path)?;
        self.len = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.len > 0 && self.len + buf.len() as u64 > self.max_bytes {
            // A log that cannot rotate keeps writing where it is rather than lose lines.
            let _ = self.rotate();
        }
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_bound_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        let mut f = RotatingFile::open(&path, 1000).unwrap();
        for i in 0..1000 {
            writeln!(f, "line {i:04} of a log that must stay bounded").unwrap();
        }
        let now = std::fs::metadata(&path).unwrap().len();
        let old = std::fs::metadata(RotatingFile::rotated_path(&path))
            .unwrap()
            .len();
        assert!(now <= 1000 && old <= 1000, "{now} {old}");
        let names = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(names, 2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("line 0999 of a log that must stay bounded\n"));
    }
}
