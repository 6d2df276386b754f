//! The node side of a migration (DESIGN.md section 4): pre-dump rounds and the final dump
//! on the source (the tree left stopped), image folders streamed by `openmosix-agent
//! images send|receive`, restore on the target, and on the source either resume (any
//! failure before the target confirmed) or finish (kill the stopped original).
//!
//! These calls run criu for seconds; the server runs them off its request loop and
//! without the backend lock, so the node keeps answering while a process moves.

use std::fs;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::criu::Criu;
use super::procfs::ProcFs;
use super::stream;
use super::syscalls;
use openmosix_hpc::model::Signal;
use openmosix_hpc::protocol::{AgentError, ErrorKind};

/// An image name: `[0-9a-z-]`, so it never names a path outside the images folder.
pub fn valid_image(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-')
}

/// The answer to `predump`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredumpInfo {
    /// The image (created by the first round).
    pub image: String,
    /// This round's number (1-based).
    pub round: u32,
    /// Memory pages this round wrote.
    pub pages: u64,
}

/// The answer to `dump`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpInfo {
    /// The image.
    pub image: String,
    /// Bytes of all its folders (what will be sent).
    pub bytes: u64,
    /// Pids of the stopped tree.
    pub tree: Vec<i32>,
    /// How long criu dump took (the process is frozen from its start).
    pub dump_ms: u64,
}

/// Where images live and the criu that makes them.
#[derive(Debug, Clone)]
pub struct Migrator {
    criu: Option<Criu>,
    why_not: String,
    images: PathBuf,
    procfs: ProcFs,
}

