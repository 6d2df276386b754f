//! The backend for a node running a real openMosix kernel: everything comes from and
//! goes to /proc/hpc and /proc/PID as HOWTO chapter 8 lays them out (tables 8-1 to 8-5
//! and the cluster mask of 8.4), under a configurable proc root so that tests can point
//! it at a fixture tree.
//!
//! Files it reads and writes, relative to the root (normally `/proc`):
//!
//! - `hpc/admin/{block,bring,expel,lstay,mospe,nomfs,quiet,stay,speed,decay-interval,
//!   slow-decay,fast-decay,overheads,gateways}`: flat files holding a number (but
//!   `overheads`, which is tuning text). `config` is binary (written by `setpe`) and is
//!   never touched.
//! - `hpc/nodes/ID/{cpus,load,mem,rmem,speed,status,tmem,util}`: per-node figures;
//!   memory in bytes, `util` in percent.
//! - `hpc/decay/{clear,cpujob,iojob,slow,fast}`: written with `1`.
//! - `hpc/remote/from`: the home node of a guest process (only [`KernelBackend::remote_from`]).
//! - `PID/{cantmove,goto,lock,nmigs,where,migfilter,mignodes,migpolicy}` beside the
//!   ordinary Linux `stat`, `status`, `cmdline` and `comm`, which [`ProcFs`] reads.
//!   `lock` (`1`/`0`), `migfilter` (`1`/`0`), `mignodes` (decimal), `migpolicy` and
//!   `goto` (a node id, [`KernelBackend::migrate`]) are written.
//!
//! Missing optional files give their defaults (a switch is off, speed 1000, decay
//! interval 1, slow 975, fast 926, a process is local, unlocked and unmasked); a number
//! file holding something else is an [`ErrorKind::Io`] error naming the file and its
//! content.

use std::fmt::Display;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::procfs::{OpenMosixFields, ProcFs, ProcStat};
use super::{Backend, Result, invalid, syscalls};
use openmosix_hpc::model::{
    AdminChange, AdminState, MapNode, MigMask, NodeId, NodeInfo, NodeStatus, ProcInfo, RunOptions,
};
use openmosix_hpc::protocol::{AgentError, ErrorKind, Started, TuneInfo};

/// The backend of a node with an openMosix kernel.
#[derive(Debug, Clone)]
pub struct KernelBackend {
    root: PathBuf,
    procfs: ProcFs,
    /// `hpc/admin/mospe` as read by [`KernelBackend::open`]; used when a later read fails.
    node_id: NodeId,
}

/// An I/O error on `path`, naming it. A missing file of /proc/hpc is an `Io` error, not
/// the `NoSuchProcess` that [`AgentError::io`] makes of every `NotFound`.
fn io_error(action: &str, path: &Path, e: &std::io::Error) -> AgentError {
    let mut err = AgentError::io(format!("{action} {}", path.display()), e);
    if err.kind == ErrorKind::NoSuchProcess {
        err.kind = ErrorKind::Io;
    }
    err
}

/// The content of `path`, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("reading", path, &e)),
    }
}

/// The content of `path`, which must exist.
fn read_required(path: &Path) -> Result<String> {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| io_error("reading", path, &e))
}

/// Parses the number a flat file holds (surrounding white space allowed).
fn parse_num<T: FromStr>(path: &Path, text: &str) -> Result<T> {
    text.trim().parse().map_err(|_| garbage(path, text))
}

fn garbage(path: &Path, text: &str) -> AgentError {
    AgentError::new(
        ErrorKind::Io,
        format!(
            "{} holds {:?}, which is not a number",
            path.display(),
            text.trim()
        ),
    )
}

/// The number in `path`, `default` when the file is missing.
fn num_or<T: FromStr>(path: &Path, default: T) -> Result<T> {
    match read_optional(path)? {
        Some(text) => parse_num(path, &text),
        None => Ok(default),
    }
}

/// The number in `path`, which must exist.
fn num_required<T: FromStr>(path: &Path) -> Result<T> {
    parse_num(path, &read_required(path)?)
}

/// A flag file: any non-zero number is on; a missing file is off.
fn flag(path: &Path) -> Result<bool> {
    Ok(num_or::<i64>(path, 0)? != 0)
}

