//! Thin wrappers around the system tools the testbed drives (`ip`, `kill`, …): every call
//! is an argv array given to `std::process::Command`, never a shell line.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// A program the testbed needs and the Debian package that ships it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
}

impl Tool {
    const fn new(program: &'static str, package: &'static str) -> Tool {
        Tool { program, package }
    }
}

pub const IP: Tool = Tool::new("ip", "iproute2");
pub const UNSHARE: Tool = Tool::new("unshare", "util-linux");
pub const NSENTER: Tool = Tool::new("nsenter", "util-linux");
pub const SETSID: Tool = Tool::new("setsid", "util-linux");
pub const TINI: Tool = Tool::new("tini", "tini");
pub const SSHD: Tool = Tool::new("sshd", "openssh-server");
pub const SSH_KEYGEN: Tool = Tool::new("ssh-keygen", "openssh-client");
pub const KILL: Tool = Tool::new("kill", "procps");
pub const SLEEP: Tool = Tool::new("sleep", "coreutils");

/// Where sshd must be: it re-executes itself and insists on an absolute path.
pub const SSHD_PATH: &str = "/usr/sbin/sshd";

/// Fails unless the effective user is root.
pub fn require_root() -> Result<()> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok());
    if euid != Some(0) {
        bail!("openmosix-testbed must run as root (it creates network namespaces)");
    }
    Ok(())
}

/// Looks a program up on PATH and in the sbin folders (root's tools live there).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Fails with the Debian packages to install if any of these programs is missing.
pub fn require_tools(tools: &[Tool]) -> Result<()> {
    let mut missing: Vec<Tool> = tools
        .iter()
        .copied()
        .filter(|t| find_program(t.program).is_none())
        .collect();
    if tools.iter().any(|t| t.program == SSHD.program) && !is_executable(Path::new(SSHD_PATH)) {
        missing.retain(|t| t.program != SSHD.program);
        missing.push(SSHD);
    }
    if missing.is_empty() {
        return Ok(());
    }
    let programs: Vec<&str> = missing.iter().map(|t| t.program).collect();
    let mut packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    packages.dedup();
    bail!(
        "missing program(s) {}: install them with `apt-get install {}`",
        programs.join(", "),
        packages.join(" ")
    )
}

