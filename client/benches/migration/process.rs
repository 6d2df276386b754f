//! What the migration benches move: a python process of a given resident size on the
//! testbed, and the open agent channels to the two nodes it moves between.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use openmosix_client::{AgentConn, ClientOptions, connect_node};
use openmosix_hpc::map::Cluster;
use openmosix_testbed::Testbed;
use serde_json::Value;
use tokio::runtime::Runtime;

pub const MIB: u64 = 1024 * 1024;
/// How long a test process may take to become resident.
const RESIDENT_TIMEOUT_SECS: u64 = 120;

/// The test process: `SIZE_MIB MODE`. It fills a bytearray so that every page is
/// resident — with non-zero bytes (`idle`, `writer`) or random ones (`random`) — then
/// sleeps (`idle`, `random`) or rewrites random 4 KiB pages, 16 of them per millisecond
/// or so (`writer`).
const SCRIPT: &str = r#"
import os, random, sys, time
size = int(sys.argv[1]) << 20
if sys.argv[2] == "random":
    buf = bytearray(size)
    step = 1 << 24
    for o in range(0, size, step):
        n = min(step, size - o)
        buf[o:o + n] = os.urandom(n)
else:
    buf = bytearray(b"\x5a") * size
if sys.argv[2] != "writer":
    while True:
        time.sleep(3600)
pages = size >> 12
fill = [bytes([0xa5]) * 4096, bytes([0x3c]) * 4096]
n = 0
while True:
    o = random.randrange(pages) << 12
    buf[o:o + 4096] = fill[n & 1]
    n += 1
    if n % 16 == 0:
        time.sleep(0.001)
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Non-zero bytes, asleep.
    Idle,
    /// Non-zero bytes, a writer dirtying random pages.
    Writer,
    /// Random bytes, asleep.
    Random,
}

impl Mode {
    pub fn arg(self) -> &'static str {
        match self {
            Mode::Idle => "idle",
            Mode::Writer => "writer",
            Mode::Random => "random",
        }
    }
}

/// The open channels to the two nodes, by node id (1 and 2).
#[derive(Debug)]
pub struct Nodes {
    conns: [AgentConn; 2],
}

impl Nodes {
    /// Connects to the agents of nodes 1 and 2; both must be able to migrate.
    pub fn connect(rt: &Runtime, bed: &Testbed) -> Nodes {
        let cluster = Cluster::from_file(&bed.cluster_file).expect("cluster file");
        let options = ClientOptions::for_cluster(&cluster);
        let connect = |id| {
            let node = cluster.node(id).expect("node in the cluster file");
            rt.block_on(connect_node(node, &options))
                .expect("connect to the node's agent")
        };
        let nodes = Nodes {
            conns: [connect(1), connect(2)],
        };
        for id in [1, 2] {
            let m = rt
                .block_on(nodes.conn(id).readiness())
                .expect("the agent's readiness")
                .migration;
            assert!(m.available, "node {id} cannot migrate: {}", m.detail);
        }
        nodes
    }

    pub fn conn(&self, node: u32) -> &AgentConn {
        &self.conns[if node == 1 { 0 } else { 1 }]
    }

    /// Whether the source agent can run pre-dump rounds, and its words about it (known
    /// since [`Nodes::connect`] asked for its readiness).
    pub fn predump_capability(&self) -> (bool, String) {
        let hello = self.conn(1).hello_now();
        (hello.predump, hello.migration.detail)
    }
}

/// A test process on the testbed, killed when dropped.
#[derive(Debug)]
pub struct TestProcess<'a> {
    bed: &'a Testbed,
    pub node: u32,
    pub pid: i32,
}

impl<'a> TestProcess<'a> {
    /// Starts the test script on node 1 and waits until it is resident.
    pub fn start(bed: &'a Testbed, size_mib: u64, mode: Mode) -> Result<Self> {
        let size = size_mib.to_string();
        let argv = [
            "run",
            "1",
            "--",
            "/usr/bin/python3",
            "-c",
            SCRIPT,
            &size,
            mode.arg(),
        ];
        let pid = cli_ok(bed, &argv)?
            .trim()
            .parse()
            .context("`openmosix run` printed no pid")?;
        let process = TestProcess { bed, node: 1, pid };
        process.wait_resident(size_mib * MIB * 95 / 100)?;
        Ok(process)
    }

    /// Resident set size in bytes, as the node's agent reports it.
    pub fn rss(&self) -> Result<u64> {
        let out = cli_ok(self.bed, &["--json", "ps", &self.node.to_string()])?;
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|p| p["pid"].as_i64() == Some(i64::from(self.pid)))
            .and_then(|p| p["rss"].as_u64())
            .ok_or_else(|| anyhow!("pid {} is not on node {}", self.pid, self.node))
    }

    fn wait_resident(&self, bytes: u64) -> Result<()> {
        let start = Instant::now();
        loop {
            let rss = self.rss()?;
            if rss >= bytes {
                return Ok(());
            }
            if start.elapsed().as_secs() > RESIDENT_TIMEOUT_SECS {
                bail!("pid {} stuck at {} MiB resident", self.pid, rss / MIB);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TestProcess<'_> {
    fn drop(&mut self) {
        let (node, pid) = (self.node.to_string(), self.pid.to_string());
        let _ = self.bed.cli(&["signal", &node, &pid, "KILL"]);
    }
}

/// `openmosix args`, its stdout, or its stderr as the error.
pub fn cli_ok(bed: &Testbed, args: &[&str]) -> Result<String> {
    let out = bed.cli(args);
    if !out.status.success() {
        bail!(
            "openmosix {}: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("openmosix printed non-UTF-8")
}