/// A percentage, with or without a trailing `%`.
fn percent(path: &Path) -> Result<f64> {
    let text = read_required(path)?;
    let t = text.trim();
    t.strip_suffix('%')
        .unwrap_or(t)
        .trim()
        .parse()
        .map_err(|_| garbage(path, &text))
}

/// `mignodes`: a bit list, in decimal or in hex with a `0x` prefix; missing = 0.
fn bit_list(path: &Path) -> Result<u64> {
    let Some(text) = read_optional(path)? else {
        return Ok(0);
    };
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).map_err(|_| garbage(path, &text)),
        None => parse_num(path, &text),
    }
}

/// Writes `value` to an existing file, as `echo -n VALUE > FILE` does; the file is not
/// created (files under /proc cannot be).
fn write_value(path: &Path, value: impl Display) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_error("writing", path, &e))?;
    file.write_all(value.to_string().as_bytes())
        .map_err(|e| io_error("writing", path, &e))
}

impl KernelBackend {
    /// Whether `root` (a proc root, normally `/proc`) belongs to an openMosix kernel:
    /// `<root>/hpc/admin` exists.
    pub fn detect(root: impl AsRef<Path>) -> bool {
        root.as_ref().join("hpc").join("admin").is_dir()
    }

    /// Opens the backend on the proc root `root` (normally `/proc`). Fails when there is
    /// no `<root>/hpc` (not an openMosix kernel) or `hpc/admin/mospe` cannot be read.
    pub fn open(root: impl Into<PathBuf>) -> Result<KernelBackend> {
        let root = root.into();
        let hpc = root.join("hpc");
        if !hpc.is_dir() {
            return Err(AgentError::new(
                ErrorKind::Unsupported,
                format!(
                    "no /proc/hpc under {}: not an openMosix kernel",
                    root.display()
                ),
            ));
        }
        let node_id = num_required(&hpc.join("admin").join("mospe"))?;
        Ok(KernelBackend {
            procfs: ProcFs::new(&root),
            root,
            node_id,
        })
    }

