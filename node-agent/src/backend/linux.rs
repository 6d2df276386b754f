//! The backend for any modern Linux node: figures from /proc, admin switches in the
//! agent's state file, speed measured once by a short calibration.
//!
//! The openMosix load is recomputed every decay interval as
//! `load = load * d + running * 100 * (1 - d)` with `d = slow_decay / 1000`, where
//! `running` counts the runnable processes this node's /proc shows (its own PID
//! namespace on the testbed), so one process that always wants a CPU tends to 100.

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::cantmove::{self, Tables};
use super::procfs::{OpenMosixFields, ProcFs, ProcStat};
use super::state::{AgentState, Emigrant, GuestRecord, ProcRecord, RunRecord, StateFile};
use super::{Backend, Result, syscalls};
use openmosix_hpc::model::{
    AdminChange, AdminState, MapNode, MigMask, NodeId, NodeInfo, NodeStatus, ProcInfo, RunOptions,
};
use openmosix_hpc::protocol::{AgentError, Carried, ErrorKind, Started, TuneInfo};

/// Where a linux backend keeps things.
#[derive(Debug, Clone)]
pub struct LinuxConfig {
    /// The /proc root (normally `/proc`).
    pub proc_root: PathBuf,
    /// The folder of the state file.
    pub state_dir: PathBuf,
    /// The node id, if given; else the state file's, else 1.
    pub node_id: Option<NodeId>,
}

/// The linux backend.
#[derive(Debug)]
pub struct LinuxBackend {
    procfs: ProcFs,
    file: StateFile,
    state: AgentState,
    node_id: NodeId,
    cpus: u32,
    load: f64,
    last_cpu: Option<(u64, u64)>,
    util: f64,
    self_pid: i32,
    /// The agent's effective uid (owner of /proc/self), when known.
    self_uid: Option<u32>,
    /// The state file's version `state` was read from.
    seen: Option<super::state::Version>,
}

/// A 1 GHz Pentium III's score on [`calibrate`]'s loop, which sets the scale of speed
/// 1000. An estimate: what matters is that speeds of nodes compare.
const PIII_STEPS_PER_SEC: f64 = 150_000_000.0;

/// Measures this machine's speed relative to a PIII/1GHz (= 1000) with a ~50 ms
/// integer loop on one core.
pub fn calibrate() -> u32 {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut steps: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(50) {
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x ^= x >> 17;
        }
        steps += 10_000;
        std::hint::black_box(x);
    }
    let per_sec = steps as f64 / start.elapsed().as_secs_f64();
    let speed = (per_sec / PIII_STEPS_PER_SEC * 1000.0).round() as u32;
    speed.clamp(1, 1_000_000)
}

impl LinuxBackend {
    /// Opens the backend: reads (or creates) the state file and calibrates the speed the
    /// first time.
    pub fn open(config: &LinuxConfig) -> Result<LinuxBackend> {
        let procfs = ProcFs::new(&config.proc_root);
        let file = StateFile::in_dir(&config.state_dir)?;
        let guard = file.lock()?;
        let mut state = file.load()?;
        let node_id = config.node_id.or(state.node_id).unwrap_or(1);
        let mut dirty = state.node_id != Some(node_id);
        state.node_id = Some(node_id);
        if !state.speed_known {
            state.admin.speed = calibrate();
            state.speed_known = true;
            dirty = true;
        }
        if !state.stay_opt_in {
            // Automatic balancing is opt-in: a node takes part after `mosctl nostay`.
            state.admin.stay = true;
            state.stay_opt_in = true;
            dirty = true;
        }
        if dirty {
            file.save(&state)?;
        }
        drop(guard);
        let seen = file.version();
        let cpus = procfs.cpus()?;
        let self_pid = i32::try_from(std::process::id()).unwrap_or(0);
        let self_uid = std::fs::metadata("/proc/self").ok().map(|m| m.uid());
        let mut backend = LinuxBackend {
            procfs,
            file,
            state,
            node_id,
            cpus,
            load: 0.0,
            last_cpu: None,
            util: 0.0,
            self_pid,
            self_uid,
            seen,
        };
        backend.load = f64::from(backend.running()) * 100.0;
        backend.sample_util();
        Ok(backend)
    }

