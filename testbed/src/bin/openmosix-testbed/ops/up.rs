//! `up`: the state folder (keys, configs, the agent), the network (bridge, namespaces,
//! veths), the nodes (tini, pid range, sshd) and, with `--discovery`, a discovery daemon
//! per node.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use openmosix_testbed::addr;

use super::down::down_one;
use super::network;
use super::node::{
    PORT_WAIT, nsenter, output_to_log, require_tini, spawn_sshd, start_in_node, tini_among,
    wait_port,
};
use crate::layout::{Layout, MAX_NODES, Meta, STATE_ROOT, check_name};
use crate::pool;
use crate::sys::{self, IP, KILL, NSENTER, SETSID, SLEEP, SSH_KEYGEN, SSHD, TINI, UNSHARE};

/// `up N`: cleans up a testbed of the same name, then builds a fresh one. Returns the path
/// of cluster.toml.
pub fn up(
    name: &str,
    nodes: u32,
    net: u8,
    agent: Option<PathBuf>,
    bare: &[u32],
    isolated: bool,
) -> Result<PathBuf> {
    check_name(name)?;
    if !(1..=MAX_NODES).contains(&nodes) {
        bail!("a testbed has 1 to {MAX_NODES} nodes, not {nodes}");
    }
    if let Some(i) = bare.iter().find(|i| !(1..=nodes).contains(*i)) {
        bail!("--bare {i}: the testbed has nodes 1..={nodes}");
    }
    if net == 0 || net > 254 {
        bail!("--net must be within 1..=254, not {net}");
    }
    sys::require_root()?;
    sys::require_tools(&[
        IP, UNSHARE, NSENTER, SETSID, TINI, SSHD, SSH_KEYGEN, KILL, SLEEP,
    ])?;
    let agent = agent_binary(agent)?;
    sys::allow_lazy_page_pipes()?;

    let l = Layout {
        name: name.to_owned(),
        net,
    };
    down_one(name).with_context(|| format!("cleaning up an earlier testbed {name:?}"))?;
    network::check_subnets_free(&l, nodes)?;

    let subnets: Vec<String> = (0..addr::subnet_count(nodes))
        .map(|s| format!("{}0/24", l.subnet_prefix(s)))
        .collect();
    eprintln!(
        "openmosix-testbed: building {name}: {nodes} node(s) on {}{}",
        subnets.join(" and "),
        if isolated {
            ", isolated from each other"
        } else {
            ""
        }
    );
    write_state(&l, nodes, &agent, bare, isolated).context("writing the state folder")?;
    network::build(&l, nodes, isolated).context("building the network")?;
    start_nodes(&l, nodes).with_context(|| {
        format!(
            "starting the nodes (logs in {}/nodeI/log)",
            l.state_dir().display()
        )
    })?;
    eprintln!(
        "openmosix-testbed: {name} is up: ssh -F {} n1 (nodes n1..n{nodes}); `openmosix-testbed down --name {name}` removes it",
        l.ssh_config().display()
    );
    Ok(l.cluster_file())
}

/// The agent to copy into the testbed: `agent`, or the `openmosix-agent` next to this
/// program; it must exist.
fn agent_binary(agent: Option<PathBuf>) -> Result<PathBuf> {
    let agent = match agent {
        Some(path) => path,
        None => std::env::current_exe()
            .context("finding the testbed's own executable")?
            .with_file_name("openmosix-agent"),
    };
    if !agent.is_file() {
        bail!(
            "agent binary {} not found (build it, or pass --agent PATH)",
            agent.display()
        );
    }
    Ok(agent)
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .with_context(|| format!("creating {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn keygen(path: &Path, comment: &str) -> Result<String> {
    sys::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path),
    )?;
    let public = path.with_extension("pub");
    fs::read_to_string(&public).with_context(|| format!("reading {}", public.display()))
}

