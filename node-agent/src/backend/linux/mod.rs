//! The backend for any modern Linux node: figures from /proc, admin switches in the
//! agent's state file, speed measured once by a short calibration.
//!
//! - `figures`: speed, load and utilisation, measured by the agent itself;
//! - `admin`: the admin switches as the state file keeps them;
//! - `procs`: processes as openMosix shows them, and their locks and masks;
//! - `listing`: what is kept of each process between listings, read again only when it
//!   may have changed;
//! - `records`: what the state file remembers of jobs and of processes that moved.

mod admin;
mod figures;
mod listing;
mod procs;
mod records;

use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;

use super::cantmove::Tables;
use super::procfs::ProcFs;
use super::state::{AgentState, GuestRecord, StateFile};
use super::{Backend, Result};
use openmosix_hpc::model::{
    AdminChange, AdminState, MapNode, MigMask, NodeId, NodeInfo, ProcInfo, RunOptions,
};
use openmosix_hpc::protocol::{AgentError, Carried, ErrorKind, Started, TuneInfo};

pub use figures::calibrate;

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
    /// What is kept of each process between listings.
    listing: listing::Listing,
    /// The stat files kept open between listings.
    stats: super::procfs::StatReader,
    /// The node-wide tables of the last listing (refreshed by each).
    tables: Tables,
    /// When the last listing was read, and how many of its processes were runnable
    /// (what the load's decay counts, so the tick need not read them again).
    listed: Option<(std::time::Instant, u32)>,
    /// The pids of the last listing, with the last pid given in this PID namespace when
    /// /proc was last read whole and when that was: while no pid was given since, the
    /// next listing needs no look at the /proc folder (`None` when the /proc read is
    /// not the agent's own namespace's).
    pids: Option<(i32, std::time::Instant, Vec<i32>)>,
    /// Whether the /proc read is of the agent's own PID namespace.
    own_proc: bool,
}

/// The last pid given in the agent's PID namespace, and when /proc was read whole.
type LastPid = (i32, std::time::Instant);

/// The longest a listing goes on from the pids of the one before without reading the
/// /proc folder.
const PIDS_REREAD: std::time::Duration = std::time::Duration::from_secs(10);

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
            listing: listing::Listing::default(),
            stats: super::procfs::StatReader::new(listing::stat_files_budget()),
            tables: Tables::default(),
            listed: None,
            pids: None,
            own_proc: false,
        };
        backend.own_proc = backend.procfs.is_own();
        backend.load = f64::from(backend.running()) * 100.0;
        backend.sample_util();
        Ok(backend)
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

    /// The pids to list, and the last pid given in this namespace with when /proc was
    /// read whole (to keep for the next listing). The /proc folder is read only when a
    /// pid was given since the listing before (a process or thread started) or
    /// [`PIDS_REREAD`] passed; otherwise the pids are those of the listing before, of
    /// which the ended ones fall out when their stat cannot be read.
    fn pids(&mut self) -> Result<(Option<LastPid>, Vec<i32>)> {
        let last = if self.own_proc {
            self.procfs.last_pid()
        } else {
            None
        };
        if let (Some(l), Some((seen, at, pids))) = (last, self.pids.as_mut())
            && l == *seen
            && at.elapsed() < PIDS_REREAD
        {
            return Ok((Some((l, *at)), std::mem::take(pids)));
        }
        let pids = self.procfs.pids()?;
        Ok((last.map(|l| (l, std::time::Instant::now())), pids))
    }

    /// Starts a change of the state: takes the file's lock (held until the returned guard
    /// is dropped) and reads the latest state, so no other agent's change is overwritten.
    fn begin(&mut self) -> Result<super::state::StateLock> {
        let lock = self.file.lock()?;
        self.state = self.file.load()?;
        self.seen = self.file.version();
        Ok(lock)
    }
}

impl Backend for LinuxBackend {
    fn kind(&self) -> &'static str {
        "linux"
    }

    fn node_id(&self) -> NodeId {
        self.node_id
    }

    fn tick(&mut self) {
        self.decay_load();
    }

    fn node(&mut self) -> Result<NodeInfo> {
        self.refresh();
        self.figures()
    }

    fn admin(&mut self) -> Result<AdminState> {
        self.refresh();
        Ok(self.state.admin.clone())
    }

    fn set_admin(&mut self, change: &AdminChange) -> Result<AdminState> {
        super::validate_change(change)?;
        let _lock = self.begin()?;
        if let AdminChange::Yard { yard } = change {
            let yard = super::yardstick(yard, &self.state.admin)?;
            admin::set_yard(&mut self.state.admin, yard);
        } else {
            admin::apply(&mut self.state.admin, change);
        }
        self.save()?;
        Ok(self.state.admin.clone())
    }

    fn tune(&mut self) -> Result<TuneInfo> {
        self.refresh();
        Ok(admin::tune(&self.state.admin))
    }

    fn procs(&mut self) -> Result<Vec<ProcInfo>> {
        self.refresh();
        let (last, pids) = self.pids()?;
        self.tables.refresh(&self.procfs);
        self.stats.retain(&pids.iter().copied().collect());
        let mut stats: Vec<_> = pids
            .into_iter()
            .filter_map(|p| self.stats.read(&self.procfs, p).ok())
            .collect();
        self.pids = last.map(|(l, at)| (l, at, stats.iter().map(|s| s.info.pid).collect()));
        let me = self.self_pid;
        let running = stats
            .iter()
            .filter(|s| s.info.state == 'R' && !s.kthread && s.info.pid != me)
            .count();
        self.listed = Some((
            std::time::Instant::now(),
            u32::try_from(running).unwrap_or(u32::MAX),
        ));
        let tables = std::mem::take(&mut self.tables);
        self.listing
            .update(&self.procfs, &mut stats, &tables, |st| {
                st.kthread || st.info.pid == me || st.info.pid == 1
            });
        let list = stats
            .into_iter()
            .map(|st| {
                let files = self.listing.files(st.info.pid);
                self.to_info(st, &tables, files)
            })
            .collect();
        self.tables = tables;
        Ok(list)
    }

    fn proc(&mut self, pid: i32) -> Result<ProcInfo> {
        super::process_id(pid)?;
        self.refresh();
        // One process, asked for by a window or before a move: read afresh, and kept.
        let st = self.procfs.stat(pid)?;
        let tables = Tables::read(&self.procfs);
        let files = (!st.kthread)
            .then(|| super::cantmove::Files::read(&self.procfs, pid, &tables, usize::MAX));
        self.listing.keep(&st, files.clone());
        Ok(self.to_info(st, &tables, files.as_ref()))
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
        self.start_job(argv, options)
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
        let lock = if home == self.node_id {
            self.back_home(pid, starttime, home_pid, carried)
        } else {
            self.add_guest(GuestRecord {
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
            None
        };
        self.keep_settings(pid, starttime, lock, carried.mask);
        self.save()
    }

    fn departed(&mut self, pid: i32, to: NodeId, new_pid: i32) -> Result<()> {
        self.record_departure(pid, to, new_pid)
    }

    fn whereabouts(&mut self, home_pid: i32, at: Option<(NodeId, i32)>) -> Result<()> {
        self.record_whereabouts(home_pid, at)
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
