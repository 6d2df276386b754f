//! The /proc/hpc vocabulary: what a node is, what can be switched on it and what a
//! process looks like to openMosix (HOWTO chapter 8, DESIGN.md section 3).
//!
//! These types travel in the protocol, so they are plain data with serde derives and
//! no behaviour beyond small helpers.

use serde::{Deserialize, Serialize};

use crate::bytes::BytesOrText;

/// An openMosix node number. Node 0 means "this node" in openMosix output.
pub type NodeId = u32;

/// Whether a node is taking part in the cluster, as `mosctl status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// The node is up and accepts guests.
    Up,
    /// The node is up but blocks the arrival of guest processes.
    Blocked,
    /// The node was taken out of the pool (`setpe -off`).
    Off,
}

/// The figures of one node, as /proc/hpc/nodes/ID/* reports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's openMosix id.
    pub id: NodeId,
    /// Number of CPUs.
    pub cpus: u32,
    /// Speed relative to a Pentium III at 1 GHz (= 1000 here, as `mosctl getspeed` counts).
    pub speed: u32,
    /// openMosix load: the decayed average of runnable processes, times 100 (one process
    /// that always wants a CPU gives 100).
    pub load: f64,
    /// CPU utilisation in percent of all CPUs (0..=100).
    pub util: f64,
    /// Free memory as openMosix sees it (bytes): what can be given to processes without
    /// swapping, i.e. Linux's MemAvailable.
    pub mem: u64,
    /// Free memory as Linux sees it (bytes): MemFree.
    pub rmem: u64,
    /// Total memory (bytes): MemTotal.
    pub tmem: u64,
    /// Participation in the cluster.
    pub status: NodeStatus,
}

/// The admin switches of /proc/hpc/admin (HOWTO table 8-2) and the decay settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminState {
    /// `stay`: no automatic migration away from this node.
    pub stay: bool,
    /// `lstay`: local processes should stay.
    pub lstay: bool,
    /// `block`: forbid the arrival of guest processes.
    pub block: bool,
    /// `quiet`: stop collecting load-balancing information.
    pub quiet: bool,
    /// `nomfs`: MFS disabled (`false` means MFS enabled).
    pub nomfs: bool,
    /// Speed relative to a PIII/1GHz (= 1000).
    pub speed: u32,
    /// Interval at which load-balancing information is collected, in seconds.
    pub decay_interval: u32,
    /// Slow decay factor in thousandths (default 975).
    pub slow_decay: u32,
    /// Fast decay factor in thousandths (default 926).
    pub fast_decay: u32,
    /// The node was taken out of the pool (`setpe -off`).
    pub off: bool,
    /// The yardstick (`mosctl setyard`): the speed, in PIII/1GHz units (1000), of the
    /// standard processor that `speed` is measured against; `speed` 1000 means "as fast
    /// as the yardstick". 1000 by default.
    #[serde(default = "default_yard")]
    pub yard: u32,
}

/// The default yardstick: a PIII/1GHz, the unit of the calibrated speeds.
pub const DEFAULT_YARD: u32 = 1000;

fn default_yard() -> u32 {
    DEFAULT_YARD
}

impl Default for AdminState {
    fn default() -> Self {
        AdminState {
            stay: false,
            lstay: false,
            block: false,
            quiet: false,
            nomfs: false,
            speed: 1000,
            decay_interval: 1,
            slow_decay: 975,
            fast_decay: 926,
            off: false,
            yard: DEFAULT_YARD,
        }
    }
}

/// One boolean admin switch, named as `mosctl` names its "on" verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Switch {
    /// stay / nostay
    Stay,
    /// lstay / nolstay
    Lstay,
    /// block / noblock
    Block,
    /// quiet / noquiet
    Quiet,
    /// nomfs / mfs
    Nomfs,
}

impl Switch {
    /// Every switch, in `mosctl` order.
    pub const ALL: [Switch; 5] = [
        Switch::Stay,
        Switch::Lstay,
        Switch::Block,
        Switch::Quiet,
        Switch::Nomfs,
    ];

