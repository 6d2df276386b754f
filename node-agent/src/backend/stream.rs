//! Image streams are untrusted input: `openmosix-agent images receive` runs as root and
//! unpacks what another node sends. [`unpack`] checks every tar header before anything is
//! written and refuses the whole stream at the first entry that breaks a rule:
//!
//! - only the layout of an image: `.size` (the announcement, first), round folders
//!   `1`, `2`, … and `dump`, `tree.json`, `.complete` (the end mark, last); inside a
//!   folder only files with criu's image names (`*.img`, `stats-dump`, `irmap-cache`,
//!   `dump.log`, `pre-dump.log`) and criu's `parent` link to an earlier round (`../N`);
//! - only regular files, folders at depth one and that one link form: no other links,
//!   hard links, devices or fifos, no absolute or `..` paths;
//! - at most the announced size plus a margin ([`cap_for`]), or [`UNANNOUNCED_CAP`] when
//!   the sender announced nothing (an agent older than the announcement);
//! - into a fresh 0700 folder, files created exclusively (never through a link).
//!
//! A refused stream leaves nothing of it on disk.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Component, Path};

/// The stream's first entry: the image's size in bytes, in decimal.
pub const SIZE_ENTRY: &str = ".size";
/// The stream's last entry: proof that the stream was not cut short.
pub const COMPLETE: &str = ".complete";
/// The cap on a stream whose sender announced no size (64 GiB).
pub const UNANNOUNCED_CAP: u64 = 64 << 30;

/// The cap on a stream that announced `announced` bytes: an eighth more, plus 64 MiB
/// (tar headers and padding are not counted; only file contents are).
pub fn cap_for(announced: u64) -> u64 {
    announced
        .saturating_add(announced / 8)
        .saturating_add(64 << 20)
}

/// What one entry of the stream is, once checked.
#[derive(Debug, PartialEq)]
enum Item {
    /// The stream's root (`.`): nothing to do.
    Root,
    /// The size announcement.
    Size,
    /// The end mark.
    Complete,
    /// A round folder (depth one).
    Dir(String),
    /// A file to write, relative to the image folder.
    File(String),
    /// criu's link from a round to the one before (`X/parent -> ../N`): the link and
    /// its target.
    ParentLink(String, String),
}

/// A round folder's name: `dump` or a round number.
fn round_name(s: &str) -> bool {
    s == "dump" || (!s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()))
}

/// A file name criu writes in a round folder.
fn criu_file_name(s: &str) -> bool {
    let plain = !s.is_empty()
        && s.len() <= 128
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    plain
        && (s.ends_with(".img")
            || ["stats-dump", "irmap-cache", "dump.log", "pre-dump.log"].contains(&s))
}

/// The path's parts, or why the path is refused.
fn parts(path: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(s) => match s.to_str() {
                Some(s) => out.push(s.to_owned()),
                None => return Err("a name that is not UTF-8".into()),
            },
            Component::ParentDir => return Err("a `..` in its path".into()),
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path".into()),
        }
    }
    Ok(out)
}

/// Checks one header: its path, its type, and (for a link) its target.
fn classify(path: &Path, kind: tar::EntryType, link: Option<&Path>) -> Result<Item, String> {
    let p = parts(path)?;
    let names: Vec<&str> = p.iter().map(String::as_str).collect();
    let file = kind.is_file();
    let item = match (names.as_slice(), kind) {
        ([], k) if k.is_dir() => Item::Root,
        ([SIZE_ENTRY], _) if file => Item::Size,
        ([COMPLETE], _) if file => Item::Complete,
        (["tree.json"], _) if file => Item::File("tree.json".into()),
        ([d], k) if k.is_dir() && round_name(d) => Item::Dir((*d).into()),
        ([d, "parent"], k) if k.is_symlink() && round_name(d) => {
            let target = link.and_then(Path::to_str).unwrap_or_default();
            match target.strip_prefix("../") {
                Some(n) if n != "dump" && round_name(n) => {
                    Item::ParentLink(format!("{d}/parent"), target.into())
                }
                _ => {
                    return Err(format!(
                        "a link to {target:?}; only criu's links to an earlier round are allowed"
                    ));
                }
            }
        }
        ([d, f], _) if file && round_name(d) && criu_file_name(f) => Item::File(format!("{d}/{f}")),
        (_, k) if k.is_symlink() || k.is_hard_link() => {
            return Err("a link; only criu's `parent` links are allowed".into());
        }
        (_, k) if !(file || k.is_dir()) => {
            return Err(format!(
                "type {k:?}; only regular files and folders are allowed"
            ));
        }
        _ => return Err("a name that is not part of a criu image".into()),
    };
    Ok(item)
}

/// Unpacks an image stream from `input` into `dir`, which must not exist yet (its parent
/// must); returns the bytes written. On any refusal or error, `dir` is removed and the
/// error says why in one sentence.
pub fn unpack(input: impl Read, dir: &Path) -> Result<u64, String> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = unpack_into(input, dir);
    if result.is_err() {
        let _ = fs::remove_dir_all(dir);
    }
    result
}

