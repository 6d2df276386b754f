//! The testbed commands: up, down, status, sshd stop/start, exec.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::layout::{Layout, MAX_NODES, Meta, STATE_ROOT, check_name, state_dir};
use crate::sys::{
    self, IP, KILL, NSENTER, SETSID, SLEEP, SSH_KEYGEN, SSHD, SSHD_PATH, TINI, UNSHARE,
};

/// How long a node's sshd gets to accept TCP connections.
const PORT_WAIT: Duration = Duration::from_secs(10);

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

fn log_file(l: &Layout, i: u32) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(l.log(i))
        .with_context(|| format!("opening {}", l.log(i).display()))
}

/// Starts every node: its PID namespace with tini as PID 1, then sshd inside it.
fn start_nodes(l: &Layout, nodes: u32) -> Result<()> {
    mkdir(Path::new("/run/sshd"), 0o755)?;
    let mut children: Vec<Child> = Vec::new();
    for i in 1..=nodes {
        let log = log_file(l, i)?;
        // tini keeps the namespace alive: its child is `sleep infinity`, not sshd, so that
        // `sshd stop` (which kills every sshd, the listener too) does not end tini and with
        // it the whole node. sshd is started next to it, daemonized, under tini.
        let mut cmd = Command::new("setsid");
        cmd.args(["ip", "netns", "exec", &l.netns(i)])
            .args(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"])
            .args(["tini", "-s", "--", "sleep", "infinity"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("node {i}: cannot run `{}`", sys::show(&cmd)))?;
        write(&l.node_pid(i), &format!("{}\n", child.id()))?;
        children.push(child);
    }
    for (child, i) in children.iter_mut().zip(1..) {
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

/// Pid (as seen from the root namespace) of tini, PID 1 of node i's PID namespace.
fn tini_pid(l: &Layout, i: u32) -> Option<u32> {
    sys::netns_pids(&l.netns(i))
        .into_iter()
        .find(|&p| sys::comm(p).as_deref() == Some("tini"))
}

fn require_tini(l: &Layout, i: u32) -> Result<u32> {
    tini_pid(l, i).with_context(|| {
        format!(
            "node {i} of {} is not running (no tini in namespace {}); run `openmosix-testbed up` again",
            l.name,
            l.netns(i)
        )
    })
}

/// `nsenter` into node i's net, PID and mount namespaces (through its tini).
fn nsenter(tini: u32) -> Command {
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

/// First pid of node i's range: its own processes start there.
pub fn pid_base(i: u32) -> u32 {
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

/// Starts sshd in node i's namespaces; it daemonizes and is reparented to tini.
fn spawn_sshd(l: &Layout, i: u32) -> Result<()> {
    let config = l.sshd_config(i);
    let log = l.log(i);
    let args: [&OsStr; 4] = ["-f".as_ref(), config.as_ref(), "-E".as_ref(), log.as_ref()];
    start_in_node(l, i, "sshd", SSHD_PATH.as_ref(), &args)
}

/// Runs `program args` inside node i (nsenter via its tini), output to the node's log; the
/// program is expected to go to the background by itself (sshd, the discovery daemon).
fn start_in_node(l: &Layout, i: u32, what: &str, program: &OsStr, args: &[&OsStr]) -> Result<()> {
    let tini = require_tini(l, i)?;
    let log = log_file(l, i)?;
    let mut cmd = nsenter(tini);
    cmd.arg("--")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
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

fn wait_port(l: &Layout, i: u32, deadline: Instant) -> Result<()> {
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

/// `down --name NAME`: removes everything of that testbed; nothing there is fine.
pub fn down_one(name: &str) -> Result<()> {
    check_name(name)?;
    sys::require_root()?;
    sys::require_tools(&[IP, KILL])?;
    let l = Layout {
        name: name.to_owned(),
        net: 0,
    };
    let namespaces: BTreeSet<String> = sys::netns_list()?.into_iter().collect();

    // Kill every process of every node, then wait until they are gone.
    let victims = |i: u32| -> Vec<u32> {
        let mut pids = if namespaces.contains(&l.netns(i)) {
            sys::netns_pids(&l.netns(i))
        } else {
            Vec::new()
        };
        if let Some(outer) = recorded_outer_pid(&l, i) {
            pids.push(outer);
        }
        pids
    };
    let all = || (1..=MAX_NODES).flat_map(victims).collect::<Vec<u32>>();
    let pids = all();
    if !pids.is_empty() {
        sys::kill9(&pids);
        let gone = sys::wait_until(Duration::from_secs(5), || {
            let left = all();
            sys::kill9(&left);
            left.is_empty()
        });
        if !gone {
            eprintln!(
                "openmosix-testbed: warning: processes of {name} still alive: {:?}",
                all()
            );
        }
    }

    for i in 1..=MAX_NODES {
        let ns = l.netns(i);
        if namespaces.contains(&ns) {
            sys::ip(["netns", "delete", &ns])?;
        }
    }
    let links: BTreeSet<String> = sys::links()?.into_iter().collect();
    for i in 1..=MAX_NODES {
        let veth = l.veth(i);
        if links.contains(&veth) {
            // Deleting one end deletes the pair; it may be gone already with its namespace.
            let _ = sys::ip(["link", "delete", &veth]);
        }
    }
    if links.contains(&l.bridge()) {
        sys::ip(["link", "delete", &l.bridge()])?;
    }
    let dir = l.state_dir();
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

/// The recorded outer pid of node i, if that process still is the node's `unshare`.
fn recorded_outer_pid(l: &Layout, i: u32) -> Option<u32> {
    let pid: u32 = fs::read_to_string(l.node_pid(i))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let argv = sys::cmdline(pid);
    let ours =
        argv.iter().any(|a| a.ends_with("unshare")) && argv.iter().any(|a| a == "--kill-child");
    (ours && sys::alive(pid)).then_some(pid)
}

/// Names of every testbed on this machine: state folders and node namespaces.
fn all_names() -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    if let Ok(entries) = fs::read_dir(STATE_ROOT) {
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str()
                && check_name(name).is_ok()
                && entry.path().is_dir()
            {
                names.insert(name.to_owned());
            }
        }
    }
    for ns in sys::netns_list()? {
        if let Some((name, node)) = ns.rsplit_once("-n")
            && check_name(name).is_ok()
            && node
                .parse::<u32>()
                .is_ok_and(|n| (1..=MAX_NODES).contains(&n))
        {
            names.insert(name.to_owned());
        }
    }
    Ok(names)
}

/// `down --all`.
pub fn down_all() -> Result<()> {
    sys::require_root()?;
    sys::require_tools(&[IP, KILL])?;
    for name in all_names()? {
        eprintln!("openmosix-testbed: removing {name}");
        down_one(&name).with_context(|| format!("removing testbed {name:?}"))?;
    }
    let _ = fs::remove_dir(STATE_ROOT); // only if empty
    Ok(())
}

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
    say(&format!(
        "testbed {name}: {} node(s), 10.77.{}.0/24, cluster file {}",
        meta.nodes,
        l.net,
        l.cluster_file().display()
    ));
    let mut healthy = true;
    for i in 1..=meta.nodes {
        let ns = namespaces.contains(&l.netns(i));
        let running = ns && tini_pid(&l, i).is_some();
        let sshd = ns && sys::port_open(&l.addr(i), Duration::from_millis(500));
        healthy &= ns && running && sshd;
        say(&format!(
            "node {i:>2}  {:<13} namespace {:<7} init {:<11} sshd {}",
            l.addr(i),
            if ns { "present" } else { "missing" },
            if running { "running" } else { "not running" },
            if sshd { "listening" } else { "not listening" },
        ));
    }
    Ok(healthy)
}

fn load_node(name: &str, node: u32) -> Result<Layout> {
    sys::require_root()?;
    let (l, meta) = Layout::load(name)?;
    if !(1..=meta.nodes).contains(&node) {
        bail!("testbed {name} has nodes 1..={}, not {node}", meta.nodes);
    }
    Ok(l)
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
    let pids = sshd_pids(&l, node);
    sys::kill9(&pids);
    let gone = sys::wait_until(Duration::from_secs(5), || {
        let left = sshd_pids(&l, node);
        sys::kill9(&left);
        left.is_empty()
    });
    if !gone {
        bail!(
            "node {node}: sshd processes survive SIGKILL: {:?}",
            sshd_pids(&l, node)
        );
    }
    eprintln!(
        "openmosix-testbed: node {node}: killed {} sshd process(es)",
        pids.len()
    );
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
    spawn_sshd(&l, node)?;
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