    /// The proc root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn hpc(&self, rel: &str) -> PathBuf {
        self.root.join("hpc").join(rel)
    }

    fn admin_file(&self, name: &str) -> PathBuf {
        self.hpc("admin").join(name)
    }

    fn node_file(&self, id: NodeId, name: &str) -> PathBuf {
        self.hpc("nodes").join(id.to_string()).join(name)
    }

    /// This node's id: `hpc/admin/mospe` read afresh (`setpe` may change it), or the
    /// value read at open when that fails.
    fn mospe(&self) -> NodeId {
        num_required(&self.admin_file("mospe")).unwrap_or(self.node_id)
    }

    /// The raw `hpc/nodes/ID/status` number.
    fn raw_status(&self, id: NodeId) -> Result<u64> {
        num_required(&self.node_file(id, "status"))
    }

    /// The figures of node `id` from `hpc/nodes/ID/*` (what `mosctl getload`,
    /// `getspeed`, `getmem`, `getfree`, `getutil` and `status` show).
    ///
    /// Status mapping: the kernel's `status` file holds a word of flag bits; this backend
    /// only tells 0 (the node is down or not in the pool) from anything else (up). 0 gives
    /// [`NodeStatus::Off`]; a non-zero status gives [`NodeStatus::Up`], or
    /// [`NodeStatus::Blocked`] when `id` is this node and `hpc/admin/block` is set (the
    /// block switch of other nodes is not visible here).
    pub fn node_info(&self, id: NodeId) -> Result<NodeInfo> {
        let file = |name| self.node_file(id, name);
        let status = if self.raw_status(id)? == 0 {
            NodeStatus::Off
        } else if id == self.mospe() && flag(&self.admin_file("block"))? {
            NodeStatus::Blocked
        } else {
            NodeStatus::Up
        };
        Ok(NodeInfo {
            id,
            cpus: num_required(&file("cpus"))?,
            speed: num_required(&file("speed"))?,
            load: num_required(&file("load"))?,
            util: percent(&file("util"))?,
            mem: num_required(&file("mem"))?,
            rmem: num_required(&file("rmem"))?,
            tmem: num_required(&file("tmem"))?,
            status,
        })
    }

    /// The home node of the process reading `hpc/remote/from` (table 8-5), `None` when
    /// the file is missing. The kernel answers for the calling process, so for the agent
    /// this is only meaningful when the agent itself runs as a guest.
    pub fn remote_from(&self) -> Result<Option<NodeId>> {
        let path = self.hpc("remote/from");
        read_optional(&path)?
            .map(|text| parse_num(&path, &text))
            .transpose()
    }

    /// One process: [`ProcFs`] for the Linux files, then the openMosix ones (missing
    /// files give a local, unlocked, unmasked process).
    fn proc_info(&self, st: ProcStat) -> Result<ProcInfo> {
        let me = self.mospe();
        let dir = self.root.join(st.info.pid.to_string());
        let file = |name: &str| dir.join(name);
        let where_raw: NodeId = num_or(&file("where"), 0)?;
        let cantmove = read_optional(&file("cantmove"))?
            .map(|t| t.trim().to_owned())
            .unwrap_or_default();
        let mask = MigMask {
            migfilter: flag(&file("migfilter"))?,
            mignodes: bit_list(&file("mignodes"))?,
            migpolicy: num_or(&file("migpolicy"), 0)?,
        };
        let om = OpenMosixFields {
            // `where` is 0 while the process runs at home.
            where_: if where_raw == 0 { me } else { where_raw },
            // Processes under /proc/PID are local ones: their home is this node.
            home: me,
            home_pid: st.info.pid,
            nmigs: num_or(&file("nmigs"), 0)?,
            lock: flag(&file("lock"))?,
            cantmove,
            mask,
            run: None,
            // The kernel balances its own processes: nothing here is the balancer's.
            candidate: false,
            auto_moved: false,
        };
        Ok(st.into_info(om))
    }

    /// Whether process `pid` may go to node `to` by `goto`: the checks of
    /// [`Backend::can_migrate`] (cantmove, lock, cluster mask, lstay), seen from a kernel
    /// where a process may run away from home: going home is always allowed, and the
    /// target must be in the map and up. Returns the process.
    pub fn check_goto(&mut self, pid: i32, to: NodeId) -> Result<ProcInfo> {
        let p = self.proc(pid)?;
        let me = self.mospe();
        let no = |why: String| {
            Err(AgentError::new(
                ErrorKind::CannotMigrate,
                format!("process {pid} cannot move: {why}"),
            ))
        };
        if to == 0 {
            return Err(invalid("0 is not a node id".into()));
        }
        if p.where_ == to {
            return no(format!("it already runs on node {to}"));
        }
        let home = to == p.home;
        if !p.cantmove.is_empty() {
            return no(p.cantmove);
        }
        if p.lock && !home {
            return no("it is locked to its home node".into());
        }
        if !home && !p.mask.allows(to) {
            return no(format!("its cluster mask does not allow node {to}"));
        }
        if !home && p.home == me && self.admin()?.lstay {
            return no("lstay is set: local processes stay on this node".into());
        }
        let nodes = self.hpc("nodes");
        if nodes.is_dir() {
            if !nodes.join(to.to_string()).is_dir() {
                return Err(invalid(format!(
                    "node {to} is not in this node's cluster map"
                )));
            }
            if self.raw_status(to).is_ok_and(|s| s == 0) {
                return no(format!("node {to} is down or out of the pool"));
            }
        }
        Ok(p)
    }

    /// Migrates process `pid` to node `to` as openMosix did: after [`Self::check_goto`],
    /// writes the node id to `PID/goto` (HOWTO table 8-5); the kernel then moves it.
    pub fn migrate(&mut self, pid: i32, to: NodeId) -> Result<()> {
        self.check_goto(pid, to)?;
        let path = self.root.join(pid.to_string()).join("goto");
        write_value(&path, to)
    }

    /// Writes `value` to a file of the freshly started process `pid`. A process that has
    /// already exited (its directory is gone) is not an error.
    fn write_started(&self, pid: i32, name: &str, value: impl Display) -> Result<()> {
        let dir = self.root.join(pid.to_string());
        match write_value(&dir.join(name), value) {
            Err(_) if !dir.exists() => Ok(()),
            Err(e) => Err(AgentError::new(
                e.kind,
                format!("started process {pid}, but {}", e.message),
            )),
            Ok(()) => Ok(()),
        }
    }
}