/// Renders an argv for messages.
pub fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a command to completion; fails with its argv and stderr unless it exits 0.
/// Returns its stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{}`", show(cmd)))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{}` failed ({}): {}",
            show(cmd),
            out.status,
            err.trim().replace('\n', "; ")
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip ARGS…`.
pub fn ip<I, S>(args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Command::new("ip").args(args))
}

/// Names of the network namespaces `ip netns` knows.
pub fn netns_list() -> Result<Vec<String>> {
    let out = ip(["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Pids of the processes in a network namespace (empty if it does not exist).
pub fn netns_pids(ns: &str) -> Vec<u32> {
    ip(["netns", "pids", ns])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Pids of the processes in each of these network namespaces (`/run/netns/NAME`), from
/// one walk over /proc: what `ip netns pids` does, once for all of them. A namespace that
/// does not exist has no entry.
pub fn pids_by_netns(names: &[String]) -> HashMap<String, Vec<u32>> {
    use std::os::unix::fs::MetadataExt as _;
    let mut by_inode: HashMap<(u64, u64), &str> = HashMap::new();
    for name in names {
        if let Ok(m) = fs::metadata(Path::new(NETNS_DIR).join(name)) {
            by_inode.insert((m.dev(), m.ino()), name);
        }
    }
    let mut pids: HashMap<String, Vec<u32>> = HashMap::new();
    if by_inode.is_empty() {
        return pids;
    }
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(m) = fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue; // gone meanwhile, or a kernel thread
        };
        if let Some(name) = by_inode.get(&(m.dev(), m.ino())) {
            pids.entry((*name).to_owned()).or_default().push(pid);
        }
    }
    pids
}

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// `ip [-n NS] -force -batch -` with these lines on stdin: many `ip` commands for the
/// price of one process; with `force`, a failing line does not stop the others (and
/// the error is then not reported).
pub fn ip_batch(netns: Option<&str>, lines: &[String], force: bool) -> Result<()> {
    use std::io::Write as _;
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    if force {
        cmd.arg("-force");
    }
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run `{}`", show(&cmd)))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(lines.join("\n").as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .with_context(|| format!("feeding `{}`", show(&cmd)))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for `{}`", show(&cmd)))?;
    if !out.status.success() && !force {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`{}` failed ({}): {}",
            show(&cmd),
            out.status,
            err.trim().replace('\n', "; ")
        );
    }
    Ok(())
}

/// Names of the network interfaces of the root namespace.
pub fn links() -> Result<Vec<String>> {
    let out = ip(["-j", "link", "show"])?;
    let links: Vec<serde_json::Value> =
        serde_json::from_str(&out).context("parsing `ip -j link show`")?;
    Ok(links
        .iter()
        .filter_map(|l| l["ifname"].as_str())
        .map(str::to_owned)
        .collect())
}

/// (interface, address) of every IPv4 address of the root namespace.
pub fn ipv4_addrs() -> Result<Vec<(String, String)>> {
    let out = ip(["-j", "-4", "addr", "show"])?;
    let links: Vec<serde_json::Value> =
        serde_json::from_str(&out).context("parsing `ip -j addr show`")?;
    let mut addrs = Vec::new();
    for link in &links {
        let name = link["ifname"].as_str().unwrap_or_default();
        for a in link["addr_info"].as_array().into_iter().flatten() {
            if let Some(local) = a["local"].as_str() {
                addrs.push((name.to_owned(), local.to_owned()));
            }
        }
    }
    Ok(addrs)
}

/// The short command name of a process (`/proc/PID/comm`).
pub fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// The argv of a process (`/proc/PID/cmdline`).
pub fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Sends SIGKILL to these processes (ones already gone are fine).
pub fn kill9(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    // kill(1) exits non-zero if one of them vanished meanwhile: that is what we want anyway.
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGKILLs what `pids` lists, again and again, until it lists nothing or `limit` has
/// passed. Returns how many processes the first listing had, and whether they are gone.
pub fn kill9_until_gone(limit: Duration, pids: impl Fn() -> Vec<u32>) -> (usize, bool) {
    let first = pids();
    kill9(&first);
    let gone = wait_until(limit, || {
        let left = pids();
        kill9(&left);
        left.is_empty()
    });
    (first.len(), gone)
}

/// Polls `check` every 50 ms until it holds or `limit` has passed; returns whether it held.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a TCP connection to `addr:22` is accepted within `timeout`.
pub fn port_open(addr: &str, timeout: Duration) -> bool {
    let Ok(ip) = addr.parse() else { return false };
    TcpStream::connect_timeout(&SocketAddr::new(ip, 22), timeout).is_ok()
}

/// The last `n` lines of a text file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(n)..].join("\n");
            if tail.trim().is_empty() {
                "(empty)".to_owned()
            } else {
                tail
            }
        }
        Err(e) => format!("({}: {e})", path.display()),
    }
}

/// Pipes as large as criu's lazy-pages dump needs (about 3.3 MB each): root in a
/// container often lacks CAP_SYS_RESOURCE, which otherwise lifts the limit. The limit is
/// the machine's (the nodes share it); only ever raised.
pub fn allow_lazy_page_pipes() -> Result<()> {
    const PATH: &str = "/proc/sys/fs/pipe-max-size";
    const NEED: u64 = 4 << 20;
    let now: u64 = std::fs::read_to_string(PATH)
        .with_context(|| format!("reading {PATH}"))?
        .trim()
        .parse()
        .with_context(|| format!("{PATH} does not hold a number"))?;
    if now < NEED {
        std::fs::write(PATH, NEED.to_string())
            .with_context(|| format!("raising {PATH} to {NEED} for criu's lazy pages"))?;
    }
    Ok(())
}
