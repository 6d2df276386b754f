//! The node side: where the figures come from and where the switches go.
//!
//! Two backends implement [`Backend`]: [`linux::LinuxBackend`] for any modern Linux node
//! (figures from /proc, switches in the agent's state file) and
//! [`kernel::KernelBackend`] for a node with an openMosix kernel (/proc/hpc as HOWTO
//! chapter 8 lays it out, under a configurable root).

pub mod cantmove;
pub mod criu;
pub mod events;
pub mod handoff;
pub mod kernel;
pub mod lazy;
pub mod linux;
pub mod migration;
pub mod movelock;
pub mod procfs;
pub mod state;
pub mod stream;
pub mod syscalls;

use openmosix_hpc::model::{
    AdminChange, AdminState, MapNode, MigMask, NodeId, NodeInfo, ProcInfo, RunOptions, Signal,
};
use openmosix_hpc::protocol::{AgentError, Carried, ErrorKind, Started, TuneInfo};

/// Result of a backend call.
pub type Result<T> = std::result::Result<T, AgentError>;

/// What a node agent can be asked. Calls are short and synchronous (file reads and
/// syscalls); the server makes them in tokio's blocking threads, never on the thread
/// that reads requests and writes answers.
pub trait Backend: Send {
    /// `linux` or `kernel`.
    fn kind(&self) -> &'static str;
    /// This node's openMosix id.
    fn node_id(&self) -> NodeId;
    /// Called every decay interval by the server, to update the decayed load.
    fn tick(&mut self) {}
    /// The node's figures.
    fn node(&mut self) -> Result<NodeInfo>;
    /// The admin switches.
    fn admin(&mut self) -> Result<AdminState>;
    /// Applies one admin change and returns the new state.
    fn set_admin(&mut self, change: &AdminChange) -> Result<AdminState>;
    /// `gettune`, `getyard`, `getdecay`.
    fn tune(&mut self) -> Result<TuneInfo>;
    /// Every process of the node.
    fn procs(&mut self) -> Result<Vec<ProcInfo>>;
    /// One process.
    fn proc(&mut self, pid: i32) -> Result<ProcInfo>;
    /// Sends a signal; init (pid 1) and the agent itself are refused.
    fn signal(&mut self, pid: i32, signal: Signal) -> Result<()> {
        signalable(pid)?;
        syscalls::send_signal(pid, signal)
    }
    /// Sets a nice value.
    fn renice(&mut self, pid: i32, nice: i32) -> Result<()> {
        syscalls::renice(pid, nice)
    }
    /// Locks process `pid` to this node or unlocks it (`/proc/PID/lock`, HOWTO table
    /// 8-5); returns the process as it is now. Unlocking wins over the lock a job got
    /// from `nomig`, `runhome` or `runon`. Kernel threads and the agent are refused.
    fn set_lock(&mut self, pid: i32, lock: bool) -> Result<ProcInfo>;
    /// Sets the cluster mask of process `pid` (`migfilter`, `mignodes`, `migpolicy`,
    /// HOWTO 8.4); returns the process as it is now. Kernel threads and the agent are
    /// refused.
    fn set_mask(&mut self, pid: i32, mask: &MigMask) -> Result<ProcInfo>;
    /// Asks the kernel to move process `pid` to node `to` (`/proc/PID/goto`, HOWTO table
    /// 8-5) after the checks of [`Backend::can_migrate`]. Only an openMosix kernel does
    /// that; elsewhere processes move with CRIU, driven by the client.
    fn goto(&mut self, _pid: i32, _to: NodeId) -> Result<()> {
        Err(AgentError::new(
            ErrorKind::Unsupported,
            "on this backend processes move with criu: use migrate",
        ))
    }
    /// Starts a program detached from the session.
    fn run(&mut self, argv: &[Vec<u8>], options: &RunOptions) -> Result<Started>;
    /// Sends every guest home; returns how many.
    fn expel(&mut self) -> Result<u32>;
    /// Brings every migrated process home; returns how many.
    fn bring(&mut self) -> Result<u32>;
    /// Installs the cluster map.
    fn set_map(&mut self, nodes: &[MapNode]) -> Result<()>;
    /// The installed cluster map.
    fn map(&mut self) -> Result<Vec<MapNode>>;

    /// Pre-flight of a migration of `pid` to node `to`: the process if it may go, else a
    /// `cannot_migrate` error saying why. Nothing is touched.
    fn can_migrate(&mut self, pid: i32, to: NodeId) -> Result<ProcInfo> {
        self.movable(pid, Some(to))
    }

    /// The checks of [`Backend::can_migrate`], the target's only when `to` is known: what
    /// the agent re-checks itself before `predump` and `dump`, whoever asks.
    fn movable(&mut self, pid: i32, to: Option<NodeId>) -> Result<ProcInfo> {
        process_id(pid)?;
        let p = self.proc(pid)?;
        let admin = self.admin()?;
        let me = self.node_id();
        let no = |why: String| {
            Err(AgentError::new(
                ErrorKind::CannotMigrate,
                format!("process {pid} cannot move: {why}"),
            ))
        };
        if to == Some(me) {
            return no(format!("it already runs on node {me}"));
        }
        if !p.cantmove.is_empty() {
            return no(p.cantmove);
        }
        if p.lock {
            return no("it is locked to this node".into());
        }
        if let Some(to) = to.filter(|&to| !p.mask.allows(to)) {
            return no(format!("its cluster mask does not allow node {to}"));
        }
        if admin.lstay && p.home == me {
            return no("lstay is set: local processes stay on this node".into());
        }
        Ok(p)
    }

