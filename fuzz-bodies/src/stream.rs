//! The image-stream receiver (`openmosix-agent images receive`): untrusted tar input.

use std::io::Read as _;
use std::path::Path;

use openmosix_agent::backend::stream::{SIZE_ENTRY, UNANNOUNCED_CAP, cap_for, unpack};

/// The size the stream announces in its `.size` entry, if it has one that is a number.
fn announced(data: &[u8]) -> Option<u64> {
    let mut archive = tar::Archive::new(data);
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        if entry.path().ok()?.as_os_str() == SIZE_ENTRY {
            let mut text = String::new();
            entry.read_to_string(&mut text).ok()?;
            return text.trim().parse().ok();
        }
    }
    None
}

/// Checks an unpacked image folder: round folders at depth one, files, and criu's
/// `parent` links to `../N` only; returns the bytes of its files.
fn image_bytes(dir: &Path, depth: usize) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("the image folder reads") {
        let entry = entry.expect("an entry of the image folder");
        let kind = entry.file_type().expect("a file type");
        let name = entry.file_name();
        if kind.is_symlink() {
            let target = std::fs::read_link(entry.path()).expect("a link reads");
            let target = target.to_str().expect("a UTF-8 link");
            assert!(
                depth == 1 && name == "parent",
                "a link {name:?} at depth {depth}"
            );
            let round = target.strip_prefix("../").expect("a link to ../N");
            assert!(
                round.bytes().all(|b| b.is_ascii_digit()),
                "a link to {target:?}"
            );
        } else if kind.is_dir() {
            assert_eq!(depth, 0, "a folder {name:?} below depth one");
            total += image_bytes(&entry.path(), depth + 1);
        } else {
            assert!(kind.is_file(), "{name:?} is neither file, folder nor link");
            total += entry.metadata().expect("metadata").len();
        }
    }
    total
}

/// An image stream: a refused one leaves nothing on disk; an accepted one wrote only its
/// own folder, in criu's layout, exactly the bytes it reports, within its cap (and never
/// more than the stream's own size); every refusal is a sentence.
pub fn image_stream(data: &[u8]) {
    let parent = tempfile::TempDir::new().expect("a temporary folder");
    let dir = parent.path().join("image");
    let result = unpack(data, &dir);
    let left: Vec<_> = std::fs::read_dir(parent.path())
        .expect("the temporary folder reads")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    match result {
        Err(why) => {
            assert!(!why.trim().is_empty(), "a refusal without words");
            assert!(left.is_empty(), "a refused stream left {left:?}");
        }
        Ok(total) => {
            assert_eq!(left, ["image"], "the stream wrote beside its folder");
            assert_eq!(image_bytes(&dir, 0), total, "bytes reported");
            assert!(
                total <= data.len() as u64,
                "more bytes than the stream holds"
            );
            let cap = announced(data).map_or(UNANNOUNCED_CAP, cap_for);
            assert!(total <= cap, "{total} bytes beyond the cap {cap}");
        }
    }
}
