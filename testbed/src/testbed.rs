//! The one-machine test cluster (`openmosix-testbed`, docs/testbed.md) for integration
//! tests. Tests that need it run as root and FAIL (never skip) when it cannot be built.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use crate::options::Options;

/// The longest a test's `openmosix` command may take: far above any move of the tests
/// (seconds) and below the client's own 10-minute step timeout, so a hang fails as one.
pub const CLI_LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// A program of the workspace, found in the target folder beside the test executable
/// (`target/debug/deps/TEST` → `target/debug/NAME`), where `scripts/test.sh` builds every
/// binary before testing.
pub fn bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("test executable path");
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate.to_string_lossy().into_owned();
        }
    }
    panic!(
        "{name} is not built: run `cargo build --workspace --bins` first (scripts/test.sh does)"
    );
}

fn testbed_bin() -> String {
    bin("openmosix-testbed")
}

fn agent_bin() -> String {
    bin("openmosix-agent")
}

fn cli_bin() -> String {
    bin("openmosix")
}

/// A running testbed: nodes 1..=`nodes` at 10.77.`net`.(10+i) (beyond 244 nodes on
/// 10.78.`net`.0/24, [`crate::addr`]), reachable over SSH.
#[derive(Debug)]
pub struct Testbed {
    pub name: String,
    pub net: u8,
    pub nodes: u32,
    /// Built with `up --isolated`: its nodes cannot reach each other.
    pub isolated: bool,
    /// cluster.toml written by `openmosix-testbed up`.
    pub cluster_file: PathBuf,
    /// /run/openmosix-testbed/NAME.
    pub state_dir: PathBuf,
}

/// Kills a test's markers ([`Testbed::kill_all`]) when the test ends, also when it fails.
#[derive(Debug)]
pub struct KillAllAtEnd<'a>(pub &'a Testbed, pub &'a str);

impl Drop for KillAllAtEnd<'_> {
    fn drop(&mut self) {
        self.0.kill_all(self.1);
    }
}

/// The testbed of this test process, or why it could not be built.
static SHARED: OnceLock<Result<(Options, Testbed), String>> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs the tests that take it one at a time (they share one testbed); a test that
/// panicked while holding it does not poison it for the others.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Quotes one word for the remote shell ssh hands its command line to.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// `what` and how it ended: exit status, stdout and stderr (for failure messages).
pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