fn io(what: &str, path: &Path, e: &std::io::Error) -> AgentError {
    AgentError::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Pages in the `pages-*.img` files of one criu folder.
fn pages_in(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("pages-"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len() / 4096)
        .sum()
}

impl Migrator {
    /// A migrator keeping images under `state_dir/images`.
    pub fn new(criu: Option<Criu>, why_not: String, state_dir: &Path, procfs: ProcFs) -> Self {
        Migrator {
            criu,
            why_not,
            images: state_dir.join("images"),
            procfs,
        }
    }

    /// The folder of the migration locks ([`super::movelock`]).
    pub fn moving_dir(&self) -> PathBuf {
        self.images.with_file_name("moving")
    }

    /// Whether pre-dump rounds can work here.
    pub fn can_predump(&self) -> bool {
        self.criu.as_ref().is_some_and(Criu::can_predump)
    }

    fn criu(&self) -> Result<&Criu, AgentError> {
        self.criu.as_ref().ok_or_else(|| {
            AgentError::new(
                ErrorKind::Unsupported,
                format!("migration is not available here: {}", self.why_not),
            )
        })
    }

    /// The folder of image `id`.
    pub fn image_dir(&self, id: &str) -> Result<PathBuf, AgentError> {
        if valid_image(id) {
            Ok(self.images.join(id))
        } else {
            Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("{id:?} is not an image name"),
            ))
        }
    }

    fn new_image(&self, pid: i32) -> Result<String, AgentError> {
        let id = format!("{pid}-{:x}", openmosix_hpc::clock::unix_nanos());
        let dir = self.image_dir(&id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io("creating", &dir, &e))?;
        Ok(id)
    }

    /// What a dump of process `pid` needs: criu, the process, and the image (`image`,
    /// or a new one) with its folder.
    fn image_for(
        &self,
        pid: i32,
        image: Option<&str>,
    ) -> Result<(&Criu, String, PathBuf), AgentError> {
        let criu = self.criu()?;
        self.procfs.stat(pid)?;
        let id = match image {
            Some(i) => i.to_owned(),
            None => self.new_image(pid)?,
        };
        let dir = self.image_dir(&id)?;
        Ok((criu, id, dir))
    }

    /// The rounds an image has, in order (`1`, `2`, … then `dump`).
    fn rounds(dir: &Path) -> u32 {
        (1..)
            .take_while(|n| dir.join(n.to_string()).is_dir())
            .count()
            .try_into()
            .unwrap_or(u32::MAX)
    }

    /// One pre-dump round; the first creates the image.
    pub fn predump(&self, pid: i32, image: Option<&str>) -> Result<PredumpInfo, AgentError> {
        let (criu, id, dir) = self.image_for(pid, image)?;
        let round = Self::rounds(&dir) + 1;
        let here = dir.join(round.to_string());
        fs::create_dir(&here).map_err(|e| io("creating", &here, &e))?;
        let prev = (round > 1).then(|| format!("../{}", round - 1));
        criu.pre_dump(pid, &here, prev.as_deref())?;
        Ok(PredumpInfo {
            image: id,
            round,
            pages: pages_in(&here),
        })
    }

    /// The final dump; the tree is left stopped. On failure criu resumes it, and so do we.
    pub fn dump(&self, pid: i32, image: Option<&str>) -> Result<DumpInfo, AgentError> {
        let (criu, id, dir) = self.image_for(pid, image)?;
        let rounds = Self::rounds(&dir);
        let prev = (rounds > 0).then(|| format!("../{rounds}"));
        let here = dir.join("dump");
        fs::create_dir(&here).map_err(|e| io("creating", &here, &e))?;
        let start = std::time::Instant::now();
        if let Err(e) = criu.dump(pid, &here, prev.as_deref()) {
            // criu resumes the tree itself on failure; make sure of it.
            self.continue_tree(&self.tree(pid));
            return Err(e);
        }
        // Read the tree now that it is frozen: a child forked during the dump is in it.
        let tree = self.tree(pid);
        if let Err(e) = fs::write(
            dir.join("tree.json"),
            serde_json::to_vec(&tree).unwrap_or_default(),
        ) {
            self.continue_tree(&tree);
            return Err(io("writing", &dir, &e));
        }
        Ok(DumpInfo {
            bytes: dir_bytes(&dir),
            image: id,
            tree,
            dump_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// The pid and its descendants, parents first.
    pub fn tree(&self, root: i32) -> Vec<i32> {
        let all: Vec<(i32, i32)> = self
            .procfs
            .pids()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| self.procfs.stat(p).ok().map(|s| (s.info.pid, s.info.ppid)))
            .collect();
        let mut tree = vec![root];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            tree.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
            i += 1;
        }
        tree
    }

    fn continue_tree(&self, tree: &[i32]) {
        for &p in tree {
            let _ = syscalls::send_signal(p, Signal::Cont);
        }
    }

    fn saved_tree(&self, id: &str) -> Result<Vec<i32>, AgentError> {
        let dir = self.image_dir(id)?;
        let bytes = fs::read(dir.join("tree.json")).map_err(|e| io("reading", &dir, &e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            AgentError::new(
                ErrorKind::Io,
                format!("image {id} has a bad tree.json: {e}"),
            )
        })
    }

    /// The migration failed: the stopped tree runs on here, the image goes away.
    pub fn resume(&self, id: &str) -> Result<(), AgentError> {
        let tree = self.saved_tree(id)?;
        self.continue_tree(&tree);
        self.remove(id);
        Ok(())
    }

    /// The target confirmed: the stopped original goes away (and so does the image).
    pub fn finish(&self, id: &str) -> Result<(), AgentError> {
        let tree = self.saved_tree(id)?;
        for &p in tree.iter().rev() {
            let _ = syscalls::send_signal(p, Signal::Kill);
        }
        // A killed process lingers as a zombie until its parent reaps it; wait a little
        // so that its pid reads as gone to whoever asks next.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while tree
            .iter()
            .any(|&p| self.procfs.stat(p).is_ok_and(|s| s.info.state != 'Z'))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.remove(id);
        Ok(())
    }

    /// Restores a received image here; returns the root's pid.
    pub fn restore(&self, id: &str) -> Result<i32, AgentError> {
        let criu = self.criu()?;
        let dir = self.image_dir(id)?.join("dump");
        if !dir.is_dir() {
            return Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("no image {id} was received"),
            ));
        }
        let result = criu.restore(&dir);
        if result.is_ok() {
            self.remove(id);
        } else {
            // Keep the log for the admin; drop the (large) memory images.
            let keep = self.images.join(format!("{id}.restore.log"));
            let _ = fs::copy(dir.join("restore.log"), keep);
            self.remove(id);
        }
        result
    }

    /// Removes an image folder.
    pub fn remove(&self, id: &str) {
        if let Ok(dir) = self.image_dir(id) {
            let _ = fs::remove_dir_all(dir);
        }
    }

    /// Writes image `id` as a tar stream (for `openmosix-agent images send`).
    pub fn send(&self, id: &str, out: impl std::io::Write) -> Result<(), AgentError> {
        let dir = self.image_dir(id)?;
        if !dir.is_dir() {
            return Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("no image {id}"),
            ));
        }
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        // First entry: the size, so that the receiver can cap the stream.
        let size = dir_bytes(&dir).to_string();
        small_entry(&mut tar, stream::SIZE_ENTRY, size.as_bytes())
            .map_err(|e| io("sending", &dir, &e))?;
        tar.append_dir_all(".", &dir)
            .map_err(|e| io("sending", &dir, &e))?;
        // Last entry: proof for the receiver that the stream was not cut short.
        small_entry(&mut tar, stream::COMPLETE, b"ok").map_err(|e| io("sending", &dir, &e))?;
        tar.into_inner()
            .and_then(|mut w| std::io::Write::flush(&mut w))
            .map_err(|e| io("sending", &dir, &e))
    }

    /// Reads image `id` from a tar stream (for `openmosix-agent images receive`), checked
    /// entry by entry as [`stream::unpack`] says. A cut or refused stream leaves no image
    /// behind.
    pub fn receive(&self, id: &str, input: impl std::io::Read) -> Result<u64, AgentError> {
        let dir = self.image_dir(id)?;
        let _ = fs::remove_dir_all(&dir);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.images)
            .map_err(|e| io("creating", &self.images, &e))?;
        let bytes = stream::unpack(input, &dir)
            .map_err(|m| AgentError::new(ErrorKind::MigrationFailed, m))?;
        if !dir.join("dump").is_dir() {
            let _ = fs::remove_dir_all(&dir);
            return Err(AgentError::new(
                ErrorKind::MigrationFailed,
                "the image stream holds no final dump",
            ));
        }
        Ok(bytes)
    }
}