    /// The /proc/hpc/admin file (and `mosctl` verb) for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Switch::Stay => "stay",
            Switch::Lstay => "lstay",
            Switch::Block => "block",
            Switch::Quiet => "quiet",
            Switch::Nomfs => "nomfs",
        }
    }

    /// Reads the switch from an admin state.
    pub fn get(self, admin: &AdminState) -> bool {
        match self {
            Switch::Stay => admin.stay,
            Switch::Lstay => admin.lstay,
            Switch::Block => admin.block,
            Switch::Quiet => admin.quiet,
            Switch::Nomfs => admin.nomfs,
        }
    }

    /// Sets the switch in an admin state.
    pub fn set(self, admin: &mut AdminState, on: bool) {
        match self {
            Switch::Stay => admin.stay = on,
            Switch::Lstay => admin.lstay = on,
            Switch::Block => admin.block = on,
            Switch::Quiet => admin.quiet = on,
            Switch::Nomfs => admin.nomfs = on,
        }
    }
}

/// A change to the admin state, as one `admin_set` request carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum AdminChange {
    /// Turn a boolean switch on or off.
    Switch {
        /// Which switch.
        switch: Switch,
        /// The new value.
        on: bool,
    },
    /// `mosctl setspeed N`.
    Speed {
        /// New speed (1..=1_000_000).
        speed: u32,
    },
    /// `mosctl setdecay INTERVAL [SLOW FAST]`.
    Decay {
        /// Seconds between load samples (1..=3600).
        interval: u32,
        /// Slow decay factor in thousandths, if given.
        slow: Option<u32>,
        /// Fast decay factor in thousandths, if given.
        fast: Option<u32>,
    },
    /// `mosctl setyard [PROCESSOR-TYPE|this|SPEED]`: a new yardstick, as the admin
    /// typed it; the agent checks it and rescales the node's speed to it.
    Yard {
        /// A processor type the agent knows, `this` (this node's processor) or a speed
        /// in PIII/1GHz units (1..=1000000).
        yard: String,
    },
    /// `setpe -off` (true) or putting the node back into the pool (false).
    Off {
        /// Whether the node is out of the pool.
        off: bool,
    },
}

/// The cluster mask of a process (HOWTO 8.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigMask {
    /// `migfilter`: whether the mask applies at all.
    pub migfilter: bool,
    /// `mignodes`: bit (PE-1) set for node PE.
    pub mignodes: u64,
    /// `migpolicy`: 0 = DENY the marked nodes, 1 = ALLOW only the marked nodes.
    pub migpolicy: u8,
}

impl MigMask {
    /// Whether a process with this mask may go to `node`.
    pub fn allows(&self, node: NodeId) -> bool {
        if !self.migfilter || node == 0 || node > 64 {
            return !self.migfilter || self.migpolicy == 0;
        }
        let marked = self.mignodes & (1u64 << (node - 1)) != 0;
        if self.migpolicy == 1 { marked } else { !marked }
    }
}

/// How a job was started with `mosrun` (HOWTO table 8-7); recorded by the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// `nomig`: the process won't migrate.
    #[serde(default)]
    pub nomig: bool,
    /// `runhome`: locked to its home node.
    #[serde(default)]
    pub runhome: bool,
    /// `runon N`: run (and lock) on node N.
    #[serde(default)]
    pub runon: Option<NodeId>,
    /// `cpujob`: a CPU-bound process.
    #[serde(default)]
    pub cpujob: bool,
    /// `iojob`: an I/O-bound process.
    #[serde(default)]
    pub iojob: bool,
    /// `nodecay`: do not refresh its load-balancing statistics.
    #[serde(default)]
    pub nodecay: bool,
    /// `slowdecay`.
    #[serde(default)]
    pub slowdecay: bool,
    /// `fastdecay`.
    #[serde(default)]
    pub fastdecay: bool,
}

impl RunOptions {
    /// Whether these options lock the process to where it runs.
    pub fn locks(&self) -> bool {
        self.nomig || self.runhome || self.runon.is_some()
    }

