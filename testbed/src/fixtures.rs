//! Made-up cluster data for tests and benches that need no cluster: client options for a
//! locally spawned agent, a node as a window sees it, its figures, a process, a process as the history stores it, and reproducible
//! noise. Each builder gives plain values; a test sets what it is about with struct
//! update syntax (`ProcInfo { nice: 5, ..proc_info(100, 1, "sleep 100") }`).

use std::path::Path;

use openmosix_client::{ClientOptions, LinkState, NodeView};
use openmosix_hpc::model::{MigMask, NodeId, NodeInfo, NodeStatus, ProcInfo};
use openmosix_store::store::ProcIn;

/// Client options that spawn the workspace's agent on this machine for a local node,
/// with its state in `state_dir`.
pub fn local_agent_options(state_dir: &Path) -> ClientOptions {
    ClientOptions {
        local_agent: crate::testbed::bin("openmosix-agent").into(),
        local_state_dir: Some(state_dir.to_path_buf()),
        ..ClientOptions::default()
    }
}

/// Node `id` at 10.0.0.`id`, up, no hello and no figures yet.
pub fn node_view(id: NodeId) -> NodeView {
    NodeView {
        id,
        address: format!("10.0.0.{id}"),
        state: LinkState::Up,
        reason: None,
        hello: None,
        info: None,
        updated: None,
    }
}

/// Node `id`'s figures: 2 CPUs at speed 1000, idle, 1 GiB of 2 GiB free, up.
pub fn node_info(id: NodeId) -> NodeInfo {
    NodeInfo {
        id,
        cpus: 2,
        speed: 1000,
        load: 0.0,
        util: 0.0,
        mem: 1 << 30,
        rmem: 1 << 30,
        tmem: 2 << 30,
        status: NodeStatus::Up,
    }
}

/// Process `pid` running `cmd` at home on node `at`: a child of init, root's, sleeping,
/// nice 0, no time or memory used, movable.
pub fn proc_info(pid: i32, at: NodeId, cmd: &str) -> ProcInfo {
    ProcInfo {
        pid,
        ppid: 1,
        uid: 0,
        state: 'S',
        nice: 0,
        utime: 0,
        cutime: 0,
        vsize: 0,
        rss: 0,
        nswap: 0,
        cnswap: 0,
        comm: cmd.split_whitespace().next().unwrap_or_default().into(),
        cmdline: cmd.into(),
        where_: at,
        home: at,
        home_pid: pid,
        nmigs: 0,
        lock: false,
        cantmove: String::new(),
        mask: MigMask::default(),
        run: None,
        candidate: false,
        auto_moved: false,
    }
}

/// A process as the history stores it: `pid` from `home` (the same pid there) in
/// `state`, running `cmd`.
pub fn proc_in(pid: i32, home: NodeId, state: char, cmd: &str) -> ProcIn {
    ProcIn {
        pid,
        home,
        home_pid: pid,
        state,
        cmdline: cmd.into(),
    }
}

/// xorshift64*: reproducible noise without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in 0.0..1.0.
    pub fn unit(&mut self) -> f64 {
        (self.bits() >> 11) as f64 / (1u64 << 53) as f64
    }
}