/// Appends a short file entry named `name` to `tar`.
fn small_entry<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_stay_inside() {
        assert!(valid_image("123-abc"));
        assert!(!valid_image("../etc"));
        assert!(!valid_image("a/b"));
        assert!(!valid_image(""));
    }

    #[test]
    fn tar_round_trip_and_cut_stream() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let src = Migrator::new(None, String::new(), a.path(), ProcFs::new("/proc"));
        let dst = Migrator::new(None, String::new(), b.path(), ProcFs::new("/proc"));
        let dir = src.image_dir("1-a").unwrap();
        fs::create_dir_all(dir.join("1")).unwrap();
        fs::create_dir_all(dir.join("dump")).unwrap();
        fs::write(dir.join("dump/pages-1.img"), vec![7u8; 8192]).unwrap();
        std::os::unix::fs::symlink("../1", dir.join("dump/parent")).unwrap();
        let mut stream = Vec::new();
        src.send("1-a", &mut stream).unwrap();
        let bytes = dst.receive("1-a", &stream[..]).unwrap();
        assert!(bytes >= 8192);
        let got = dst.image_dir("1-a").unwrap();
        assert_eq!(
            fs::read(got.join("dump/pages-1.img")).unwrap(),
            vec![7u8; 8192]
        );
        assert_eq!(
            fs::read_link(got.join("dump/parent")).unwrap(),
            PathBuf::from("../1")
        );
        // A stream cut anywhere leaves nothing behind.
        for cut in [stream.len() / 3, stream.len() - 1536, 512] {
            assert!(dst.receive("2-b", &stream[..cut]).is_err(), "cut at {cut}");
            assert!(!dst.image_dir("2-b").unwrap().exists());
        }
    }
}
