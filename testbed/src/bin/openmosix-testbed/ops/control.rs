//! The commands on a running testbed: `status`, `sshd stop|start`, `exec`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use openmosix_testbed::addr;

use super::node::{PORT_WAIT, load_node, nsenter, require_tini, spawn_sshd, tini_among, wait_port};
use crate::layout::{Layout, check_name, state_dir};
use crate::sys::{self, IP, KILL, NSENTER, SSHD};

/// `status`: one line per node. Returns whether every node is healthy.
pub fn status(name: &str) -> Result<bool> {
    check_name(name)?;
    sys::require_root()?;
    sys::require_tools(&[IP])?;
    if !state_dir(name).exists() {
        say(&format!("testbed {name}: not up"));
        return Ok(false);
    }
    let (l, meta) = Layout::load(name)?;
    let namespaces: BTreeSet<String> = sys::netns_list()?.into_iter().collect();
    let subnets: Vec<String> = (0..addr::subnet_count(meta.nodes))
        .map(|s| format!("{}0/24", l.subnet_prefix(s)))
        .collect();
    say(&format!(
        "testbed {name}: {} node(s), {}{}, cluster file {}",
        meta.nodes,
        subnets.join(" and "),
        if meta.isolated {
            ", nodes isolated from each other"
        } else {
            ""
        },
        l.cluster_file().display()
    ));
    let names: Vec<String> = (1..=meta.nodes).map(|i| l.netns(i)).collect();
    let pids = sys::pids_by_netns(&names);
    let mut healthy = true;
    for (i, netns) in (1..=meta.nodes).zip(&names) {
        let ns = namespaces.contains(netns);
        let running = ns && pids.get(netns).is_some_and(|p| tini_among(p).is_some());
        let sshd = ns && sys::port_open(&l.addr(i), Duration::from_millis(500));
        healthy &= ns && running && sshd;
        say(&format!(
            "node {i:>3}  {:<13} namespace {:<7} init {:<11} sshd {}",
            l.addr(i),
            if ns { "present" } else { "missing" },
            if running { "running" } else { "not running" },
            if sshd { "listening" } else { "not listening" },
        ));
    }
    Ok(healthy)
}

/// Pids of node i's sshd processes: the listener and one or two per connection.
fn sshd_pids(l: &Layout, i: u32) -> Vec<u32> {
    sys::netns_pids(&l.netns(i))
        .into_iter()
        .filter(|&p| sys::comm(p).is_some_and(|c| c.starts_with("sshd")))
        .collect()
}

/// `sshd stop I`: kills every sshd of the node, so its SSH connections drop.
pub fn sshd_stop(name: &str, node: u32) -> Result<()> {
    let l = load_node(name, node)?;
    sys::require_tools(&[IP, KILL])?;
    let (killed, gone) = sys::kill9_until_gone(Duration::from_secs(5), || sshd_pids(&l, node));
    if !gone {
        bail!(
            "node {node}: sshd processes survive SIGKILL: {:?}",
            sshd_pids(&l, node)
        );
    }
    eprintln!("openmosix-testbed: node {node}: killed {killed} sshd process(es)");
    Ok(())
}

/// `sshd start I`: starts sshd again inside the node's PID namespace and waits for it.
pub fn sshd_start(name: &str, node: u32) -> Result<()> {
    let l = load_node(name, node)?;
    sys::require_tools(&[IP, NSENTER, SSHD])?;
    if sys::port_open(&l.addr(node), Duration::from_millis(300)) {
        eprintln!("openmosix-testbed: node {node}: sshd is already listening");
        return Ok(());
    }
    let tini = require_tini(&l, node)?;
    spawn_sshd(&l, node, tini)?;
    wait_port(&l, node, Instant::now() + PORT_WAIT)
}

/// `exec I -- CMD…`: runs a command inside node i; returns its exit status.
pub fn exec(name: &str, node: u32, argv: &[OsString]) -> Result<ExitStatus> {
    let l = load_node(name, node)?;
    sys::require_tools(&[IP, NSENTER])?;
    let tini = require_tini(&l, node)?;
    let mut cmd = nsenter(tini);
    cmd.arg("--").args(argv);
    cmd.status()
        .with_context(|| format!("cannot run `{}`", sys::show(&cmd)))
}

/// Prints a line on stdout; a reader that went away (`status | head`) ends the program
/// quietly instead of with a panic.
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("openmosix-testbed: cannot write output: {e}");
        std::process::exit(1);
    }
}