    /// Runnable processes in this node's /proc, not counting the agent itself.
    fn running(&self) -> u32 {
        let Ok(pids) = self.procfs.pids() else {
            return 0;
        };
        let n = pids
            .into_iter()
            .filter(|&p| p != self.self_pid)
            .filter_map(|p| self.procfs.stat(p).ok())
            .filter(|s| s.state == 'R' && !s.kthread)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn sample_util(&mut self) {
        if let Ok((busy, total, _)) = self.procfs.cpu_times() {
            let (b0, t0) = self.last_cpu.unwrap_or((0, 0));
            let dt = total.saturating_sub(t0);
            if dt > 0 {
                let u = busy.saturating_sub(b0) as f64 / dt as f64 * 100.0;
                self.util = u.clamp(0.0, 100.0);
            }
            self.last_cpu = Some((busy, total));
        }
    }

    fn save(&mut self) -> Result<()> {
        self.file.save(&self.state)?;
        self.seen = self.file.version();
        Ok(())
    }

    /// Re-reads the state file if another agent process of this node wrote it (every SSH
    /// channel has its own agent; they share the file).
    fn refresh(&mut self) {
        let now = self.file.version();
        if now.is_some() && now != self.seen {
            match self.file.load() {
                Ok(state) => {
                    self.state = state;
                    self.seen = now;
                }
                Err(e) => tracing::warn!("keeping the state read before: {e}"),
            }
        }
    }

    /// Starts a change of the state: takes the file's lock (held until the returned guard
    /// is dropped) and reads the latest state, so no other agent's change is overwritten.
    fn begin(&mut self) -> Result<super::state::StateLock> {
        let lock = self.file.lock()?;
        self.state = self.file.load()?;
        self.seen = self.file.version();
        Ok(lock)
    }

    fn run_record(&self, st: &ProcStat) -> Option<&RunRecord> {
        self.state
            .runs
            .iter()
            .find(|r| r.pid == st.pid && r.starttime == st.starttime)
    }

    fn proc_record(&self, st: &ProcStat) -> Option<&ProcRecord> {
        self.state
            .procs
            .iter()
            .find(|r| r.pid == st.pid && r.starttime == st.starttime)
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
    /// its open files are in [`cantmove`].
    fn cantmove(
        &self,
        st: &ProcStat,
        run: Option<&RunRecord>,
        rec: Option<&ProcRecord>,
        tables: &Tables,
    ) -> String {
        if st.kthread {
            "kernel thread".into()
        } else if st.pid == self.self_pid {
            "the openMosix agent itself".into()
        } else if st.pid == 1 {
            "the node's init process".into()
        } else if let Some(locked) = Self::lock_reason(run, rec) {
            locked
        } else if st.tracer_pid != 0 {
            format!("traced by process {}", st.tracer_pid)
        } else if st.state == 'Z' {
            "zombie".into()
        } else {
            cantmove::reason(&self.procfs, st.pid, tables).unwrap_or_default()
        }
    }

    /// The process `pid` if its lock and mask may be changed by this agent: it exists,
    /// is neither a kernel thread nor the agent, and is the agent's user's (or the agent
    /// runs as root).
    fn changeable(&self, pid: i32) -> Result<ProcStat> {
        if pid <= 0 {
            return Err(invalid(format!("{pid} is not a process id")));
        }
        let st = self.procfs.stat(pid)?;
        let refuse = |why: String| Err(AgentError::new(ErrorKind::PermissionDenied, why));
        if st.kthread {
            return refuse(format!(
                "process {pid} is a kernel thread: it never migrates"
            ));
        }
        if pid == self.self_pid {
            return refuse(format!(
                "process {pid} is the openMosix agent itself: it never migrates"
            ));
        }
        if let Some(me) = self.self_uid.filter(|&u| u != 0 && u != st.uid) {
            return refuse(format!(
                "process {pid} belongs to uid {}, not to the agent's uid {me}",
                st.uid
            ));
        }
        Ok(st)
    }

    /// Changes the record of process `st` with `f`, drops it when it holds nothing any
    /// more, saves, and returns the process as it is now.
    fn update_record(
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
            .position(|r| r.pid == st.pid && r.starttime == st.starttime)
        {
            Some(i) => i,
            None => {
                self.state.procs.retain(|r| r.pid != st.pid);
                self.state.procs.push(ProcRecord {
                    pid: st.pid,
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
        self.proc(st.pid)
    }

    fn guest(&self, st: &ProcStat) -> Option<&GuestRecord> {
        self.state
            .guests
            .iter()
            .find(|g| g.pid == st.pid && g.starttime == st.starttime)
    }

    /// Drops records whose process is gone.
    fn prune(&mut self) {
        let procfs = &self.procfs;
        let alive = |pid: i32, start: u64| procfs.stat(pid).is_ok_and(|s| s.starttime == start);
        self.state.runs.retain(|r| alive(r.pid, r.starttime));
        self.state.procs.retain(|r| alive(r.pid, r.starttime));
        self.state.guests.retain(|g| alive(g.pid, g.starttime));
    }

    fn to_info(&self, st: ProcStat, tables: &Tables) -> ProcInfo {
        let run = self.run_record(&st);
        let rec = self.proc_record(&st);
        let guest = self.guest(&st);
        let (home, home_pid, nmigs) =
            guest.map_or((self.node_id, st.pid, 0), |g| (g.home, g.home_pid, g.nmigs));
        let cantmove = self.cantmove(&st, run, rec, tables);
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
}

fn invalid(msg: String) -> AgentError {
    AgentError::new(ErrorKind::InvalidArgument, msg)
}

impl Backend for LinuxBackend {
    fn kind(&self) -> &'static str {
        "linux"
    }

    fn node_id(&self) -> NodeId {
        self.node_id
    }

    fn tick(&mut self) {
        let d = f64::from(self.state.admin.slow_decay.min(999)) / 1000.0;
        self.load = self.load * d + f64::from(self.running()) * 100.0 * (1.0 - d);
        self.sample_util();
    }

    fn node(&mut self) -> Result<NodeInfo> {
        self.refresh();
        let (tmem, rmem, mem) = self.procfs.meminfo()?;
        let admin = &self.state.admin;
        let status = if admin.off {
            NodeStatus::Off
        } else if admin.block {
            NodeStatus::Blocked
        } else {
            NodeStatus::Up
        };
        Ok(NodeInfo {
            id: self.node_id,
            cpus: self.cpus,
            speed: admin.speed,
            load: (self.load * 10.0).round() / 10.0,
            util: (self.util * 10.0).round() / 10.0,
            mem,
            rmem,
            tmem,
            status,
        })
    }

    fn admin(&mut self) -> Result<AdminState> {
        self.refresh();
        Ok(self.state.admin.clone())
    }

    fn set_admin(&mut self, change: &AdminChange) -> Result<AdminState> {
        super::validate_change(change)?;
        let _lock = self.begin()?;
        let admin = &mut self.state.admin;
        match *change {
            AdminChange::Switch { switch, on } => switch.set(admin, on),
            AdminChange::Speed { speed } => admin.speed = speed,
            AdminChange::Decay {
                interval,
                slow,
                fast,
            } => {
                admin.decay_interval = interval;
                if let Some(s) = slow {
                    admin.slow_decay = s;
                }
                if let Some(f) = fast {
                    admin.fast_decay = f;
                }
            }
            AdminChange::Off { off } => admin.off = off,
        }
        self.save()?;
        Ok(self.state.admin.clone())
    }

    fn tune(&mut self) -> Result<TuneInfo> {
        self.refresh();
        let a = &self.state.admin;
        Ok(TuneInfo {
            tune: "no kernel overhead parameters: the linux backend measures load itself".into(),
            yard: format!("speed {} (PIII/1GHz = 1000)", a.speed),
            decay: format!(
                "interval {} s, slow {}, fast {}",
                a.decay_interval, a.slow_decay, a.fast_decay
            ),
        })
    }

    fn procs(&mut self) -> Result<Vec<ProcInfo>> {
        self.refresh();
        let pids = self.procfs.pids()?;
        let tables = Tables::read(&self.procfs);
        Ok(pids
            .into_iter()
            .filter_map(|p| self.procfs.stat(p).ok())
            .map(|st| self.to_info(st, &tables))
            .collect())
    }

    fn proc(&mut self, pid: i32) -> Result<ProcInfo> {
        if pid <= 0 {
            return Err(invalid(format!("{pid} is not a process id")));
        }
        self.refresh();
        let st = self.procfs.stat(pid)?;
        Ok(self.to_info(st, &Tables::read(&self.procfs)))
    }

    fn set_lock(&mut self, pid: i32, lock: bool) -> Result<ProcInfo> {
        self.refresh();
        let st = self.changeable(pid)?;
        let implied = self.run_record(&st).is_some_and(|r| r.options.locks());
        // A lock the run options imply needs no record; an unlock is always recorded,
        // since it makes the process a candidate for automatic balancing.
        self.update_record(&st, |r| r.lock = (lock != implied || !lock).then_some(lock))
    }

    fn set_mask(&mut self, pid: i32, mask: &MigMask) -> Result<ProcInfo> {
        super::validate_mask(mask)?;
        let st = self.changeable(pid)?;
        let mask = *mask;
        self.update_record(&st, |r| {
            r.mask = (mask != MigMask::default()).then_some(mask);
        })
    }

    fn run(&mut self, argv: &[Vec<u8>], options: &RunOptions) -> Result<Started> {
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
            .retain(|r| procfs.stat(r.pid).is_ok_and(|s| s.starttime == r.starttime));
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

    fn expel(&mut self) -> Result<u32> {
        // Sending guests home needs their home nodes: the client does it (`mosctl expel`
        // migrates each guest home); the agent alone can only say it cannot.
        Err(AgentError::new(
            ErrorKind::Unsupported,
            "expel is carried out by the client: each guest migrates home",
        ))
    }

    fn bring(&mut self) -> Result<u32> {
        Err(AgentError::new(
            ErrorKind::Unsupported,
            "bring is carried out by the client: each emigrant migrates home",
        ))
    }

    fn arrived(
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

    fn departed(&mut self, pid: i32, to: NodeId, new_pid: i32) -> Result<()> {
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

    fn whereabouts(&mut self, home_pid: i32, at: Option<(NodeId, i32)>) -> Result<()> {
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

    fn emigrants(&mut self) -> Result<Vec<(i32, NodeId, i32)>> {
        self.refresh();
        Ok(self
            .state
            .emigrants
            .iter()
            .map(|e| (e.home_pid, e.node, e.pid))
            .collect())
    }

    fn set_map(&mut self, nodes: &[MapNode]) -> Result<()> {
        let _lock = self.begin()?;
        self.state.map = nodes.to_vec();
        self.save()
    }

    fn map(&mut self) -> Result<Vec<MapNode>> {
        self.refresh();
        if self.state.map.is_empty() {
            // No map installed: the one a discovery daemon of this node hears, if any.
            let discovered = self.file.path().parent().and_then(|dir| {
                openmosix_hpc::discovery::DiscoveryFile::read_live(dir)
                    .ok()
                    .flatten()
            });
            if let Some(found) = discovered {
                return Ok(found.to_map());
            }
        }
        Ok(self.state.map.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmosix_hpc::model::Signal;

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
