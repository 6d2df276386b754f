//! The node side of a migration (DESIGN.md section 4): pre-dump rounds and the final dump
//! on the source (the tree left stopped), image folders streamed by `openmosix-agent
//! images send|receive`, restore on the target, and on the source either resume (any
//! failure before the target confirmed) or finish (kill the stopped original).
//!
//! These calls run criu for seconds; the server runs them off its request loop and
//! without the backend lock, so the node keeps answering while a process moves.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

mod fault;
mod frames;
pub mod guard;
mod image_link;
mod images;
mod lazy_dumps;
mod link;
pub mod memory;
pub mod pages;
mod postcopy;
mod settle;

pub use fault::FAULT_HOOK;

pub use settle::Settled;

use super::criu::{Criu, CriuChecks};
use super::handoff::{Claim, Handoffs};
use super::lazy::Running;
use super::procfs::ProcFs;
use super::syscalls;
use openmosix_hpc::handoff::{Guest, Handoff, Phase, Role};
use openmosix_hpc::model::{NodeId, Signal};
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
    /// criu's checks, which may still be running ([`CriuChecks`]).
    criu: CriuChecks,
    images: PathBuf,
    /// The folder for images that fit in memory ([`memory`]), if this node has one.
    memory: Option<PathBuf>,
    procfs: ProcFs,
    handoffs: Handoffs,
    /// Post-copy dumps serving their pages, by image.
    lazy: Arc<Mutex<HashMap<String, Running>>>,
}