fn write_state(l: &Layout, nodes: u32, agent: &Path, bare: &[u32], isolated: bool) -> Result<()> {
    mkdir(Path::new(STATE_ROOT), 0o755)?;
    let dir = l.state_dir();
    mkdir(&dir, 0o700)?;
    let host_pub = keygen(&l.host_key(), &format!("openmosix-testbed-{}-host", l.name))?;
    let client_pub = keygen(
        &l.client_key(),
        &format!("openmosix-testbed-{}-client", l.name),
    )?;
    write(&l.authorized_keys(), &client_pub)?;
    write(&l.known_hosts(), &l.known_hosts_text(nodes, &host_pub))?;

    mkdir(&l.bin_dir(), 0o755)?;
    fs::copy(agent, l.agent()).with_context(|| format!("copying the agent {}", agent.display()))?;
    fs::set_permissions(l.agent(), fs::Permissions::from_mode(0o755))?;
    copy_cli(l)?;

    for i in 1..=nodes {
        mkdir(&l.node_dir(i), 0o755)?;
        mkdir(&l.node_state(i), 0o755)?;
        mkdir(&l.node_home(i), 0o700)?;
        let mut sshd_config = l.sshd_config_text(i);
        if bare.contains(&i) {
            // A bare node's sessions get a PATH without the testbed's agent folder.
            sshd_config = sshd_config.replace(&l.session_path(), Layout::BARE_PATH);
        }
        write(&l.sshd_config(i), &sshd_config)?;
    }
    write(&l.ssh_config(), &l.ssh_config_text(nodes))?;
    write(&l.cluster_file(), &l.cluster_toml(nodes)?)?;
    let meta = Meta {
        net: l.net,
        nodes,
        isolated,
    };
    let meta = toml::to_string(&meta).context("writing testbed.toml")?;
    write(&l.meta_file(), &meta)
}

/// Starts every node: its PID namespace with tini as PID 1, then (several nodes at a
/// time) its pid range and sshd, and waits until each sshd accepts connections.
fn start_nodes(l: &Layout, nodes: u32) -> Result<()> {
    mkdir(Path::new("/run/sshd"), 0o755)?;
    let mut children: Vec<Child> = Vec::new();
    for i in 1..=nodes {
        children.push(spawn_namespace(l, i)?);
    }
    let tinis = wait_for_tinis(l, &mut children)?;
    let range = pid_range(nodes);
    let deadline = Instant::now() + PORT_WAIT;
    pool::each_node(nodes, |i| {
        let tini = tinis[i as usize - 1];
        set_pid_range(i, tini, range)?;
        spawn_sshd(l, i, tini)?;
        wait_port(l, i, deadline)
    })
}

/// What a node runs first in its mount namespace (`$1`: an empty folder of its own, `$2`:
/// [`STATE_ROOT`]):
/// a tmpfs of its own on /run, as real hosts have, holding only `sshd` (sshd's
/// privilege separation folder) and the testbeds' state folder. criu keeps its kernel
/// probe in /run/criu.kdat only on a tmpfs; where /run is not one (as on some build
/// machines) every criu call probes the kernel again, some 60 ms each, three of them
/// inside a post-copy freeze. When a mount fails the node keeps the shared /run. Then
/// tini becomes the namespace's PID 1.
const OWN_RUN: &str = r#"mount -n -t tmpfs -o mode=0755,size=16m openmosix-run "$1" && mkdir "$1/sshd" "$1/openmosix-testbed" && mount -n --rbind "$2" "$1/openmosix-testbed" && mount -n --move "$1" /run
exec tini -s -- sleep infinity"#;

