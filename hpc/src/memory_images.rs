//! Where an agent keeps migration images in memory (docs/migration.md, "Images in
//! memory"): a folder on `/dev/shm` (a tmpfs on every glibc system) private to the
//! agent's user, one per state folder so that agents with different state folders (the
//! testbed's nodes) never see each other's images.

use std::path::{Path, PathBuf};

/// The tmpfs the default folder lives on.
pub const BASE: &str = "/dev/shm";

/// The environment variable that names another folder, or `off` for none.
pub const ENV: &str = "OPENMOSIX_MEMORY_IMAGES";

/// The default memory folder of the agent whose state folder is `state_dir`, run by
/// user `euid`: `/dev/shm/openmosix-EUID/HASH`, HASH naming the state folder.
pub fn default_dir(state_dir: &Path, euid: u32) -> PathBuf {
    Path::new(BASE)
        .join(format!("openmosix-{euid}"))
        .join(format!(
            "{:016x}",
            fnv1a(state_dir.as_os_str().as_encoded_bytes())
        ))
}

/// FNV-1a, 64 bits: stable across builds, which a std hasher is not promised to be.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_folders_get_their_own_folder() {
        let a = default_dir(Path::new("/var/lib/openmosix"), 0);
        let b = default_dir(Path::new("/srv/node2/state"), 0);
        assert_ne!(a, b);
        assert!(a.starts_with("/dev/shm/openmosix-0"));
        assert_eq!(a, default_dir(Path::new("/var/lib/openmosix"), 0));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
