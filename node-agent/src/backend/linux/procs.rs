//! Processes of a linux node as openMosix shows them: where they are from, whether
//! and why they cannot move, and the locks and cluster masks set on them.

use super::LinuxBackend;
use crate::backend::cantmove::{self, Files, Tables};
use crate::backend::procfs::{OpenMosixFields, ProcStat};
use crate::backend::state::{GuestRecord, ProcRecord, RunRecord};
use crate::backend::{Backend as _, Result};
use openmosix_hpc::model::ProcInfo;
use openmosix_hpc::protocol::{AgentError, ErrorKind};

impl LinuxBackend {
    /// The job record of process `st`, if the agent started it.
    pub(super) fn run_record(&self, st: &ProcStat) -> Option<&RunRecord> {
        self.state
            .runs
            .iter()
            .find(|r| r.pid == st.info.pid && r.starttime == st.starttime)
    }

    /// The lock and mask record of process `st`, if any.
    fn proc_record(&self, st: &ProcStat) -> Option<&ProcRecord> {
        self.state
            .procs
            .iter()
            .find(|r| r.pid == st.info.pid && r.starttime == st.starttime)
    }

    /// The guest record of process `st`, if it arrived from elsewhere.
    fn guest(&self, st: &ProcStat) -> Option<&GuestRecord> {
        self.state
            .guests
            .iter()
            .find(|g| g.pid == st.info.pid && g.starttime == st.starttime)
    }

    /// Why the process is locked, if it is: a `set_lock` wins over the `run` options.
    fn lock_reason(run: Option<&RunRecord>, rec: Option<&ProcRecord>) -> Option<String> {
        match rec.and_then(|r| r.lock) {
            Some(true) => Some("locked to this node".into()),
            Some(false) => None,
            None => run
                .filter(|r| r.options.locks())
                .map(|r| format!("locked ({})", r.options.flags().join(", "))),
        }
    }

    /// Why a process cannot move, before anyone tries: what the migration core (CRIU)
    /// cannot take along or must not move. The first reason found wins; those that need
    /// its open files are in [`cantmove`], held against `files` when they were kept (and
    /// are all there), else read now.
    fn cantmove(
        &self,
        st: &ProcStat,
        run: Option<&RunRecord>,
        rec: Option<&ProcRecord>,
        tables: &Tables,
        files: Option<&Files>,
    ) -> String {
        if st.kthread {
            "kernel thread".into()
        } else if st.info.pid == self.self_pid {
            "the openMosix agent itself".into()
        } else if st.info.pid == 1 {
            "the node's init process".into()
        } else if let Some(locked) = Self::lock_reason(run, rec) {
            locked
        } else if st.tracer_pid != 0 {
            format!("traced by process {}", st.tracer_pid)
        } else if st.info.state == 'Z' {
            "zombie".into()
        } else {
            match files.filter(|f| !f.overflow) {
                Some(f) => f.reason(st.info.pid, tables),
                None => cantmove::reason(&self.procfs, st.info.pid, tables),
            }
            .unwrap_or_default()
        }
    }

    /// Process `st` as the protocol shows it, with what this node knows of it; `files`
    /// are what its open files said, when kept ([`Files`]).
    pub(super) fn to_info(&self, st: ProcStat, tables: &Tables, files: Option<&Files>) -> ProcInfo {
        let run = self.run_record(&st);
        let rec = self.proc_record(&st);
        let guest = self.guest(&st);
        let (home, home_pid, nmigs) = guest.map_or((self.node_id, st.info.pid, 0), |g| {
            (g.home, g.home_pid, g.nmigs)
        });
        let cantmove = self.cantmove(&st, run, rec, tables, files);
        let lock = Self::lock_reason(run, rec).is_some();
        // Only the jobs the suite started, or processes someone unlocked on purpose:
        // never an arbitrary process of the node.
        let candidate = !lock
            && (run.is_some()
                || rec.is_some_and(|r| r.lock == Some(false))
                || guest.is_some_and(|g| g.candidate));
        let om = OpenMosixFields {
            where_: self.node_id,
            home,
            home_pid,
            nmigs,
            lock,
            cantmove,
            mask: rec.and_then(|r| r.mask).unwrap_or_default(),
            run: run
                .map(|r| r.options.clone())
                .or_else(|| guest.and_then(|g| g.run.clone())),
            candidate,
            auto_moved: guest.is_some_and(|g| g.auto),
        };
        st.into_info(om)
    }