/// Starts node i's PID namespace (detached, output to its log) and records the outer pid.
fn spawn_namespace(l: &Layout, i: u32) -> Result<Child> {
    // tini keeps the namespace alive: its child is `sleep infinity`, not sshd, so that
    // `sshd stop` (which kills every sshd, the listener too) does not end tini and with
    // it the whole node. sshd is started next to it, daemonized, under tini.
    let run = l.node_dir(i).join("run");
    mkdir(&run, 0o755)?;
    let mut cmd = Command::new("setsid");
    cmd.args(["ip", "netns", "exec", &l.netns(i)])
        .args(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"])
        .args(["sh", "-c", OWN_RUN, "sh"])
        .arg(&run)
        .arg(STATE_ROOT);
    output_to_log(l, i, &mut cmd)?;
    let child = cmd
        .spawn()
        .with_context(|| format!("node {i}: cannot run `{}`", sys::show(&cmd)))?;
    write(&l.node_pid(i), &format!("{}\n", child.id()))?;
    Ok(child)
}

/// Waits (up to 5 s, and a little more per node) until every node's tini runs; fails
/// when a node's namespace ended instead. The tinis' pids, node 1 first.
fn wait_for_tinis(l: &Layout, children: &mut [Child]) -> Result<Vec<u32>> {
    let names: Vec<String> = (1..).take(children.len()).map(|i| l.netns(i)).collect();
    let limit = Duration::from_secs(5) + Duration::from_millis(40) * children.len() as u32;
    let mut tinis: Vec<Option<u32>> = vec![None; children.len()];
    let mut gone = None;
    sys::wait_until(limit, || {
        let pids = sys::pids_by_netns(&names);
        for ((tini, child), (i, ns)) in tinis
            .iter_mut()
            .zip(children.iter_mut())
            .zip((1..).zip(&names))
        {
            if tini.is_none() {
                *tini = pids.get(ns).and_then(|p| tini_among(p));
            }
            if tini.is_none()
                && let Ok(Some(status)) = child.try_wait()
            {
                gone = Some((i, status));
                return true;
            }
        }
        tinis.iter().all(Option::is_some)
    });
    if let Some((i, status)) = gone {
        bail!(
            "node {i}: its namespace ended at once ({status}); log tail:\n{}",
            sys::tail(&l.log(i), 15)
        );
    }
    tinis
        .iter()
        .zip(1..)
        .map(|(tini, i)| {
            tini.with_context(|| {
                format!(
                    "node {i}: no tini appeared in {} within {} s; log tail:\n{}",
                    l.netns(i),
                    limit.as_secs(),
                    sys::tail(&l.log(i), 15)
                )
            })
        })
        .collect()
}

/// Pids per node when `pid_max` allows it: a test binary's node starts thousands of
/// processes over its run (an sshd session, an agent and criu's runs for each command),
/// and a node that passes its range runs on into the next node's, where a migrated
/// process's pid may then be taken (the default 32768 gives 3 nodes 8000 each).
const PID_RANGE: u32 = 8000;

/// Fewer pids per node than this, and `up` says how to raise `pid_max`.
const PID_RANGE_SAID: u32 = 1500;

/// Pids per node: [`PID_RANGE`], or fewer when the testbed would not fit under the
/// kernel's `pid_max` (32768 by default: 20 nodes get 1560 each, 250 nodes 130 each).
fn pid_range(nodes: u32) -> u32 {
    let pid_max = fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(32_768);
    let range = PID_RANGE.min(pid_max / (nodes + 1));
    if range < PID_RANGE_SAID {
        eprintln!(
            "openmosix-testbed: {range} pids per node (kernel.pid_max is {pid_max}; raise it to {} for {PID_RANGE_SAID} each)",
            PID_RANGE_SAID * (nodes + 1)
        );
    }
    range
}

/// Starts node i's pids at `i × range`. Migration (CRIU) restores a process with the pid
/// it had, which must be free on the target; on real machines pids rarely collide, but
/// nodes built alike from one script allocate the same small numbers. Distinct ranges
/// keep the testbed as honest as a real cluster.
fn set_pid_range(i: u32, tini: u32, range: u32) -> Result<()> {
    let mut cmd = nsenter(tini);
    // ns_last_pid belongs to the PID namespace of whoever opens it: tee runs inside.
    cmd.args(["--", "tee", "/proc/sys/kernel/ns_last_pid"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("node {i}: cannot run `{}`", sys::show(&cmd)))?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        writeln!(stdin, "{}", i * range)?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("node {i}: cannot set its pid range ({status})");
    }
    Ok(())
}

/// The `openmosix` command beside the agent, when it is beside this program: `openmosix
/// showmap` on the nodes, and the relay of a gateway node (docs/fan-out.md).
fn copy_cli(l: &Layout) -> Result<()> {
    if let Ok(exe) = std::env::current_exe() {
        let cli = exe.with_file_name("openmosix");
        if cli.is_file() {
            let to = l.bin_dir().join("openmosix");
            fs::copy(&cli, &to).with_context(|| format!("copying {}", cli.display()))?;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// `up --discovery`: starts a discovery daemon in each node (announcing on eth0 with the
/// node's number as its id, its map in the node's state folder) and writes
/// cluster-discovery.toml, a cluster file whose nodes come from discovery on the bridge.
pub fn start_discovery(name: &str, nodes: u32) -> Result<()> {
    let (l, _) = Layout::load(name)?;
    pool::each_node(nodes, |i| discovery_start(&l, i))?;
    write(&l.discovery_cluster_file(), &l.discovery_cluster_toml())?;
    eprintln!(
        "openmosix-testbed: discovery runs on every node; {} takes its nodes from it",
        l.discovery_cluster_file().display()
    );
    Ok(())
}

/// Starts node i's discovery daemon (it goes to the background by itself, under tini).
fn discovery_start(l: &Layout, i: u32) -> Result<()> {
    let agent = l.agent();
    let id = i.to_string();
    let state = l.node_state(i);
    let args: [&OsStr; 7] = [
        "discover".as_ref(),
        "-i".as_ref(),
        "eth0".as_ref(),
        "--id".as_ref(),
        id.as_ref(),
        "--state-dir".as_ref(),
        state.as_ref(),
    ];
    let tini = require_tini(l, i)?;
    start_in_node(l, i, tini, "discovery", agent.as_ref(), &args)
}
