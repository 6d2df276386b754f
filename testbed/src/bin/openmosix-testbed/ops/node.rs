//! Inside a node: its tini (PID 1 of its PID namespace), entering its namespaces, its
//! log, starting a daemon there and waiting for its sshd.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::layout::Layout;
use crate::sys::{self, SSHD_PATH};

/// How long a node's sshd gets to accept TCP connections.
pub(super) const PORT_WAIT: Duration = Duration::from_secs(10);

/// Gives `cmd` node i's log as stdout and stderr (and /dev/null as stdin).
pub(super) fn output_to_log(l: &Layout, i: u32, cmd: &mut Command) -> Result<()> {
    let log = log_file(l, i)?;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(())
}

fn log_file(l: &Layout, i: u32) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(l.log(i))
        .with_context(|| format!("opening {}", l.log(i).display()))
}

/// Pid (as seen from the root namespace) of tini, PID 1 of node i's PID namespace.
pub(super) fn tini_pid(l: &Layout, i: u32) -> Option<u32> {
    let ns = l.netns(i);
    tini_among(sys::pids_by_netns(std::slice::from_ref(&ns)).get(&ns)?)
}

/// The tini among these pids (of one node's namespace).
pub(super) fn tini_among(pids: &[u32]) -> Option<u32> {
    pids.iter()
        .copied()
        .find(|&p| sys::comm(p).as_deref() == Some("tini"))
}

pub(super) fn require_tini(l: &Layout, i: u32) -> Result<u32> {
    tini_pid(l, i).with_context(|| {
        format!(
            "node {i} of {} is not running (no tini in namespace {}); run `openmosix-testbed up` again",
            l.name,
            l.netns(i)
        )
    })
}

/// `nsenter` into node i's net, PID and mount namespaces (through its tini).
pub(super) fn nsenter(tini: u32) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg("--target")
        .arg(tini.to_string())
        .args(["--pid", "--mount", "--net"]);
    // Entering a mount namespace moves the working directory to its root; the file
    // system is shared, so keep ours.
    if let Ok(cwd) = std::env::current_dir() {
        let mut wd = OsString::from("--wd=");
        wd.push(cwd);
        cmd.arg(wd);
    }
    cmd
}

/// Starts sshd in node i's namespaces (entered through its `tini`); it daemonizes and is
/// reparented to tini.
pub(super) fn spawn_sshd(l: &Layout, i: u32, tini: u32) -> Result<()> {
    let config = l.sshd_config(i);
    let log = l.log(i);
    let args: [&OsStr; 4] = ["-f".as_ref(), config.as_ref(), "-E".as_ref(), log.as_ref()];
    start_in_node(l, i, tini, "sshd", SSHD_PATH.as_ref(), &args)
}

/// Runs `program args` inside node i (nsenter via its `tini`), output to the node's log;
/// the program is expected to go to the background by itself (sshd, the discovery daemon).
pub(super) fn start_in_node(
    l: &Layout,
    i: u32,
    tini: u32,
    what: &str,
    program: &OsStr,
    args: &[&OsStr],
) -> Result<()> {
    let mut cmd = nsenter(tini);
    cmd.arg("--").arg(program).args(args);
    output_to_log(l, i, &mut cmd)?;
    let status = cmd
        .status()
        .with_context(|| format!("node {i}: cannot run `{}`", sys::show(&cmd)))?;
    if !status.success() {
        bail!(
            "node {i}: {what} did not start ({status}); log tail:\n{}",
            sys::tail(&l.log(i), 15)
        );
    }
    Ok(())
}

pub(super) fn wait_port(l: &Layout, i: u32, deadline: Instant) -> Result<()> {
    let addr = l.addr(i);
    loop {
        if sys::port_open(&addr, Duration::from_millis(300)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "node {i} ({addr}): sshd does not accept connections on port 22 after {} s; log tail:\n{}",
                PORT_WAIT.as_secs(),
                sys::tail(&l.log(i), 15)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(super) fn load_node(name: &str, node: u32) -> Result<Layout> {
    sys::require_root()?;
    let (l, meta) = Layout::load(name)?;
    if !(1..=meta.nodes).contains(&node) {
        bail!("testbed {name} has nodes 1..={}, not {node}", meta.nodes);
    }
    Ok(l)
}
