//! Settling handoffs nobody drives any more: the agent that drove one died (kill -9, a
//! crash, a reboot) or its client went away. Any agent process of the node does it: at
//! start, when a connection ends, and before it answers `handoffs`. What it does is the
//! table in docs/migration.md: a source not yet committed resumes its tree, a committed
//! source removes its original, a target that was released runs, and a target that was
//! restored but not released waits stopped for the source's decision (a client brings
//! it: `release` or `discard`).

use std::fs;
use std::time::{Duration, SystemTime};

use super::Migrator;
use openmosix_hpc::handoff::{Guest, Handoff, Phase, Role};

/// Outcomes kept this long for a target that asks, then removed.
const KEEP_OUTCOME_MS: u64 = 24 * 3600 * 1000;
/// An image folder that no handoff claims is removed once it is this old (a folder
/// being received is claimed; this covers the moment between receive and restore).
const ORPHAN_IMAGE_AGE: Duration = Duration::from_secs(60);

/// What settling did that the node's records must show (the server applies it to the
/// backend and the event log).
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// A move was called off: the original runs here again.
    Resumed {
        /// Its pid.
        pid: i32,
    },
    /// A committed move was completed: the original is gone.
    Departed {
        /// The original pid.
        pid: i32,
        /// Where it runs.
        to: u32,
        /// Its pid there.
        new_pid: i32,
    },
    /// A released guest runs here.
    Arrived {
        /// Its pid.
        pid: i32,
        /// Where from, and the rest of its record.
        guest: Guest,
    },
}

impl Migrator {
    /// Settles every handoff whose lock is free, then removes image folders that no
    /// handoff claims. Returns what changed.
    pub fn settle_orphans(&self) -> Vec<Settled> {
        let mut done = Vec::new();
        for record in self.handoffs.list() {
            if record.active {
                continue;
            }
            let Ok(Some(claim)) = self.handoffs.try_claim(&record.image) else {
                continue;
            };
            // Read again under the claim: the holder may have moved it on meanwhile.
            let Some(record) = self.handoffs.read(&record.image) else {
                continue;
            };
            if let Some(s) = self.settle_one(&claim, record) {
                done.push(s);
            }
        }
        self.sweep_images();
        done
    }