fn failed_with(message: impl Into<String>) -> AgentError {
    AgentError::new(ErrorKind::MigrationFailed, message)
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
    /// A migrator keeping images under `state_dir/images`, with `criu` (`None`: no
    /// migration here, because `why_not`).
    pub fn new(criu: Option<Criu>, why_not: String, state_dir: &Path, procfs: ProcFs) -> Self {
        let capability = openmosix_hpc::protocol::Capability {
            available: criu.is_some(),
            detail: why_not,
        };
        Self::with_checks(CriuChecks::known((criu, capability)), state_dir, procfs)
    }

    /// A migrator whose criu is the outcome of `checks`, which may still be running:
    /// what needs criu waits for them.
    pub fn with_checks(checks: CriuChecks, state_dir: &Path, procfs: ProcFs) -> Self {
        Migrator {
            criu: checks,
            images: state_dir.join("images"),
            memory: None,
            procfs,
            handoffs: Handoffs::new(state_dir),
            lazy: Arc::default(),
        }
    }

    /// The folder of the migration locks ([`super::movelock`]).
    pub fn moving_dir(&self) -> PathBuf {
        self.images.with_file_name("moving")
    }

    /// criu's checks: their outcome, now or once known.
    pub fn checks(&self) -> &CriuChecks {
        &self.criu
    }

    /// Whether post-copy moves can work here (waiting for criu's checks if they run).
    pub fn can_postcopy(&self) -> bool {
        self.criu().is_ok_and(Criu::can_postcopy)
    }

    /// criu, once its checks have ended (they run in the background while the agent
    /// starts): a step asked for before then waits for them.
    fn criu(&self) -> Result<&Criu, AgentError> {
        match self.criu.wait_for(super::criu::CHECKS_LIMIT) {
            Some((Some(criu), _)) => Ok(criu),
            Some((None, why_not)) => Err(AgentError::new(
                ErrorKind::Unsupported,
                format!("migration is not available here: {}", why_not.detail),
            )),
            None => Err(AgentError::new(
                ErrorKind::Unsupported,
                format!(
                    "migration is not available here: criu's checks did not end within {} s",
                    super::criu::CHECKS_LIMIT.as_secs()
                ),
            )),
        }
    }

    /// The folder of image `id`: in memory when it is there, else on disk.
    pub fn image_dir(&self, id: &str) -> Result<PathBuf, AgentError> {
        if valid_image(id) {
            Ok(self
                .in_memory_dir(id)
                .unwrap_or_else(|| self.images.join(id)))
        } else {
            Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("{id:?} is not an image name"),
            ))
        }
    }

    /// The agent's state folder.
    pub fn state_dir(&self) -> &Path {
        self.images.parent().unwrap_or(Path::new("."))
    }

    /// The handoff records of this node.
    pub fn handoffs(&self) -> &Handoffs {
        &self.handoffs
    }

    /// A new image folder for a dump of `pid`; its name.
    pub fn new_image(&self, pid: i32) -> Result<String, AgentError> {
        let id = format!("{pid}-{:x}", openmosix_hpc::clock::unix_nanos());
        let dir = self.image_dir(&id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io("creating", &dir, &e))?;
        Ok(id)
    }

    /// What a dump of process `pid` into image `id` needs: criu, the process, the folder.
    fn image_for(&self, pid: i32, id: &str) -> Result<(&Criu, PathBuf), AgentError> {
        let criu = self.criu()?;
        self.procfs.stat(pid)?;
        Ok((criu, self.image_dir(id)?))
    }

    /// The rounds an image has, in order (`1`, `2`, … then `dump`).
    fn rounds(dir: &Path) -> u32 {
        (1..)
            .take_while(|n| dir.join(n.to_string()).is_dir())
            .count()
            .try_into()
            .unwrap_or(u32::MAX)
    }

    /// One pre-dump round into image `id` (made by [`Migrator::new_image`]).
    pub fn predump(&self, pid: i32, id: &str) -> Result<PredumpInfo, AgentError> {
        let (criu, dir) = self.image_for(pid, id)?;
        let round = Self::rounds(&dir) + 1;
        let here = dir.join(round.to_string());
        fs::create_dir(&here).map_err(|e| io("creating", &here, &e))?;
        let prev = (round > 1).then(|| format!("../{}", round - 1));
        criu.pre_dump(pid, &here, prev.as_deref())?;
        Ok(PredumpInfo {
            image: id.to_owned(),
            round,
            pages: pages_in(&here),
        })
    }

    /// The final dump into the claimed image, the tree left stopped, for a move to
    /// `to`. The handoff is recorded `dumping` before criu runs (criu holds the claim)
    /// and `dumped` after. On failure criu resumes the tree, and so do we.
    ///
    /// With `pages` the memory pages go to the image's page stream: the socket that
    /// `openmosix-agent pages send` listens on in the image folder ([`pages::SOCKET`]).
    ///
    /// With `lazy` (post-copy, with `pages`) criu answers once all but the private
    /// memory is dumped and goes on serving those pages: [`Migrator::finish`] and
    /// [`Migrator::resume`] wait for it.
    pub fn dump(
        &self,
        pid: i32,
        claim: &Claim,
        to: Option<NodeId>,
        pages: bool,
        lazy: bool,
    ) -> Result<DumpInfo, AgentError> {
        let id = claim.image();
        let (criu, dir) = self.image_for(pid, id)?;
        let mut record = Handoff {
            image: id.to_owned(),
            role: Role::Source,
            phase: Phase::Dumping,
            pid,
            tree: Vec::new(),
            peer: to,
            new_pid: None,
            guest: None,
            since_ms: openmosix_hpc::clock::unix_ms(),
            boot: None,
            active: false,
        };
        self.handoffs.write(&record)?;
        let rounds = Self::rounds(&dir);
        let prev = (rounds > 0).then(|| format!("../{rounds}"));
        let here = dir.join("dump");
        let start = std::time::Instant::now();
        let stream = if pages {
            match pages::connect(&dir) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.remove(id);
                    self.handoffs.remove(claim);
                    return Err(e);
                }
            }
        } else {
            None
        };
        let dumped = fs::create_dir(&here)
            .map_err(|e| io("creating", &here, &e))
            .and_then(|()| match (&stream, lazy) {
                (Some(socket), true) => {
                    let fd = std::os::fd::AsRawFd::as_raw_fd(socket);
                    let running = criu.dump_lazy(pid, &here, claim.fd(), fd)?;
                    self.lazy_dumps().insert(id.to_owned(), running);
                    Ok(())
                }
                _ => criu.dump(
                    pid,
                    &here,
                    prev.as_deref(),
                    Some(claim.fd()),
                    stream.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
                ),
            });
        drop(stream);
        if let Err(e) = dumped {
            // criu resumes the tree itself on failure; make sure of it.
            self.continue_tree(&self.tree(pid));
            // Keep the log for the admin, beside the images.
            let _ = fs::copy(
                here.join("dump.log"),
                self.images.join(format!("{id}.dump.log")),
            );
            self.remove(id);
            self.handoffs.remove(claim);
            return Err(e);
        }
        // Read the tree now that it is frozen: a child forked during the dump is in it.
        record.tree = self.tree(pid);
        record.phase = Phase::Dumped;
        record.since_ms = openmosix_hpc::clock::unix_ms();
        // Written whole (renamed into place) and last: a post-copy page pump sends the
        // image once it is there, while the record below is written.
        let tree = dir.join("tree.json");
        let part = dir.join(".tree.json.part");
        let saved = fs::write(&part, serde_json::to_vec(&record.tree).unwrap_or_default())
            .and_then(|()| fs::rename(&part, &tree))
            .map_err(|e| io("writing", &dir, &e))
            .and_then(|()| self.handoffs.write(&record));
        if let Err(e) = saved {
            self.continue_tree(&record.tree);
            self.remove(id);
            self.handoffs.remove(claim);
            return Err(e);
        }
        Ok(DumpInfo {
            bytes: dir_bytes(&dir),
            image: id.to_owned(),
            tree: record.tree,
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

    /// The record of the claimed image, in one of `phases`.
    fn record_in(&self, claim: &Claim, phases: &[Phase]) -> Result<Handoff, AgentError> {
        let id = claim.image();
        match self.handoffs.read(id) {
            Some(r) if phases.contains(&r.phase) => Ok(r),
            Some(r) => Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("image {id} is {:?}, not {phases:?}", r.phase).to_lowercase(),
            )),
            None => Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("no handoff of image {id} here"),
            )),
        }
    }

    fn rewrite(&self, mut record: Handoff, phase: Phase) -> Result<Handoff, AgentError> {
        record.phase = phase;
        record.since_ms = openmosix_hpc::clock::unix_ms();
        record.active = false;
        self.handoffs.write(&record)?;
        Ok(record)
    }

    /// The move is called off before it was committed: the stopped tree runs on here,
    /// the image goes away, the record says `aborted` (for a target that asks). A
    /// committed move is never resumed.
    pub fn resume(&self, claim: &Claim) -> Result<(), AgentError> {
        let id = claim.image();
        // A post-copy dump ends when its page stream closes (the client closed the
        // pumps); it is stopped if it does not, so that the tree is ours again.
        if let Some(mut running) = self.lazy_dumps().remove(id)
            && running
                .wait_for(std::time::Duration::from_secs(10))
                .is_err()
        {
            running.kill();
        }
        let record = match self.handoffs.read(id) {
            Some(r) if matches!(r.phase, Phase::Committed | Phase::Departed) => {
                return Err(AgentError::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "the move of process {} to node {} is committed: it runs there, not here",
                        r.pid,
                        r.peer.unwrap_or_default()
                    ),
                ));
            }
            Some(r) => r,
            // Pre-dump rounds only: nothing was stopped for long, nothing to record.
            None => {
                if let Ok(tree) = self.saved_tree(id) {
                    self.continue_tree(&tree);
                }
                self.remove(id);
                return Ok(());
            }
        };
        let tree = if record.tree.is_empty() {
            self.tree(record.pid)
        } else {
            record.tree.clone()
        };
        self.rewrite(record, Phase::Aborted)?;
        self.continue_tree(&tree);
        self.remove(id);
        Ok(())
    }

    /// The target holds the tree restored and stopped: the move is decided. After
    /// this the original is only ever removed.
    pub fn commit(&self, claim: &Claim, new_pid: i32) -> Result<(), AgentError> {
        let mut record = self.record_in(claim, &[Phase::Dumped, Phase::Committed])?;
        record.new_pid = Some(new_pid);
        self.rewrite(record, Phase::Committed).map(|_| ())
    }

    /// The stopped original goes away (and so does the image); the record says
    /// `departed`. A `dumped` record (a client that does not commit) commits here.
    pub fn finish(&self, claim: &Claim) -> Result<Handoff, AgentError> {
        let mut record =
            self.record_in(claim, &[Phase::Dumped, Phase::Committed, Phase::Departed])?;
        if record.phase == Phase::Dumped {
            record = self.rewrite(record, Phase::Committed)?;
        }
        let lost = self
            .lazy_ended(claim.image())
            .and_then(|ended| self.pages_lost(claim.image(), ended));
        if let Some(why) = lost {
            // The page stream broke after the target ran: criu has resumed the tree
            // here, and the target's guard kills its copy, whose missing pages would
            // read as zeros. What the process did there is lost.
            let tree = record.tree.clone();
            let (pid, to) = (record.pid, record.peer.unwrap_or_default());
            self.rewrite(record, Phase::Aborted)?;
            self.continue_tree(&tree);
            self.remove(claim.image());
            return Err(AgentError::new(
                ErrorKind::MigrationFailed,
                format!(
                    "the page stream of the post-copy move broke after process {pid} had run on node {to} ({why}): it runs on here, its copy there is killed, and what it did there is lost"
                ),
            ));
        }
        self.kill_tree(&record.tree);
        self.remove(claim.image());
        self.rewrite(record, Phase::Departed)
    }

    /// A post-copy move broke after the target ran (the client says its copy there was
    /// killed): the original, frozen here until its page stream ended, runs on. Only a
    /// post-copy dump of this connection can be taken back so.
    pub fn take_back(&self, claim: &Claim) -> Result<(), AgentError> {
        let id = claim.image();
        let record = self.record_in(claim, &[Phase::Dumped, Phase::Committed])?;
        let Some(mut running) = self.lazy_dumps().remove(id) else {
            return Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("image {id} is not a post-copy move of this connection"),
            ));
        };
        // Its stream is gone: criu ends (leaving the tree stopped, or resumed).
        if running
            .wait_for(std::time::Duration::from_secs(10))
            .is_err()
        {
            running.kill();
        }
        let tree = record.tree.clone();
        self.rewrite(record, Phase::Aborted)?;
        self.continue_tree(&tree);
        self.remove(id);
        Ok(())
    }

    /// Kills a stopped tree, children first, and waits a little for it to be gone.
    pub(super) fn kill_tree(&self, tree: &[i32]) {
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
    }

    /// Restores the claimed, received image here for `guest`: the root's pid. With
    /// `hold` the tree stays stopped (`restored`) until [`Migrator::release`] or
    /// [`Migrator::discard`]; without, it runs at once (older clients) and the record
    /// is gone. The image is removed either way.
    ///
    /// With `lazy` (post-copy) the private memory comes from the image's page pump
    /// (`pages receive --lazy`), which also removes the image once it has every page.
    pub fn restore(
        &self,
        claim: &Claim,
        guest: Guest,
        hold: bool,
        lazy: bool,
    ) -> Result<i32, AgentError> {
        let id = claim.image();
        let criu = self.criu()?;
        let dir = self.image_dir(id)?.join("dump");
        if !dir.is_dir() {
            return Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("no image {id} was received"),
            ));
        }
        let mut record = Handoff {
            image: id.to_owned(),
            role: Role::Target,
            phase: Phase::Restoring,
            pid: 0,
            tree: self.saved_tree(id).unwrap_or_default(),
            peer: Some(guest.from),
            new_pid: None,
            guest: Some(guest),
            since_ms: openmosix_hpc::clock::unix_ms(),
            boot: None,
            active: false,
        };
        if let Err(e) = self.handoffs.write(&record) {
            self.remove(id);
            return Err(e);
        }
        let restoring = lazy.then(|| self.restoring(id));
        let result = criu.restore(&dir, hold, lazy, Some(claim.fd()));
        drop(restoring);
        if result.is_err() {
            // Keep the log for the admin; drop the (large) memory images.
            let keep = self.images.join(format!("{id}.restore.log"));
            let _ = fs::copy(dir.join("restore.log"), keep);
        }
        if !lazy || result.is_err() {
            self.remove(id);
        }
        let pid = match result {
            Ok(pid) => pid,
            Err(e) => {
                self.handoffs.remove(claim);
                return Err(e);
            }
        };
        record.pid = pid;
        if record.tree.first() != Some(&pid) {
            record.tree = vec![pid];
        }
        if hold {
            self.rewrite(record, Phase::Restored)?;
        } else {
            self.handoffs.remove(claim);
        }
        Ok(pid)
    }

    /// The source committed: the restored tree runs. Returns the record, whose guest
    /// the caller records; the record is gone.
    pub fn release(&self, claim: &Claim) -> Result<Handoff, AgentError> {
        let record = self.record_in(claim, &[Phase::Restored, Phase::Running])?;
        let record = self.rewrite(record, Phase::Running)?;
        self.continue_tree(&record.tree);
        self.handoffs.remove(claim);
        Ok(record)
    }

    /// The source called the move off: the restored, stopped tree is killed.
    pub fn discard(&self, claim: &Claim) -> Result<Handoff, AgentError> {
        let record = self.record_in(claim, &[Phase::Restored, Phase::Restoring])?;
        self.kill_tree(&record.tree);
        self.remove(claim.image());
        self.handoffs.remove(claim);
        Ok(record)
    }

    /// Held while `criu restore --lazy-pages` of image `id` runs (an exclusive flock on
    /// its folder): the post-copy pump may serve the last page before the restore has
    /// written its pid file there, and waits on this before it touches the folder.
    fn restoring(&self, id: &str) -> Option<fs::File> {
        let dir = fs::File::open(self.image_dir(id).ok()?).ok()?;
        dir.lock().ok()?;
        Some(dir)
    }

    /// Waits until no restore of image `id` runs (criu's time limit bounds that).
    pub fn wait_restored(&self, id: &str) {
        drop(self.restoring(id));
    }

    /// Removes an image folder (wherever it is), and its page stream's word.
    pub fn remove(&self, id: &str) {
        if valid_image(id) {
            for root in self.roots() {
                let _ = fs::remove_dir_all(root.join(id));
            }
            let _ = fs::remove_file(self.stream_end_path(id));
        }
    }
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
}