/// The counts of a stream being read.
struct Seen {
    cap: u64,
    total: u64,
    entries: u64,
    complete: bool,
}

fn unpack_into(input: impl Read, dir: &Path) -> Result<u64, String> {
    let mut archive = tar::Archive::new(input);
    let bad = |e: std::io::Error| format!("the image stream is not a valid tar stream: {e}");
    let mut seen = Seen {
        cap: UNANNOUNCED_CAP,
        total: 0,
        entries: 0,
        complete: false,
    };
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let link = entry
            .link_name()
            .map_err(bad)?
            .map(std::borrow::Cow::into_owned);
        let kind = entry.header().entry_type();
        let refuse =
            |why: String| format!("the image stream was refused: entry {path:?} has {why}");
        let item = classify(&path, kind, link.as_deref()).map_err(refuse)?;
        if seen.complete {
            return Err(refuse("to come before the end mark".into()));
        }
        seen.entries += 1;
        let size = entry.size();
        take_item(&item, &mut entry, size, dir, &mut seen)
            .map_err(|why| format!("the image stream was refused at {path:?}: {why}"))?;
    }
    if !seen.complete {
        return Err("the image stream was cut before all of it arrived".into());
    }
    Ok(seen.total)
}

/// Acts on one checked entry.
fn take_item(
    item: &Item,
    entry: &mut impl Read,
    size: u64,
    dir: &Path,
    seen: &mut Seen,
) -> Result<(), String> {
    match item {
        Item::Root => Ok(()),
        Item::Size if seen.entries == 1 => {
            let text = small_text(entry, size)?;
            let announced: u64 = text
                .trim()
                .parse()
                .map_err(|_| format!("the size announcement {text:?} is not a number"))?;
            seen.cap = cap_for(announced);
            Ok(())
        }
        Item::Size => Err("the size announcement must come first".into()),
        Item::Complete => {
            small_text(entry, size)?;
            seen.complete = true;
            Ok(())
        }
        Item::Dir(name) => match fs::DirBuilder::new().mode(0o700).create(dir.join(name)) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            r => r.map_err(|e| format!("cannot create the folder: {e}")),
        },
        Item::ParentLink(rel, target) => {
            let path = dir.join(rel);
            make_parent(&path)?;
            std::os::unix::fs::symlink(target, &path).map_err(|e| format!("cannot create it: {e}"))
        }
        Item::File(rel) => write_file(entry, size, &dir.join(rel), seen),
    }
}

/// Creates the round folder `path` lies in, if the stream did not. Only this code
/// creates anything in the fresh image folder, and never a link at depth one, so the
/// folder is a real one.
fn make_parent(path: &Path) -> Result<(), String> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    match fs::DirBuilder::new().mode(0o700).create(parent) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(format!("cannot create its folder: {e}"))
        }
        _ => Ok(()),
    }
}

/// Reads a short text entry (at most 64 bytes).
fn small_text(entry: &mut impl Read, size: u64) -> Result<String, String> {
    if size > 64 {
        return Err(format!("{size} bytes where at most 64 are expected"));
    }
    let mut s = String::new();
    entry
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read it: {e}"))?;
    Ok(s)
}

