//! Where a history lives when nobody says.

use std::path::PathBuf;

/// Whether this process runs as root.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// The collector's folder for a user who is not root:
/// `$XDG_STATE_HOME/openmosix/collector` (~/.local/state/…).
pub fn state_dir() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || {
                std::env::var_os("HOME")
                    .map_or_else(|| PathBuf::from("."), PathBuf::from)
                    .join(".local/state")
            },
            PathBuf::from,
        );
    state.join("openmosix/collector")
}

/// `/var/lib/openmosix/collector/history.db` for root, else
/// `$XDG_STATE_HOME/openmosix/collector/history.db` (~/.local/state/…).
pub fn default_db() -> PathBuf {
    if is_root() {
        PathBuf::from("/var/lib/openmosix/collector/history.db")
    } else {
        state_dir().join("history.db")
    }
}