    fn settle_one(&self, claim: &super::Claim, record: Handoff) -> Option<Settled> {
        let image = record.image.clone();
        let warn = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!("settling the handoff of image {image}: {what}: {e}");
        };
        match (record.role, record.phase) {
            (Role::Source, Phase::Dumped)
                if record.boot.is_some() && record.boot != crate::backend::handoff::boot_id() =>
            {
                // The node rebooted: the original is gone with it, so the copy the target
                // may hold is the only one left: the move is committed.
                tracing::warn!(
                    "the move of process {} (image {image}) was undecided when the node rebooted: committing it",
                    record.pid
                );
                let new_pid = record.new_pid.unwrap_or(record.pid);
                if let Err(e) = self.commit(claim, new_pid) {
                    warn("commit", &e);
                    return None;
                }
                match self.finish(claim) {
                    Ok(r) => Some(Settled::Departed {
                        pid: r.pid,
                        to: r.peer.unwrap_or_default(),
                        new_pid,
                    }),
                    Err(e) => {
                        warn("finish", &e);
                        None
                    }
                }
            }
            (Role::Source, Phase::Dumping | Phase::Dumped) => {
                tracing::warn!(
                    "the move of process {} (image {image}) was left undecided: resuming it here",
                    record.pid
                );
                match self.resume(claim) {
                    Ok(()) => Some(Settled::Resumed { pid: record.pid }),
                    Err(e) => {
                        warn("resume", &e);
                        None
                    }
                }
            }
            (Role::Source, Phase::Committed) => match self.finish(claim) {
                Ok(r) => Some(Settled::Departed {
                    pid: r.pid,
                    to: r.peer.unwrap_or_default(),
                    new_pid: r.new_pid.unwrap_or_default(),
                }),
                Err(e) => {
                    warn("finish", &e);
                    None
                }
            },
            (Role::Source, Phase::Departed | Phase::Aborted) => {
                let age = openmosix_hpc::clock::unix_ms().saturating_sub(record.since_ms);
                if age > KEEP_OUTCOME_MS {
                    self.handoffs.remove(claim);
                }
                None
            }
            (Role::Target, _)
                if record.boot.is_some() && record.boot != crate::backend::handoff::boot_id() =>
            {
                tracing::warn!(
                    "image {image} was restored before the node rebooted: nothing of it is left"
                );
                self.remove(&image);
                self.handoffs.remove(claim);
                None
            }
            (Role::Target, Phase::Restoring) => {
                self.settle_restoring(claim, record);
                None
            }
            (Role::Target, Phase::Running) => match self.release(claim) {
                Ok(r) => r.guest.map(|guest| Settled::Arrived { pid: r.pid, guest }),
                Err(e) => {
                    warn("release", &e);
                    None
                }
            },
            // In doubt: stays stopped until a client brings the source's decision.
            (Role::Target, _) | (Role::Source, _) => None,
        }
    }

    /// criu restore ran for a target whose agent died (criu held the claim, so it has
    /// ended): restored and stopped → in doubt; else nothing of it may remain.
    fn settle_restoring(&self, claim: &super::Claim, mut record: Handoff) {
        let id = record.image.clone();
        let restored = self
            .image_dir(&id)
            .ok()
            .and_then(|d| fs::read_to_string(d.join("dump/restored.pid")).ok())
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|&p| self.procfs.stat(p).is_ok_and(|s| s.info.state == 'T'));
        self.remove(&id);
        match restored {
            Some(pid) => {
                record.pid = pid;
                if record.tree.first() != Some(&pid) {
                    record.tree = vec![pid];
                }
                if let Err(e) = self.rewrite(record, Phase::Restored) {
                    tracing::warn!("recording image {id} as restored: {e}");
                }
            }
            None => {
                // A restore cut short: whatever of the tree exists stopped is a husk.
                let husks: Vec<i32> = record
                    .tree
                    .iter()
                    .copied()
                    .filter(|&p| self.procfs.stat(p).is_ok_and(|s| s.info.state == 'T'))
                    .collect();
                self.kill_tree(&husks);
                self.handoffs.remove(claim);
            }
        }
    }

    /// Removes image folders that no handoff claims and that are older than a minute.
    fn sweep_images(&self) {
        let entries = self
            .roots()
            .filter_map(|root| fs::read_dir(root).ok())
            .flat_map(|rd| rd.filter_map(Result::ok));
        for e in entries {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > ORPHAN_IMAGE_AGE);
            // A page stream's word that came after its image had gone.
            if let Some(image) = name.strip_suffix(".pages")
                && old
                && self.handoffs.read(image).is_none()
            {
                let _ = fs::remove_file(e.path());
                continue;
            }
            if !super::valid_image(&name) || self.handoffs.read(&name).is_some() {
                continue;
            }
            if !old {
                continue;
            }
            if let Ok(Some(claim)) = self.handoffs.try_claim(&name) {
                tracing::warn!("removing image {name}: no handoff claims it");
                self.remove(&name);
                self.handoffs.remove(&claim);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::procfs::ProcFs;

    fn record(image: &str, role: Role, phase: Phase) -> Handoff {
        Handoff {
            image: image.into(),
            role,
            phase,
            // Far above any pid_max: no such process.
            pid: 99_999_999,
            tree: vec![99_999_999],
            peer: Some(2),
            new_pid: None,
            guest: None,
            since_ms: openmosix_hpc::clock::unix_ms(),
            boot: None,
            active: false,
        }
    }

    /// Writes `r` as an agent of another boot would have.
    fn before_reboot(m: &Migrator, r: &Handoff) {
        let path = m.handoffs.dir().join(format!("{}.json", r.image));
        let mut r = r.clone();
        r.boot = Some("an-earlier-boot".into());
        std::fs::create_dir_all(m.handoffs.dir()).unwrap();
        std::fs::write(path, serde_json::to_vec(&r).unwrap()).unwrap();
    }

    #[test]
    fn a_reboot_commits_a_dumped_source_and_forgets_a_restored_target() {
        let dir = tempfile::tempdir().unwrap();
        let m = Migrator::new(None, String::new(), dir.path(), ProcFs::new("/proc"));
        before_reboot(&m, &record("1-a", Role::Source, Phase::Dumped));
        before_reboot(&m, &record("2-b", Role::Target, Phase::Restored));
        // This boot's undecided source is resumed (aborted), not committed.
        let here = record("3-c", Role::Source, Phase::Dumped);
        m.handoffs.write(&here).unwrap();
        let done = m.settle_orphans();
        // (in the order of the records' times, equal here)
        assert_eq!(done.len(), 2, "{done:?}");
        assert!(done.contains(&Settled::Resumed { pid: 99_999_999 }));
        assert!(done.contains(&Settled::Departed {
            pid: 99_999_999,
            to: 2,
            new_pid: 99_999_999
        }));
        let phase = |i: &str| m.handoffs.read(i).map(|r| r.phase);
        assert_eq!(phase("1-a"), Some(Phase::Departed));
        assert_eq!(phase("2-b"), None);
        assert_eq!(phase("3-c"), Some(Phase::Aborted));
        // The outcomes are answers for targets that ask; settling again changes nothing.
        assert!(m.settle_orphans().is_empty());
        assert_eq!(phase("1-a"), Some(Phase::Departed));
    }
}