    /// The option names that are set, in table 8-7 order (for display).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.nomig, "nomig"),
            (self.runhome, "runhome"),
            (self.runon.is_some(), "runon"),
            (self.cpujob, "cpujob"),
            (self.iojob, "iojob"),
            (self.nodecay, "nodecay"),
            (self.slowdecay, "slowdecay"),
            (self.fastdecay, "fastdecay"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

/// One process as openMosix shows it (/proc/PID/* plus table 8-5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcInfo {
    /// Process id on the node where it runs.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Real user id.
    pub uid: u32,
    /// State letter as in /proc/PID/stat (R, S, D, T, Z, …).
    pub state: char,
    /// Nice value (-20..=19).
    pub nice: i32,
    /// User CPU time in clock ticks.
    pub utime: u64,
    /// User CPU time of waited-for children in clock ticks.
    pub cutime: u64,
    /// Virtual memory size in bytes.
    pub vsize: u64,
    /// Resident set size in bytes.
    pub rss: u64,
    /// Pages swapped (not maintained by modern kernels; 0 there).
    pub nswap: u64,
    /// Cumulative nswap of children.
    pub cnswap: u64,
    /// Short command name (/proc/PID/comm).
    pub comm: BytesOrText,
    /// Command line (arguments joined by spaces; comm in brackets for kernel threads).
    pub cmdline: BytesOrText,
    /// Node the process is computed on (`where`).
    #[serde(rename = "where")]
    pub where_: NodeId,
    /// The process's home node.
    pub home: NodeId,
    /// Its pid on its home node (its own pid when it runs at home).
    #[serde(default)]
    pub home_pid: i32,
    /// How many times it migrated.
    pub nmigs: u32,
    /// Locked to its home node.
    pub lock: bool,
    /// Why it cannot migrate; empty when it can.
    pub cantmove: String,
    /// Cluster mask.
    #[serde(flatten)]
    pub mask: MigMask,
    /// mosrun options it was started with, if the agent started it (kept when it migrates).
    #[serde(default)]
    pub run: Option<RunOptions>,
    /// A candidate for automatic load balancing: started with `run` (mosrun) and not
    /// locked, or explicitly unlocked — here, or before it migrated (docs/balancing.md).
    #[serde(default)]
    pub candidate: bool,
    /// It arrived on this node by an automatic move of the load balancer.
    #[serde(default)]
    pub auto_moved: bool,
}

impl ProcInfo {
    /// Why the process cannot move, in words, when it cannot: the kernel's or agent's
    /// reason, else its lock to the home node.
    pub fn cannot_move(&self) -> Option<String> {
        if !self.cantmove.is_empty() {
            Some(self.cantmove.clone())
        } else if self.lock {
            Some("locked to its home node".to_owned())
        } else {
            None
        }
    }
}

/// A signal the protocol lets a client send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    /// SIGSTOP
    Stop,
    /// SIGCONT
    Cont,
    /// SIGTERM
    Term,
    /// SIGKILL
    Kill,
}

impl Signal {
    /// The signal number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        }
    }

    /// Parses STOP, SIGSTOP, stop, 19 …
    pub fn parse(s: &str) -> Option<Signal> {
        let up = s.trim().to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        match name {
            "STOP" => Some(Signal::Stop),
            "CONT" => Some(Signal::Cont),
            "TERM" => Some(Signal::Term),
            "KILL" => Some(Signal::Kill),
            n => {
                let num: i32 = n.parse().ok()?;
                [Signal::Stop, Signal::Cont, Signal::Term, Signal::Kill]
                    .into_iter()
                    .find(|s| s.number() == num)
            }
        }
    }
}

/// A node of the cluster map, as `setpe` installs it on the agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapNode {
    /// openMosix id.
    pub id: NodeId,
    /// Addresses (first is the main one; the others are ALIAS lines).
    pub addresses: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_allow_and_deny() {
        let off = MigMask::default();
        assert!(off.allows(3));
        let deny3 = MigMask {
            migfilter: true,
            mignodes: 1 << 2,
            migpolicy: 0,
        };
        assert!(!deny3.allows(3));
        assert!(deny3.allows(2));
        let allow3 = MigMask {
            migpolicy: 1,
            ..deny3
        };
        assert!(allow3.allows(3));
        assert!(!allow3.allows(2));
    }

    #[test]
    fn signal_names() {
        assert_eq!(Signal::parse("sigstop"), Some(Signal::Stop));
        assert_eq!(Signal::parse("CONT"), Some(Signal::Cont));
        assert_eq!(Signal::parse("9"), Some(Signal::Kill));
        assert_eq!(Signal::parse("HUP"), None);
    }
}