/// Writes one file of `size` bytes, created exclusively (never through a link), within
/// the cap.
fn write_file(
    entry: &mut impl Read,
    size: u64,
    path: &Path,
    seen: &mut Seen,
) -> Result<(), String> {
    if seen.total.saturating_add(size) > seen.cap {
        return Err(format!(
            "the stream grows beyond its cap of {} bytes (the announced size plus a margin)",
            seen.cap
        ));
    }
    make_parent(path)?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot create it: {e}"))?;
    let n = std::io::copy(&mut entry.take(size), &mut f)
        .map_err(|e| format!("cannot write it: {e}"))?;
    if n != size {
        return Err("the stream was cut inside it".into());
    }
    seen.total += n;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream builder for hostile and friendly streams.
    struct Stream(tar::Builder<Vec<u8>>);

    impl Stream {
        fn new(announce: Option<u64>) -> Stream {
            let mut s = Stream(tar::Builder::new(Vec::new()));
            if let Some(n) = announce {
                s.file(SIZE_ENTRY, n.to_string().as_bytes());
            }
            s.entry(".", tar::EntryType::Directory, None, b"");
            s.entry("dump", tar::EntryType::Directory, None, b"");
            s
        }
        fn entry(&mut self, path: &str, kind: tar::EntryType, link: Option<&str>, data: &[u8]) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o600);
            // Raw names, so that absolute and `..` paths reach the receiver as sent.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            self.0.append(&h, data).unwrap();
        }
        fn file(&mut self, path: &str, data: &[u8]) {
            self.entry(path, tar::EntryType::Regular, None, data);
        }
        fn end(mut self) -> Vec<u8> {
            self.file(COMPLETE, b"ok");
            self.0.into_inner().unwrap()
        }
    }

    fn receive(bytes: &[u8]) -> (tempfile::TempDir, Result<u64, String>) {
        let root = tempfile::tempdir().unwrap();
        let r = unpack(bytes, &root.path().join("img"));
        (root, r)
    }

    #[test]
    fn a_well_formed_image_arrives() {
        let mut s = Stream::new(Some(8192));
        s.entry("1", tar::EntryType::Directory, None, b"");
        s.file("1/pages-1.img", &[1; 4096]);
        s.file("./dump/pages-1.img", &[7; 4096]);
        s.file("dump/stats-dump", b"x");
        s.entry("dump/parent", tar::EntryType::Symlink, Some("../1"), b"");
        s.file("tree.json", b"[1]");
        let (root, r) = receive(&s.end());
        assert_eq!(r.unwrap(), 8192 + 1 + 3);
        let img = root.path().join("img");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&img).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(
            fs::read(img.join("dump/pages-1.img")).unwrap(),
            vec![7; 4096]
        );
        assert_eq!(
            fs::read_link(img.join("dump/parent")).unwrap(),
            Path::new("../1")
        );
        assert!(!img.join(SIZE_ENTRY).exists() && !img.join(COMPLETE).exists());
    }

    /// What a case adds to an otherwise well-formed stream.
    type AddEntry = Box<dyn Fn(&mut Stream)>;

    /// Every hostile stream is refused with a sentence, and leaves nothing behind.
    #[test]
    fn hostile_streams_leave_nothing() {
        use tar::EntryType as T;
        let cases: Vec<(&str, AddEntry)> = vec![
            (
                "link",
                Box::new(|s| s.entry("dump/restore.log", T::Symlink, Some("/tmp/victim"), b"")),
            ),
            (
                "link",
                Box::new(|s| s.entry("dump/parent", T::Symlink, Some("/etc"), b"")),
            ),
            (
                "link",
                Box::new(|s| s.entry("dump/parent", T::Symlink, Some("../dump"), b"")),
            ),
            (
                "link",
                Box::new(|s| s.entry("dump/core-1.img", T::Link, Some("tree.json"), b"")),
            ),
            ("`..`", Box::new(|s| s.file("dump/../../escaped", b"x"))),
            ("absolute", Box::new(|s| s.file("/tmp/escaped", b"x"))),
            (
                "type",
                Box::new(|s| s.entry("dump/tty.img", T::Char, None, b"")),
            ),
            (
                "type",
                Box::new(|s| s.entry("dump/fifo.img", T::Fifo, None, b"")),
            ),
            ("not part", Box::new(|s| s.file("dump/restore.log", b"x"))),
            ("not part", Box::new(|s| s.file("dump/evil.sh", b"x"))),
            ("not part", Box::new(|s| s.file("authorized_keys", b"x"))),
            ("not part", Box::new(|s| s.file("dump/1/pages-1.img", b"x"))),
            (
                "not part",
                Box::new(|s| s.entry("dump/sub", T::Directory, None, b"")),
            ),
            (
                "cap",
                Box::new(|s| s.file("dump/pages-1.img", &vec![0; (64 << 20) + 5000])),
            ),
        ];
        for (why, add) in cases {
            let mut s = Stream::new(Some(1000));
            s.file("dump/core-1.img", b"ok");
            add(&mut s);
            let (root, r) = receive(&s.end());
            let err = r.unwrap_err();
            assert!(
                err.contains(why) && err.starts_with("the image stream was refused"),
                "{why}: {err}"
            );
            assert_eq!(
                fs::read_dir(root.path()).unwrap().count(),
                0,
                "{why}: {err}"
            );
        }
        assert!(!Path::new("/tmp/escaped").exists());
    }

    #[test]
    fn announcement_and_end_mark() {
        // No announcement: the fixed cap applies, and a small image arrives.
        let mut s = Stream::new(None);
        s.file("dump/core-1.img", b"ok");
        assert!(receive(&s.end()).1.is_ok());
        // An announcement that is not first, or not a number, is refused.
        let mut s = Stream::new(None);
        s.file(SIZE_ENTRY, b"5");
        assert!(receive(&s.end()).1.unwrap_err().contains("must come first"));
        let mut s = Stream(tar::Builder::new(Vec::new()));
        s.file(SIZE_ENTRY, b"lots");
        assert!(receive(&s.end()).1.unwrap_err().contains("not a number"));
        // Anything after the end mark, or no end mark: refused, nothing left.
        let mut s = Stream::new(Some(10));
        s.file(COMPLETE, b"ok");
        s.file("dump/core-1.img", b"ok");
        let (root, r) = receive(&s.end());
        assert!(r.unwrap_err().contains("before the end mark"));
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
        let mut s = Stream::new(Some(10));
        s.file("dump/core-1.img", b"ok");
        let bytes = s.0.into_inner().unwrap();
        let (root, r) = receive(&bytes);
        assert!(r.unwrap_err().contains("cut"));
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
        assert_eq!(cap_for(1 << 30), (1 << 30) + (1 << 27) + (64 << 20));
    }
}