/// What a command wrote, stdout then stderr, as one text (to look for a sentence in
/// either).
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The stdout of a command that must have succeeded; fails the test with
/// [`describe`] otherwise.
pub fn stdout_ok(what: &str, out: &Output) -> String {
    assert!(out.status.success(), "{}", describe(what, out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Testbed {
    /// Brings up, once per test process, a testbed with this name, net and size (removing
    /// an earlier one of the same name), with the binaries cargo built for this test.
    /// Every test of the binary gets the same one; it is left running when the process
    /// ends (`openmosix-testbed down --all` removes it). Panics with the testbed's stderr
    /// if it cannot be built.
    pub fn shared(name: &str, net: u8, nodes: u32) -> &'static Testbed {
        Self::shared_with(name, net, nodes, &[])
    }

    /// [`Testbed::shared`] with more options for `openmosix-testbed up` (e.g. `["--discovery"]`, `["--bare", "3"]`).
    pub fn shared_with(name: &str, net: u8, nodes: u32, extra: &[&str]) -> &'static Testbed {
        Options::new(name, net, nodes).args(extra).shared()
    }

    /// [`Testbed::shared`] for these options ([`Options::shared`]).
    pub(crate) fn shared_options(options: &Options) -> &'static Testbed {
        let tb = SHARED.get_or_init(|| Self::up(options).map(|tb| (options.clone(), tb)));
        match tb {
            Ok((asked, tb)) => {
                assert!(
                    asked == options,
                    "Testbed::shared({options:?}) but this process already has {tb:?}"
                );
                tb
            }
            Err(e) => panic!(
                "the testbed could not be built (tests need root, sshd, tini, iproute2):\n{e}"
            ),
        }
    }

    /// Runs `openmosix-testbed up` for these options with the binaries cargo built for
    /// this test.
    pub(crate) fn up(options: &Options) -> Result<Testbed, String> {
        let Options {
            name, net, nodes, ..
        } = options;
        let out = Command::new(testbed_bin())
            .args(["up", &nodes.to_string(), "--agent", &agent_bin()])
            .args(options.up_args())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", testbed_bin()))?;
        if !out.status.success() {
            return Err(describe(
                &format!(
                    "openmosix-testbed up {nodes} {}",
                    options.up_args().join(" ")
                ),
                &out,
            ));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let cluster_file = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        if !cluster_file.is_file() {
            return Err(describe(
                "openmosix-testbed up printed no cluster file",
                &out,
            ));
        }
        let state_dir = cluster_file.parent().map(PathBuf::from).unwrap_or_default();
        Ok(Testbed {
            name: name.clone(),
            net: *net,
            nodes: *nodes,
            isolated: options.isolated,
            cluster_file,
            state_dir,
        })
    }

    /// `openmosix-testbed down --name NAME`: removes this testbed.
    pub fn down(&self) -> Result<(), String> {
        self.testbed_ok(&["down"])
    }

    /// The address of node i (10.77.K.(10+i) for the first 244 nodes, [`crate::addr`]).
    pub fn addr(&self, node: u32) -> String {
        crate::addr::node_addr(self.net, node)
    }

    /// Node `node`'s agent state folder (`nodeI/state`, docs/testbed.md).
    pub fn node_state(&self, node: u32) -> PathBuf {
        self.state_dir.join(format!("node{node}/state"))
    }

    /// Where node `node`'s agent keeps images that fit in memory (its agents run as
    /// root).
    pub fn node_memory_images(&self, node: u32) -> PathBuf {
        openmosix_hpc::memory_images::default_dir(&self.node_state(node), 0)
    }

    /// The agent copy the testbed's nodes run.
    pub fn agent_path(&self) -> PathBuf {
        self.state_dir.join("bin/openmosix-agent")
    }

    /// Starts node `node`'s discovery daemon as `up --discovery` does (it goes to the
    /// background by itself); panics with its output when it does not start.
    pub fn start_discovery(&self, node: u32) {
        let agent = self.agent_path();
        let state = self.node_state(node);
        let out = self.exec(
            node,
            &[
                agent.to_str().expect("utf-8 path"),
                "discover",
                "-i",
                "eth0",
                "--id",
                &node.to_string(),
                "--state-dir",
                state.to_str().expect("utf-8 path"),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("node {node}: discover"), &out)
        );
    }

    /// The ssh client config of the testbed (host keys checked).
    pub fn ssh_config(&self) -> PathBuf {
        self.state_dir.join("ssh_config")
    }

    /// `ssh -F <ssh_config> <addr> -- argv`, each word quoted for the remote shell.
    pub fn ssh(&self, node: u32, argv: &[&str]) -> Output {
        self.ssh_with(node, &[], argv)
    }

    /// Like [`Testbed::ssh`] with extra ssh options (e.g. `["-o", "X=y"]`) before the host.
    pub fn ssh_with(&self, node: u32, options: &[&str], argv: &[&str]) -> Output {
        let remote: Vec<String> = argv.iter().map(|w| shell_quote(w)).collect();
        Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .args(options)
            .arg(self.addr(node))
            .arg("--")
            .args(remote)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run ssh")
    }

    /// `ssh -F <ssh_config> <addr> -- argv` with stdin, stdout and stderr piped, to feed
    /// a remote command by hand (e.g. a crafted image stream to `images receive`).
    pub fn ssh_command(&self, node: u32, argv: &[&str]) -> Command {
        let remote: Vec<String> = argv.iter().map(|w| shell_quote(w)).collect();
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(self.ssh_config())
            .arg(self.addr(node))
            .arg("--")
            .args(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn testbed(&self) -> Command {
        Command::new(testbed_bin())
    }

    /// Makes folder `dir` full on node `node`: a 64 KiB tmpfs (0700, as the agent makes
    /// its folders) mounted over it in the node's mount namespace, so that nothing an
    /// agent writes there fits; unmounted when the guard goes.
    pub fn full_folder(&self, node: u32, dir: &Path) -> FullFolder<'_> {
        use std::os::unix::fs::DirBuilderExt as _;
        // The folder under the mount stays after it: 0700 too.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .expect("the folder to fill");
        let path = dir.to_string_lossy().into_owned();
        let mount = [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=64k,mode=0700",
            "tmpfs",
            &path,
        ];
        let mounted = self.exec(node, &mount);
        assert!(mounted.status.success(), "{mounted:?}");
        FullFolder {
            bed: self,
            node,
            path,
        }
    }

    /// `openmosix-testbed exec I -- argv`: runs argv inside node i, output captured.
    pub fn exec(&self, node: u32, argv: &[&str]) -> Output {
        self.exec_command(node, argv)
            .output()
            .expect("cannot run openmosix-testbed exec")
    }

    /// Like [`Testbed::exec`] with stdin, stdout and stderr on /dev/null, so that a
    /// background process it leaves (`setsid -f …`) does not hold a pipe open.
    pub fn exec_status(&self, node: u32, argv: &[&str]) -> ExitStatus {
        self.exec_command(node, argv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("cannot run openmosix-testbed exec")
    }

    fn exec_command(&self, node: u32, argv: &[&str]) -> Command {
        let mut cmd = self.testbed();
        cmd.args(["exec", &node.to_string(), "--name", &self.name, "--"])
            .args(argv)
            .stdin(Stdio::null());
        cmd
    }

    fn testbed_ok(&self, args: &[&str]) -> Result<(), String> {
        let what = format!("openmosix-testbed {} --name {}", args.join(" "), self.name);
        let out = self
            .testbed()
            .args(args)
            .args(["--name", &self.name])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(describe(&what, &out))
        }
    }

    /// Kills every sshd of node i (its SSH connections drop).
    pub fn sshd_stop(&self, node: u32) {
        self.testbed_ok(&["sshd", "stop", &node.to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts node i's sshd again and waits until it accepts connections.
    pub fn sshd_start(&self, node: u32) {
        self.try_sshd_start(node).unwrap_or_else(|e| panic!("{e}"));
    }

    /// [`Testbed::sshd_start`] that reports failure instead of panicking (for `Drop` guards).
    pub fn try_sshd_start(&self, node: u32) -> Result<(), String> {
        self.testbed_ok(&["sshd", "start", &node.to_string()])
    }

    /// `openmosix --cluster <cluster_file> args`.
    pub fn cli(&self, args: &[&str]) -> Output {
        crate::process::output_within(&mut self.cli_command(args), CLI_LIMIT)
    }

    /// Runs the CLI and returns its stdout, failing the test with its stderr on a
    /// non-zero exit.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "openmosix {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// `openmosix --json ps NODE`: one object per process of the node.
    pub fn ps(&self, node: u32) -> Vec<serde_json::Value> {
        self.cli_ok(&["--json", "ps", &node.to_string()])
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// The `openmosix --cluster <cluster_file> args` command, to adjust before running.
    pub fn cli_command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(cli_bin());
        cmd.arg("--cluster")
            .arg(&self.cluster_file)
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Node `node`'s admin switches: the `admin` object of `openmosix --json mosctl NODE status`.
    pub fn admin(&self, node: u32) -> serde_json::Value {
        let status: serde_json::Value =
            serde_json::from_str(&self.cli_ok(&["--json", "mosctl", &node.to_string(), "status"]))
                .expect("json");
        status["admin"].clone()
    }

    /// Process `pid` of node `node` as `openmosix --json ps` reports it, if it is there.
    pub fn find(&self, node: u32, pid: i64) -> Option<serde_json::Value> {
        self.ps(node)
            .into_iter()
            .find(|p| p["pid"].as_i64() == Some(pid))
    }

    /// `openmosix signal NODE PID KILL`, whatever comes of it (for cleaning up).
    pub fn kill(&self, node: u32, pid: i64) {
        let _ = self.cli(&["signal", &node.to_string(), &pid.to_string(), "KILL"]);
    }

    /// Kills every process whose command line is `cmdline`, on every node (the markers
    /// of a test, wherever they went); a node that does not answer is left alone.
    pub fn kill_all(&self, cmdline: &str) {
        for node in 1..=self.nodes {
            let out = self.cli(&["--json", "ps", &node.to_string()]);
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let p: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
                if p["cmdline"] == cmdline
                    && let Some(pid) = p["pid"].as_i64()
                {
                    self.kill(node, pid);
                }
            }
        }
    }

    /// `openmosix run NODE FLAGS… -- ARGV…`: the pid of the job started.
    pub fn run_job(&self, node: u32, flags: &[&str], argv: &[&str]) -> i64 {
        let node = node.to_string();
        let mut args = vec!["run", node.as_str()];
        args.extend_from_slice(flags);
        args.push("--");
        args.extend_from_slice(argv);
        self.cli_ok(&args).trim().parse().expect("a pid")
    }

    /// `ssh NODE openmosix-agent serve` with stdin and stdout piped: an agent session to
    /// speak the protocol with by hand.
    pub fn agent_session(&self, node: u32) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg(self.ssh_config())
            .arg(self.addr(node))
            .args(["openmosix-agent", "serve"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        cmd
    }

    /// A copy of the testbed's ssh config, written to `dir/ssh_config`, whose known_hosts
    /// is `known_hosts` (for host-key scenarios); its path.
    pub fn ssh_config_with_known_hosts(&self, dir: &Path, known_hosts: &Path) -> PathBuf {
        let original = std::fs::read_to_string(self.ssh_config()).expect("ssh_config");
        let theirs = self.state_dir.join("known_hosts");
        let text = original.replace(
            &theirs.display().to_string(),
            &known_hosts.display().to_string(),
        );
        assert_ne!(text, original, "the ssh_config names its known_hosts");
        let path = dir.join("ssh_config");
        std::fs::write(&path, text).expect("write ssh_config");
        path
    }

    /// The fingerprint of the nodes' host key, as `ssh-keygen -l` prints it.
    pub fn host_key_fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.state_dir.join("host_key.pub"))
            .output()
            .expect("ssh-keygen");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("a fingerprint")
            .to_owned()
    }

    /// A known_hosts line that gives node `node`'s address another ed25519 key (made in
    /// `dir`): its host key has changed, as far as that line is concerned.
    pub fn changed_key_line(&self, node: u32, dir: &Path) -> String {
        let other = dir.join("other");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other)
            .status()
            .expect("ssh-keygen");
        assert!(st.success());
        let public = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
        let mut words = public.split_whitespace();
        format!(
            "{} {} {}\n",
            self.addr(node),
            words.next().expect("type"),
            words.next().expect("blob")
        )
    }
}

/// A folder made full by [`Testbed::full_folder`]; unmounted when dropped.
#[derive(Debug)]
pub struct FullFolder<'a> {
    bed: &'a Testbed,
    node: u32,
    path: String,
}

impl Drop for FullFolder<'_> {
    fn drop(&mut self) {
        let _ = self.bed.exec(self.node, &["umount", &self.path]);
    }
}