    /// Whether this node takes guests now; the reason when not.
    fn accepts_guests(&mut self) -> Result<()> {
        let admin = self.admin()?;
        let me = self.node_id();
        if admin.off {
            return Err(AgentError::new(
                ErrorKind::CannotMigrate,
                format!("node {me} is out of the pool (setpe -off)"),
            ));
        }
        if admin.block {
            return Err(AgentError::new(
                ErrorKind::CannotMigrate,
                format!("node {me} blocks arriving guests"),
            ));
        }
        Ok(())
    }

    /// Records a process that arrived here (as `pid`) from node `from`, with the settings
    /// it `carried` along.
    fn arrived(
        &mut self,
        _pid: i32,
        _from: NodeId,
        _home: NodeId,
        _home_pid: i32,
        _nmigs: u32,
        _carried: &Carried,
    ) -> Result<()> {
        Err(unsupported_here())
    }

    /// Records that process `pid` left for node `to` as `new_pid`.
    fn departed(&mut self, _pid: i32, _to: NodeId, _new_pid: i32) -> Result<()> {
        Err(unsupported_here())
    }

    /// Records where a process whose home is here runs now.
    fn whereabouts(&mut self, _home_pid: i32, _at: Option<(NodeId, i32)>) -> Result<()> {
        Err(unsupported_here())
    }

    /// Processes whose home is here and that run elsewhere: `(home_pid, node, pid)`.
    fn emigrants(&mut self) -> Result<Vec<(i32, NodeId, i32)>> {
        Ok(Vec::new())
    }
}

fn unsupported_here() -> AgentError {
    AgentError::new(
        ErrorKind::Unsupported,
        "this backend does not migrate with criu",
    )
}

fn invalid(msg: String) -> AgentError {
    AgentError::new(ErrorKind::InvalidArgument, msg)
}

/// Refuses a pid that cannot name a process (0 or below).
fn process_id(pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(invalid(format!("{pid} is not a process id")));
    }
    Ok(())
}

/// Refuses the processes no signal of the agent may reach: init and the agent itself.
fn signalable(pid: i32) -> Result<()> {
    let refuse = |why: String| Err(AgentError::new(ErrorKind::PermissionDenied, why));
    if pid == 1 {
        return refuse("process 1 is the node's init: the agent does not signal it".into());
    }
    if u32::try_from(pid).ok() == Some(std::process::id()) {
        return refuse(format!(
            "process {pid} is the openMosix agent itself: it does not signal itself"
        ));
    }
    Ok(())
}

/// The process `pid` if its lock and mask may be changed: it exists and is neither a
/// kernel thread nor the agent.
fn changeable(procfs: &procfs::ProcFs, pid: i32) -> Result<procfs::ProcStat> {
    process_id(pid)?;
    let st = procfs.stat(pid)?;
    let refuse = |why: String| Err(AgentError::new(ErrorKind::PermissionDenied, why));
    if st.kthread {
        return refuse(format!(
            "process {pid} is a kernel thread: it never migrates"
        ));
    }
    if u32::try_from(pid).ok() == Some(std::process::id()) {
        return refuse(format!(
            "process {pid} is the openMosix agent itself: it never migrates"
        ));
    }
    Ok(st)
}

/// Checks a cluster mask: the policy is 0 (DENY) or 1 (ALLOW).
pub fn validate_mask(mask: &MigMask) -> Result<()> {
    if mask.migpolicy > 1 {
        return Err(invalid(format!(
            "migpolicy {} is neither 0 (DENY) nor 1 (ALLOW)",
            mask.migpolicy
        )));
    }
    Ok(())
}

/// The processor types `mosctl setyard` knows, with their speed in PIII/1GHz units.
pub const PROCESSORS: &[(&str, u32)] = &[("piii", 1000), ("pentium3", 1000)];

/// Resolves a `setyard` word for a node whose switches are `admin`: a processor type of
/// [`PROCESSORS`], `this` (the node's own processor becomes the standard) or a speed in
/// PIII/1GHz units, 1..=1000000.
pub fn yardstick(word: &str, admin: &AdminState) -> Result<u32> {
    let word = word.trim();
    if word == "this" {
        let own = u64::from(admin.speed) * u64::from(admin.yard.max(1)) / 1000;
        return Ok(u32::try_from(own.clamp(1, 1_000_000)).unwrap_or(1_000_000));
    }
    if let Some((_, speed)) = PROCESSORS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
    {
        return Ok(*speed);
    }
    match word.parse::<u64>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n as u32),
        Ok(n) => Err(invalid(format!(
            "yardstick speed {n} is outside 1..1000000"
        ))),
        Err(_) => {
            let known: Vec<&str> = PROCESSORS.iter().map(|(n, _)| *n).collect();
            Err(invalid(format!(
                "{word:?} is not a yardstick: give a processor type ({}), `this` or a \
                 speed (PIII/1GHz = 1000)",
                known.join(", ")
            )))
        }
    }
}

/// Checks the ranges of an admin change, the same for every backend: speed
/// 1..=1_000_000, decay interval 1..=3600 s, decay factors 1..=999 thousandths.
pub fn validate_change(change: &AdminChange) -> Result<()> {
    match *change {
        AdminChange::Speed { speed } if !(1..=1_000_000).contains(&speed) => {
            Err(invalid(format!("speed {speed} is outside 1..1000000")))
        }
        AdminChange::Yard { ref yard } if yard.trim().is_empty() => Err(invalid(
            "setyard needs a processor type, `this` or a speed".to_owned(),
        )),
        AdminChange::Decay { interval, .. } if !(1..=3600).contains(&interval) => Err(invalid(
            format!("decay interval {interval} s is outside 1..3600"),
        )),
        AdminChange::Decay { slow, fast, .. } => {
            for f in [slow, fast].into_iter().flatten() {
                if !(1..=999).contains(&f) {
                    return Err(invalid(format!("decay factor {f} is outside 1..999")));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