    /// The process `pid` if its lock and mask may be changed by this agent: it exists,
    /// is neither a kernel thread nor the agent, and is the agent's user's (or the agent
    /// runs as root).
    pub(super) fn changeable(&self, pid: i32) -> Result<ProcStat> {
        let st = crate::backend::changeable(&self.procfs, pid)?;
        if let Some(me) = self.self_uid.filter(|&u| u != 0 && u != st.info.uid) {
            return Err(AgentError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "process {pid} belongs to uid {}, not to the agent's uid {me}",
                    st.info.uid
                ),
            ));
        }
        Ok(st)
    }

    /// Changes the record of process `st` with `f`, drops it when it holds nothing any
    /// more, saves, and returns the process as it is now.
    pub(super) fn update_record(
        &mut self,
        st: &ProcStat,
        f: impl FnOnce(&mut ProcRecord),
    ) -> Result<ProcInfo> {
        let lock = self.begin()?;
        self.prune();
        let idx = match self
            .state
            .procs
            .iter()
            .position(|r| r.pid == st.info.pid && r.starttime == st.starttime)
        {
            Some(i) => i,
            None => {
                self.state.procs.retain(|r| r.pid != st.info.pid);
                self.state.procs.push(ProcRecord {
                    pid: st.info.pid,
                    starttime: st.starttime,
                    lock: None,
                    mask: None,
                });
                self.state.procs.len() - 1
            }
        };
        f(&mut self.state.procs[idx]);
        let r = &self.state.procs[idx];
        if r.lock.is_none() && r.mask.is_none() {
            self.state.procs.remove(idx);
        }
        self.save()?;
        drop(lock);
        self.proc(st.info.pid)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::backend::linux::LinuxConfig;
    use openmosix_hpc::model::{MigMask, RunOptions, Signal};

    fn backend(state: &std::path::Path) -> LinuxBackend {
        LinuxBackend::open(&LinuxConfig {
            proc_root: "/proc".into(),
            state_dir: state.to_path_buf(),
            node_id: Some(4),
        })
        .unwrap()
    }

    #[test]
    fn lock_and_mask_overrides() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut b = backend(dir.path());
        let nomig = RunOptions {
            nomig: true,
            ..RunOptions::default()
        };
        let pid = b
            .run(&[b"sleep".to_vec(), b"30".to_vec()], &nomig)
            .unwrap()
            .pid;
        let p = b.proc(pid).unwrap();
        assert!(p.lock);
        assert_eq!(p.cantmove, "locked (nomig)");

        // Unlocking wins over nomig, and is kept in the state file.
        let p = b.set_lock(pid, false).unwrap();
        assert!(!p.lock);
        assert!(!p.cantmove.contains("locked"), "{}", p.cantmove);
        assert_eq!(b.state.procs.len(), 1);
        assert_eq!(b.state.procs[0].lock, Some(false));
        assert!(!backend(dir.path()).proc(pid).unwrap().lock);
        // Locking again is what nomig says: nothing left to record.
        let p = b.set_lock(pid, true).unwrap();
        assert!(p.lock);
        assert!(b.state.procs.is_empty());

        let mask = MigMask {
            migfilter: true,
            mignodes: 0b100,
            migpolicy: 0,
        };
        assert_eq!(b.set_mask(pid, &mask).unwrap().mask, mask);
        assert_eq!(backend(dir.path()).proc(pid).unwrap().mask, mask);
        assert_eq!(
            b.set_mask(
                pid,
                &MigMask {
                    migpolicy: 7,
                    ..mask
                }
            )
            .unwrap_err()
            .kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            b.set_mask(pid, &MigMask::default()).unwrap().mask,
            MigMask::default()
        );
        assert!(b.state.procs.is_empty());
        b.set_mask(pid, &mask).unwrap();

        // Refusals.
        let me = b.self_pid;
        let err = b.set_lock(me, true).unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied);
        assert!(err.message.contains("agent itself"), "{}", err.message);
        if b.procfs.stat(2).is_ok_and(|s| s.kthread) {
            let err = b.set_mask(2, &mask).unwrap_err();
            assert_eq!(err.kind, ErrorKind::PermissionDenied);
            assert!(err.message.contains("kernel thread"), "{}", err.message);
        }
        assert_eq!(
            b.set_lock(i32::MAX, true).unwrap_err().kind,
            ErrorKind::NoSuchProcess
        );
        assert_eq!(
            b.set_lock(0, true).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        let err = b.goto(pid, 2).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unsupported);
        assert!(err.message.contains("use migrate"), "{}", err.message);

        // Gone: the records go with it.
        b.signal(pid, Signal::Kill).unwrap();
        let t = Instant::now();
        while b.proc(pid).is_ok() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            b.set_lock(pid, true).unwrap_err().kind,
            ErrorKind::NoSuchProcess
        );
        b.prune();
        assert!(b.state.procs.is_empty() && b.state.runs.is_empty());
    }
}
