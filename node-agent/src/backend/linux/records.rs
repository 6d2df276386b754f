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
    procfs.stat(pid).is_ok_and(|s| s.starttime == starttime)
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
    /// Records a process that arrived here (as `pid`) from node `from`: a guest, or a
    /// process of this node back home.
    pub(super) fn record_arrival(
        &mut self,
        pid: i32,
        from: NodeId,
        home: NodeId,
        home_pid: i32,
        nmigs: u32,
        carried: &Carried,
    ) -> Result<()> {
        let _lock = self.begin()?;
        self.prune();
        let starttime = self.procfs.stat(pid).map(|s| s.starttime).unwrap_or(0);
        let mut lock = None;
        if home == self.node_id {
            // Back home: it is a local process again, a job with its options as before.
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
            if carried.candidate && !unlocked_job {
                lock = Some(false);
            }
        } else {
            self.state.guests.retain(|g| g.pid != pid);
            self.state.guests.push(GuestRecord {
                pid,
                starttime,
                from,
                home,
                home_pid,
                nmigs,
                run: carried.run.clone(),
                candidate: carried.candidate,
                auto: carried.auto,
            });
        }
        let mask = (carried.mask != MigMask::default()).then_some(carried.mask);
        self.state.procs.retain(|r| r.pid != pid);
        if lock.is_some() || mask.is_some() {
            self.state.procs.push(ProcRecord {
                pid,
                starttime,
                lock,
                mask,
            });
        }
        self.save()
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
