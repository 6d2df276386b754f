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

use super::down::down_one;
use super::node::{
    PORT_WAIT, nsenter, output_to_log, require_tini, spawn_sshd, start_in_node, tini_pid, wait_port,
};
use crate::layout::{Layout, MAX_NODES, Meta, STATE_ROOT, check_name};
use crate::sys::{self, IP, KILL, NSENTER, SETSID, SLEEP, SSH_KEYGEN, SSHD, TINI, UNSHARE};

/// `up N`: cleans up a testbed of the same name, then builds a fresh one. Returns the path
/// of cluster.toml.
pub fn up(
    name: &str,
    nodes: u32,
    net: u8,
    agent: Option<PathBuf>,
    bare: &[u32],
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

    let l = Layout {
        name: name.to_owned(),
        net,
    };
    down_one(name).with_context(|| format!("cleaning up an earlier testbed {name:?}"))?;
    check_subnet_free(&l)?;

    eprintln!("openmosix-testbed: building {name}: {nodes} node(s) on 10.77.{net}.0/24");
    write_state(&l, nodes, &agent, bare).context("writing the state folder")?;
    build_network(&l, nodes).context("building the network")?;
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

/// Fails if another interface of the root namespace already has an address in 10.77.K.0/24.
fn check_subnet_free(l: &Layout) -> Result<()> {
    let prefix = l.subnet_prefix();
    if let Some((link, addr)) = sys::ipv4_addrs()?
        .into_iter()
        .find(|(_, a)| a.starts_with(&prefix))
    {
        bail!(
            "10.77.{}.0/24 is taken: {link} has {addr} (another testbed? pick another --net)",
            l.net
        );
    }
    Ok(())
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

fn write_state(l: &Layout, nodes: u32, agent: &Path, bare: &[u32]) -> Result<()> {
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
    let meta = toml::to_string(&Meta { net: l.net, nodes }).context("writing testbed.toml")?;
    write(&l.meta_file(), &meta)
}

fn build_network(l: &Layout, nodes: u32) -> Result<()> {
    let br = l.bridge();
    // Without multicast snooping the bridge floods multicast to every port, as a hub
    // would: discovery announcements reach every node without an IGMP querier.
    sys::ip(["link", "add", &br, "type", "bridge", "mcast_snooping", "0"])?;
    sys::ip([
        "addr",
        "add",
        &format!("{}/24", l.bridge_addr()),
        "dev",
        &br,
    ])?;
    sys::ip(["link", "set", &br, "up"])?;
    for i in 1..=nodes {
        let (ns, veth) = (l.netns(i), l.veth(i));
        sys::ip(["netns", "add", &ns])?;
        // The peer is born inside the namespace, already named eth0.
        sys::ip([
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        sys::ip(["link", "set", &veth, "master", &br])?;
        sys::ip(["link", "set", &veth, "up"])?;
        sys::ip([
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", l.addr(i)),
            "dev",
            "eth0",
        ])?;
        sys::ip(["-n", &ns, "link", "set", "lo", "up"])?;
        sys::ip(["-n", &ns, "link", "set", "eth0", "up"])?;
    }
    Ok(())
}

/// Starts every node: its PID namespace with tini as PID 1, then sshd inside it.
fn start_nodes(l: &Layout, nodes: u32) -> Result<()> {
    mkdir(Path::new("/run/sshd"), 0o755)?;
    let mut children: Vec<Child> = Vec::new();
    for i in 1..=nodes {
        children.push(spawn_namespace(l, i)?);
    }
    for (child, i) in children.iter_mut().zip(1..) {
        wait_for_tini(l, i, child)?;
    }
    for i in 1..=nodes {
        set_pid_range(l, i)?;
        spawn_sshd(l, i)?;
    }
    let deadline = Instant::now() + PORT_WAIT;
    for i in 1..=nodes {
        wait_port(l, i, deadline)?;
    }
    Ok(())
}

/// Starts node i's PID namespace (detached, output to its log) and records the outer pid.
fn spawn_namespace(l: &Layout, i: u32) -> Result<Child> {
    // tini keeps the namespace alive: its child is `sleep infinity`, not sshd, so that
    // `sshd stop` (which kills every sshd, the listener too) does not end tini and with
    // it the whole node. sshd is started next to it, daemonized, under tini.
    let mut cmd = Command::new("setsid");
    cmd.args(["ip", "netns", "exec", &l.netns(i)])
        .args(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"])
        .args(["tini", "-s", "--", "sleep", "infinity"]);
    output_to_log(l, i, &mut cmd)?;
    let child = cmd
        .spawn()
        .with_context(|| format!("node {i}: cannot run `{}`", sys::show(&cmd)))?;
    write(&l.node_pid(i), &format!("{}\n", child.id()))?;
    Ok(child)
}

/// Waits (up to 5 s) until node i's tini runs; fails when its namespace ended instead.
fn wait_for_tini(l: &Layout, i: u32, child: &mut Child) -> Result<()> {
    let mut gone = None;
    let found = sys::wait_until(Duration::from_secs(5), || {
        if let Ok(Some(status)) = child.try_wait() {
            gone = Some(status);
            return true;
        }
        tini_pid(l, i).is_some()
    });
    if let Some(status) = gone {
        bail!(
            "node {i}: its namespace ended at once ({status}); log tail:\n{}",
            sys::tail(&l.log(i), 15)
        );
    }
    if !found {
        bail!(
            "node {i}: no tini appeared in {} within 5 s; log tail:\n{}",
            l.netns(i),
            sys::tail(&l.log(i), 15)
        );
    }
    Ok(())
}

/// First pid of node i's range: its own processes start there.
fn pid_base(i: u32) -> u32 {
    i * PID_RANGE
}

/// Pids per node: 20 nodes fit under the default `pid_max` of 32768.
const PID_RANGE: u32 = 1500;

/// Starts node i's pids at `pid_base(i)`. Migration (CRIU) restores a process with the
/// pid it had, which must be free on the target; on real machines pids rarely collide,
/// but nodes built alike from one script allocate the same small numbers. Distinct
/// ranges keep the testbed as honest as a real cluster.
fn set_pid_range(l: &Layout, i: u32) -> Result<()> {
    let tini = require_tini(l, i)?;
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
        writeln!(stdin, "{}", pid_base(i))?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("node {i}: cannot set its pid range ({status})");
    }
    Ok(())
}

/// `up --discovery`: starts a discovery daemon in each node (announcing on eth0 with the
/// node's number as its id, its map in the node's state folder) and writes
/// cluster-discovery.toml, a cluster file whose nodes come from discovery on the bridge.
pub fn start_discovery(name: &str, nodes: u32) -> Result<()> {
    let (l, _) = Layout::load(name)?;
    // The `openmosix` command too, so that `openmosix showmap` works on the nodes.
    if let Ok(exe) = std::env::current_exe() {
        let cli = exe.with_file_name("openmosix");
        if cli.is_file() {
            let to = l.bin_dir().join("openmosix");
            fs::copy(&cli, &to).with_context(|| format!("copying {}", cli.display()))?;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755))?;
        }
    }
    for i in 1..=nodes {
        discovery_start(&l, i)?;
    }
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
    start_in_node(l, i, "discovery", agent.as_ref(), &args)
}