impl Backend for KernelBackend {
    fn kind(&self) -> &'static str {
        "kernel"
    }

    fn node_id(&self) -> NodeId {
        self.mospe()
    }

    fn node(&mut self) -> Result<NodeInfo> {
        self.node_info(self.mospe())
    }

    fn admin(&mut self) -> Result<AdminState> {
        let switch = |name| flag(&self.admin_file(name));
        let defaults = AdminState::default();
        Ok(AdminState {
            stay: switch("stay")?,
            lstay: switch("lstay")?,
            block: switch("block")?,
            quiet: switch("quiet")?,
            nomfs: switch("nomfs")?,
            speed: num_or(&self.admin_file("speed"), defaults.speed)?,
            decay_interval: num_or(&self.admin_file("decay-interval"), defaults.decay_interval)?,
            slow_decay: num_or(&self.admin_file("slow-decay"), defaults.slow_decay)?,
            fast_decay: num_or(&self.admin_file("fast-decay"), defaults.fast_decay)?,
            // Off when this node's status says it is down; not off when it cannot be read.
            off: self.raw_status(self.mospe()).is_ok_and(|s| s == 0),
            yard: defaults.yard,
        })
    }

    /// Writes the admin files. `Off` is refused: taking a node out of the pool means
    /// rewriting the binary `hpc/admin/config`, which is `setpe`'s job.
    fn set_admin(&mut self, change: &AdminChange) -> Result<AdminState> {
        super::validate_change(change)?;
        match *change {
            AdminChange::Switch { switch, on } => {
                write_value(&self.admin_file(switch.name()), u8::from(on))?;
            }
            AdminChange::Speed { speed } => write_value(&self.admin_file("speed"), speed)?,
            AdminChange::Decay {
                interval,
                slow,
                fast,
            } => {
                write_value(&self.admin_file("decay-interval"), interval)?;
                if let Some(s) = slow {
                    write_value(&self.admin_file("slow-decay"), s)?;
                }
                if let Some(f) = fast {
                    write_value(&self.admin_file("fast-decay"), f)?;
                }
            }
            AdminChange::Yard { .. } => {
                return Err(AgentError::new(
                    ErrorKind::Unsupported,
                    "on an openMosix kernel the yardstick is the kernel's: run `mosctl \
                     setyard` on the node"
                        .to_owned(),
                ));
            }
            AdminChange::Off { off } => {
                let how = if off {
                    "run `setpe -off` on the node"
                } else {
                    "run `setpe -w -f /etc/hpc.map` on the node"
                };
                return Err(AgentError::new(
                    ErrorKind::Unsupported,
                    format!(
                        "on an openMosix kernel the agent does not write the binary \
                         /proc/hpc/admin/config: {how}"
                    ),
                ));
            }
        }
        self.admin()
    }

    fn tune(&mut self) -> Result<TuneInfo> {
        let admin = self.admin()?;
        let tune = read_optional(&self.admin_file("overheads"))?
            .map(|t| t.trim_end().to_owned())
            .unwrap_or_default();
        Ok(TuneInfo {
            tune,
            yard: format!("speed {} (PIII/1GHz = 1000)", admin.speed),
            decay: format!(
                "interval {}, slow {}, fast {}",
                admin.decay_interval, admin.slow_decay, admin.fast_decay
            ),
        })
    }

    /// Every numeric directory of the root that has a `stat` file. A process that
    /// vanishes while it is read is left out; any other error fails the listing.
    fn procs(&mut self) -> Result<Vec<ProcInfo>> {
        let mut out = Vec::new();
        for pid in self.procfs.pids()? {
            let info = self.procfs.stat(pid).and_then(|st| self.proc_info(st));
            match info {
                Ok(info) => out.push(info),
                Err(e) if e.kind == ErrorKind::NoSuchProcess => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn proc(&mut self, pid: i32) -> Result<ProcInfo> {
        super::process_id(pid)?;
        let st = self.procfs.stat(pid)?;
        self.proc_info(st)
    }

    /// Starts the program, then sets it up as `mosrun` did, through the new process's
    /// files: `runon N` writes N to `PID/goto`, and `nomig`, `runhome` and `runon` write
    /// `1` to `PID/lock`.
    ///
    /// Approximation: `cpujob`, `iojob`, `slowdecay` and `fastdecay` write `1` to
    /// `hpc/decay/{cpujob,iojob,slow,fast}` after the start. On a real kernel those files
    /// act on the *calling* process (mosrun wrote them before exec'ing the job, which
    /// then inherited the setting), so here they mark the agent, not the job. `nodecay`
    /// has no /proc/hpc file and is not applied.
    fn run(&mut self, argv: &[Vec<u8>], options: &RunOptions) -> Result<Started> {
        let me = self.mospe();
        if let Some(target) = options.runon.filter(|&n| n != me) {
            let nodes = self.hpc("nodes");
            if nodes.is_dir() && !nodes.join(target.to_string()).is_dir() {
                return Err(invalid(format!(
                    "runon {target}: node {target} is not in this node's cluster map"
                )));
            }
        }
        let pid = syscalls::spawn_detached(argv)?;
        let pid = i32::try_from(pid).map_err(|_| invalid(format!("pid {pid} out of range")))?;
        if let Some(target) = options.runon.filter(|&n| n != me) {
            self.write_started(pid, "goto", target)?;
        }
        if options.locks() {
            self.write_started(pid, "lock", 1)?;
        }
        for (on, name) in [
            (options.cpujob, "cpujob"),
            (options.iojob, "iojob"),
            (options.slowdecay, "slow"),
            (options.fastdecay, "fast"),
        ] {
            if on {
                write_value(&self.hpc("decay").join(name), 1)?;
            }
        }
        Ok(Started { pid, node: me })
    }

    /// Writes `1` or `0` to `PID/lock`.
    fn set_lock(&mut self, pid: i32, lock: bool) -> Result<ProcInfo> {
        let st = super::changeable(&self.procfs, pid)?;
        write_value(
            &self.root.join(pid.to_string()).join("lock"),
            u8::from(lock),
        )?;
        self.proc_info(st)
    }

    /// Writes `migfilter`, `mignodes` (decimal) and `migpolicy`. The filter is switched
    /// on last and off first, so the kernel never applies a half-written mask.
    fn set_mask(&mut self, pid: i32, mask: &MigMask) -> Result<ProcInfo> {
        super::validate_mask(mask)?;
        let st = super::changeable(&self.procfs, pid)?;
        let dir = self.root.join(pid.to_string());
        if !mask.migfilter {
            write_value(&dir.join("migfilter"), 0)?;
        }
        write_value(&dir.join("mignodes"), mask.mignodes)?;
        write_value(&dir.join("migpolicy"), mask.migpolicy)?;
        if mask.migfilter {
            write_value(&dir.join("migfilter"), 1)?;
        }
        self.proc_info(st)
    }

    /// [`KernelBackend::migrate`].
    fn goto(&mut self, pid: i32, to: NodeId) -> Result<()> {
        self.migrate(pid, to)
    }

    /// Writes `1` to `hpc/admin/expel`. The kernel does not report how many guests it
    /// sends home, so this returns 0.
    fn expel(&mut self) -> Result<u32> {
        write_value(&self.admin_file("expel"), 1)?;
        Ok(0)
    }

    /// Writes `1` to `hpc/admin/bring`. The kernel does not report how many processes
    /// it brings home, so this returns 0.
    fn bring(&mut self) -> Result<u32> {
        write_value(&self.admin_file("bring"), 1)?;
        Ok(0)
    }

    fn set_map(&mut self, _nodes: &[MapNode]) -> Result<()> {
        Err(AgentError::new(
            ErrorKind::Unsupported,
            "on an openMosix kernel the map is installed with setpe -w",
        ))
    }

    /// The node ids of `hpc/nodes/`, sorted; the kernel does not show their addresses,
    /// so `addresses` is empty. No `hpc/nodes` gives an empty map.
    fn map(&mut self) -> Result<Vec<MapNode>> {
        let dir = self.hpc("nodes");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("listing", &dir, &e)),
        };
        let mut ids: Vec<NodeId> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids
            .into_iter()
            .map(|id| MapNode {
                id,
                addresses: Vec::new(),
            })
            .collect())
    }
}
