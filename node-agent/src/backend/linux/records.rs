//! What the state file of a linux node remembers about processes besides their locks
//! and masks: the jobs the agent started, the guests that arrived, and where the
//! processes that left went.

use super::LinuxBackend;
use crate::backend::procfs::ProcFs;
use crate::backend::state::{Emigrant, GuestRecord, ProcRecord, RunRecord};
use crate::backend::{Result, invalid, syscalls};
use openmosix_hpc::model::{MigMask, NodeId, RunOptions};
use openmosix_hpc::protocol::{AgentError, Carried, ErrorKind, Started};

/// Whether the process `pid` that started at `starttime` still runs (and not another
/// process that took its pid).
fn alive(procfs: &ProcFs, pid: i32, starttime: u64) -> bool {
    procfs
        .stat_only(pid)
        .is_ok_and(|s| s.starttime == starttime)
}

impl LinuxBackend {
    /// Starts a job (`mosrun`) and records it with its options.
    pub(super) fn start_job(&mut self, argv: &[Vec<u8>], options: &RunOptions) -> Result<Started> {
        if let Some(target) = options.runon.filter(|&n| n != self.node_id) {
            return Err(AgentError::new(
                ErrorKind::Unsupported,
                format!(
                    "runon {target}: start the job on node {target} itself, or migrate it there"
                ),
            ));
        }
        let pid = syscalls::spawn_detached(argv)?;
        let pid = i32::try_from(pid).map_err(|_| invalid(format!("pid {pid} out of range")))?;
        let starttime = self.procfs.stat(pid).map(|s| s.starttime).unwrap_or(0);
        let _lock = self.begin()?;
        // Forget records whose process is gone, so the file does not grow forever.
        let procfs = &self.procfs;
        self.state
            .runs
            .retain(|r| alive(procfs, r.pid, r.starttime));
        self.state.runs.push(RunRecord {
            pid,
            starttime,
            options: options.clone(),
        });
        self.save()?;
        Ok(Started {
            pid,
            node: self.node_id,
        })
    }

    /// Drops records whose process is gone.
    pub(super) fn prune(&mut self) {
        let procfs = &self.procfs;
        self.state
            .runs
            .retain(|r| alive(procfs, r.pid, r.starttime));
        self.state
            .procs
            .retain(|r| alive(procfs, r.pid, r.starttime));
        self.state
            .guests
            .retain(|g| alive(procfs, g.pid, g.starttime));
    }

    /// Records process `pid` (started at `starttime`) back home from its travels: a
    /// local process again, a job with its options as before. Returns the lock to keep:
    /// unlocked, when it moved as a candidate.
    pub(super) fn back_home(
        &mut self,
        pid: i32,
        starttime: u64,
        home_pid: i32,
        carried: &Carried,
    ) -> Option<bool> {
        self.state.emigrants.retain(|e| e.home_pid != home_pid);
        if let Some(options) = &carried.run {
            self.state.runs.retain(|r| r.pid != pid);
            self.state.runs.push(RunRecord {
                pid,
                starttime,
                options: options.clone(),
            });
        }
        // It moved, so it was unlocked: a lock its options imply stays undone.
        let unlocked_job = carried.run.as_ref().is_some_and(|r| !r.locks());
        (carried.candidate && !unlocked_job).then_some(false)
    }

    /// Records a guest, in place of any record of its pid.
    pub(super) fn add_guest(&mut self, guest: GuestRecord) {
        self.state.guests.retain(|g| g.pid != guest.pid);
        self.state.guests.push(guest);
    }

    /// Records the lock and the cluster mask an arrived process keeps (no record when it
    /// keeps neither).
    pub(super) fn keep_settings(
        &mut self,
        pid: i32,
        starttime: u64,
        lock: Option<bool>,
        mask: MigMask,
    ) {
        let mask = (mask != MigMask::default()).then_some(mask);
        self.state.procs.retain(|r| r.pid != pid);
        if lock.is_some() || mask.is_some() {
            self.state.procs.push(ProcRecord {
                pid,
                starttime,
                lock,
                mask,
            });
        }
    }

    /// Records that process `pid` left for node `to` as `new_pid`.
    pub(super) fn record_departure(&mut self, pid: i32, to: NodeId, new_pid: i32) -> Result<()> {
        let _lock = self.begin()?;
        let was_guest = self.state.guests.iter().any(|g| g.pid == pid);
        if was_guest {
            self.state.guests.retain(|g| g.pid != pid);
        } else {
            self.state.emigrants.retain(|e| e.home_pid != pid);
            self.state.emigrants.push(Emigrant {
                home_pid: pid,
                node: to,
                pid: new_pid,
            });
        }
        self.state.runs.retain(|r| r.pid != pid);
        self.state.procs.retain(|r| r.pid != pid);
        self.save()
    }

    /// Records where a process whose home is here runs now (`None`: nowhere else).
    pub(super) fn record_whereabouts(
        &mut self,
        home_pid: i32,
        at: Option<(NodeId, i32)>,
    ) -> Result<()> {
        let _lock = self.begin()?;
        self.state.emigrants.retain(|e| e.home_pid != home_pid);
        if let Some((node, pid)) = at {
            self.state.emigrants.push(Emigrant {
                home_pid,
                node,
                pid,
            });
        }
        self.save()
    }
}
