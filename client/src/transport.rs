//! Opening an agent channel: over SSH with the `openssh` crate, or by spawning the agent
//! locally.
//!
//! Over SSH each node has one master connection (an `ssh` process, the only one a node
//! costs the workstation); channels on it are opened by speaking ssh's multiplexing
//! protocol from this process (openssh's native mux), or with `OPENMOSIX_SSH_MUX=process`
//! by an `ssh` process per channel as before.
//!
//! Over SSH the command line is fixed: `sh -c AGENT_LOOKUP AGENT serve` (every word
//! escaped by `openssh`), where [`AGENT_LOOKUP`] runs the agent that `openmosix node add`
//! installed in [`INSTALL_DIR`] if there is one, else `AGENT` from PATH. Node ids, pids
//! and commands only ever travel inside the JSON protocol.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use openssh::Session;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};

use super::ClientError;
use super::conn::AgentConn;
use openmosix_hpc::map::{Cluster, ClusterNode, Dest};
use openmosix_hpc::model::NodeId;

/// Where `openmosix node add` installs the agent on a node, relative to the login's $HOME.
pub const INSTALL_DIR: &str = ".local/lib/openmosix";

/// The remote script that finds the agent (or, on a gateway, the relay program):
/// `sh -c AGENT_LOOKUP PROGRAM ARGS…`. For the suite's own names (`openmosix-agent`,
/// `openmosix`) the copy in `~/.local/lib/openmosix/` (put there by `node add`) comes
/// first, then PATH; another agent command is run as it is. It holds no user data:
/// PROGRAM arrives as `$0` and ARGS as the positional parameters.
pub const AGENT_LOOKUP: &str = concat!(
    "a=\"$0\"; f=\"$HOME/.local/lib/openmosix/$a\"; ",
    "case \"$a\" in openmosix-agent|openmosix) if [ -x \"$f\" ]; then exec \"$f\" \"$@\"; fi;; esac; ",
    "if command -v \"$a\" >/dev/null 2>&1; then exec \"$a\" \"$@\"; fi; ",
    "echo \"$a: not installed on this node (not on PATH, not in ~/.local/lib/openmosix); ",
    "openmosix node add installs it\" >&2; exit 127"
);

/// `sh -c AGENT_LOOKUP AGENT` on a session; add the agent's arguments with `.arg`.
pub(crate) fn agent_command(
    session: &Arc<Session>,
    agent: &str,
) -> openssh::OwningCommand<Arc<Session>> {
    let mut cmd = Arc::clone(session).arc_command("sh");
    cmd.arg("-c").arg(AGENT_LOOKUP).arg(agent);
    cmd
}

/// How the client reaches agents.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// An ssh_config(5) file passed with `-F`; `None` = the user's own.
    pub ssh_config: Option<PathBuf>,
    /// The agent command on remote nodes.
    pub remote_agent: String,
    /// The agent binary for local nodes.
    pub local_agent: PathBuf,
    /// State folder for local agents (`--state-dir`); `None` = the agent's default.
    pub local_state_dir: Option<PathBuf>,
    /// Time-out for opening a channel (ssh handshake + hello).
    pub connect_timeout: Duration,
    /// Time-out for one request.
    pub request_timeout: Duration,
}

impl ClientOptions {
    /// Options for a cluster file: its ssh config and agent command, defaults elsewhere.
    pub fn for_cluster(cluster: &Cluster) -> Self {
        ClientOptions {
            ssh_config: cluster.ssh_config.clone(),
            remote_agent: cluster.agent.clone(),
            ..ClientOptions::default()
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ssh_config: None,
            remote_agent: "openmosix-agent".into(),
            local_agent: local_agent_path(),
            local_state_dir: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
        }
    }
}

/// The agent binary to spawn for the local node: `$OPENMOSIX_AGENT`, else
/// `openmosix-agent` beside the running program, else `openmosix-agent` on PATH.
pub fn local_agent_path() -> PathBuf {
    if let Some(p) = std::env::var_os("OPENMOSIX_AGENT").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        // Test binaries live in target/*/deps; the agent is one folder up.
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("openmosix-agent");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("openmosix-agent")
}

/// Keeps the last few KiB a child wrote on stderr, to explain an early exit.
#[derive(Debug, Clone, Default)]
struct StderrTail(Arc<std::sync::Mutex<Vec<u8>>>);

impl StderrTail {
    fn collect<R: AsyncRead + Unpin + Send + 'static>(&self, mut r: R) {
        let tail = Arc::clone(&self.0);
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut t = tail
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                t.extend_from_slice(&buf[..n]);
                let excess = t.len().saturating_sub(4096);
                t.drain(..excess);
            }
        });
    }

    fn last_line(&self) -> Option<String> {
        let t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&t)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned())
    }
}

fn connect_error(node: NodeId, reason: impl Into<String>) -> ClientError {
    ClientError::Connect {
        node,
        reason: reason.into(),
    }
}

/// Explains a failed hello with what the child wrote on stderr, if anything.
async fn explain(node: NodeId, err: ClientError, tail: &StderrTail) -> ClientError {
    // Give the reader task a moment to collect what the dying child said.
    tokio::time::sleep(Duration::from_millis(100)).await;
    match (err, tail.last_line()) {
        (ClientError::Closed, Some(line)) => connect_error(node, line),
        (ClientError::Closed, None) => connect_error(node, "the agent exited at once"),
        (e, _) => e,
    }
}

/// Opens a channel to one node of a cluster, within `options.connect_timeout`.
///
/// The agent reached over SSH must say, in `hello`, that it is the node meant: when it
/// gives another id the channel is closed at once and [`ClientError::WrongNode`] comes
/// back, so no request can reach the wrong machine. The local agent is started with the
/// node's id and is not checked.
pub async fn connect_node(
    node: &ClusterNode,
    options: &ClientOptions,
) -> Result<AgentConn, ClientError> {
    let fut = async {
        match &node.dest {
            Dest::Local => connect_local(node.id, options).await,
            Dest::Ssh(dest) => {
                let conn = match &node.via {
                    Some(via) => super::gateway::connect_via(node.id, dest, via, options).await?,
                    None => connect_ssh(node.id, dest, options).await?,
                };
                check_identity(node, conn)
            }
        }
    };
    tokio::time::timeout(options.connect_timeout, fut)
        .await
        .unwrap_or_else(|_| {
            Err(connect_error(
                node.id,
                format!("no answer within {:?}", options.connect_timeout),
            ))
        })
}

/// `conn` when its agent says it is `node`, else [`ClientError::WrongNode`] (dropping
/// `conn` closes the channel).
fn check_identity(node: &ClusterNode, conn: AgentConn) -> Result<AgentConn, ClientError> {
    let says = conn.hello().node_id;
    if says == node.id {
        return Ok(conn);
    }
    let address = node
        .addresses
        .first()
        .map_or_else(|| node.dest.host().to_owned(), Clone::clone);
    tracing::warn!(node = node.id, says, %address, "wrong node: not talking to it");
    Err(ClientError::WrongNode {
        node: node.id,
        address,
        says,
    })
}

async fn connect_local(node: NodeId, options: &ClientOptions) -> Result<AgentConn, ClientError> {
    let agent = &options.local_agent;
    let timeout = options.request_timeout;
    let mut cmd = tokio::process::Command::new(agent);
    cmd.arg("serve").arg("--node-id").arg(node.to_string());
    if let Some(dir) = &options.local_state_dir {
        cmd.arg("--state-dir").arg(dir);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| connect_error(node, format!("cannot start {}: {e}", agent.display())))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(connect_error(node, "agent pipes missing"));
    };
    let tail = StderrTail::default();
    tail.collect(stderr);
    match AgentConn::start(stdout, stdin, Box::new(child), timeout).await {
        Ok(mut c) => {
            c.set_aux(Aux::Local {
                agent: agent.clone(),
                state_dir: options.local_state_dir.clone(),
            });
            Ok(c)
        }
        Err(e) => Err(explain(node, e, &tail).await),
    }
}

/// The ssh session and the agent's channel on it; dropped together.
struct SshKeep {
    _child: openssh::Child<Arc<Session>>,
    _session: Arc<Session>,
}

/// Opens the master connection to `dest`: strict host-key checking, the cluster's ssh
/// config, a master that leaves by itself when idle, a fast key exchange first
/// ([`master`]).
pub(crate) async fn open_session(dest: &str, options: &ClientOptions) -> Result<Session, String> {
    if dest.starts_with('-') {
        return Err(format!("{dest:?} is not an ssh destination"));
    }
    let dir = master::launch(dest, options).await?;
    Ok(if process_mux() {
        Session::new_process_mux(dir)
    } else {
        Session::new_native_mux(dir)
    })
}

/// Whether channels go through an `ssh` process each (`OPENMOSIX_SSH_MUX=process`, the
/// way before issue #16) instead of this process speaking ssh's multiplexing protocol to
/// the master itself: one `ssh` process per node either way for the master.
fn process_mux() -> bool {
    static PROCESS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PROCESS.get_or_init(|| std::env::var_os("OPENMOSIX_SSH_MUX").is_some_and(|v| v == "process"))
}

async fn connect_ssh(
    node: NodeId,
    dest: &str,
    options: &ClientOptions,
) -> Result<AgentConn, ClientError> {
    let session = super::gateway::shared_session(dest, options)
        .await
        .map_err(|reason| connect_error(node, reason))?;
    serve_on(node, session, options).await
}

/// Starts `AGENT serve` on an open session and says hello.
pub(crate) async fn serve_on(
    node: NodeId,
    session: Arc<Session>,
    options: &ClientOptions,
) -> Result<AgentConn, ClientError> {
    serve_on_as(node, session, options, None).await
}

/// [`serve_on`], and with `pin` `AGENT serve --node-id PIN`: the agent takes that id and
/// keeps it in its state folder (how `node add` tells an agent it installed its id).
pub(crate) async fn serve_on_as(
    node: NodeId,
    session: Arc<Session>,
    options: &ClientOptions,
    pin: Option<NodeId>,
) -> Result<AgentConn, ClientError> {
    let mut cmd = agent_command(&session, &options.remote_agent);
    cmd.arg("serve");
    if let Some(id) = pin {
        cmd.arg("--node-id").arg(id.to_string());
    }
    let mut child = cmd
        .stdin(openssh::Stdio::piped())
        .stdout(openssh::Stdio::piped())
        .stderr(openssh::Stdio::piped())
        .spawn()
        .await
        .map_err(|e| connect_error(node, ssh_reason(&e)))?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (
        child.stdin().take(),
        child.stdout().take(),
        child.stderr().take(),
    ) else {
        return Err(connect_error(node, "ssh channel pipes missing"));
    };
    let tail = StderrTail::default();
    tail.collect(stderr);
    let aux = Aux::Ssh {
        session: Arc::clone(&session),
        agent: options.remote_agent.clone(),
    };
    let keep = SshKeep {
        _child: child,
        _session: session,
    };
    match AgentConn::start(stdout, stdin, Box::new(keep), options.request_timeout).await {
        Ok(mut c) => {
            c.set_aux(aux);
            Ok(c)
        }
        Err(e) => Err(explain(node, e, &tail).await),
    }
}

/// How to open more channels to an agent: on the same SSH master, or another local child.
#[derive(Clone)]
pub enum Aux {
    /// `AGENT args…` on the node's ssh session.
    Ssh {
        /// The node's master connection.
        session: Arc<Session>,
        /// The agent command.
        agent: String,
    },
    /// `openmosix gateway pipe … DEST -- AGENT args…` on a gateway's session: the side
    /// channel opened on a node of its group by the gateway (docs/fan-out.md).
    Via {
        /// The gateway's master connection.
        session: Arc<Session>,
        /// The arguments before the agent's.
        prefix: Vec<String>,
    },
    /// A local agent process.
    Local {
        /// The agent binary.
        agent: PathBuf,
        /// Its state folder.
        state_dir: Option<PathBuf>,
    },
}

/// A side channel running `AGENT images|pages send|receive IMAGE`.
pub struct ImageStream {
    /// Where the image comes from (send).
    pub reader: Option<Box<dyn AsyncRead + Unpin + Send>>,
    /// Where the image goes to (receive).
    pub writer: Option<Box<dyn AsyncWrite + Unpin + Send>>,
    tail: StderrTail,
    child: StreamChild,
}

enum StreamChild {
    Ssh(openssh::Child<Arc<Session>>),
    Local(tokio::process::Child),
}

impl std::fmt::Debug for ImageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImageStream")
    }
}

impl ImageStream {
    /// Waits for the side channel's agent to exit; its last error line if it failed.
    pub async fn finish(mut self) -> Result<(), String> {
        self.writer = None;
        self.reader = None;
        let ok = match self.child {
            StreamChild::Ssh(c) => c
                .wait()
                .await
                .map(|s| s.success())
                .map_err(|e| e.to_string()),
            StreamChild::Local(mut c) => c
                .wait()
                .await
                .map(|s| s.success())
                .map_err(|e| e.to_string()),
        }?;
        if ok {
            Ok(())
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(self
                .tail
                .last_line()
                .unwrap_or_else(|| "the image stream ended with an error".into()))
        }
    }

    /// The last line the side channel's agent wrote on stderr, if any.
    pub fn tail_line(&self) -> Option<String> {
        self.tail.last_line()
    }

    /// Kills the side channel (a failed transfer).
    pub async fn abort(self) {
        match self.child {
            StreamChild::Ssh(c) => {
                let _ = c.disconnect().await;
            }
            StreamChild::Local(mut c) => {
                let _ = c.kill().await;
            }
        }
    }

    /// A side channel from its child's pipes (`stderr` kept for the error line).
    fn new(
        child: StreamChild,
        stdout: Option<impl AsyncRead + Unpin + Send + 'static>,
        stdin: Option<impl AsyncWrite + Unpin + Send + 'static>,
        stderr: Option<impl AsyncRead + Unpin + Send + 'static>,
    ) -> ImageStream {
        let tail = StderrTail::default();
        if let Some(e) = stderr {
            tail.collect(e);
        }
        ImageStream {
            reader: stdout.map(|r| Box::new(r) as Box<dyn AsyncRead + Unpin + Send>),
            writer: stdin.map(|w| Box::new(w) as Box<dyn AsyncWrite + Unpin + Send>),
            tail,
            child,
        }
    }
}

impl Aux {
    /// Opens `images send IMAGE` (`send = true`) or `images receive IMAGE` (with
    /// `--onto-pages` when the pages came by a page stream, and `--size` when the
    /// target may keep images in memory): the image leaves on stdout or arrives on
    /// stdin.
    pub async fn images(
        &self,
        send: bool,
        image: &str,
        onto_pages: bool,
        size: Option<u64>,
    ) -> Result<ImageStream, String> {
        let mut args = vec!["images", if send { "send" } else { "receive" }];
        if onto_pages {
            args.push("--onto-pages");
        }
        let size = size.filter(|_| !send).map(|s| s.to_string());
        if let Some(s) = &size {
            args.extend(["--size", s]);
        }
        args.push(image);
        self.side_channel(&args, !send, send).await
    }

    /// Opens `pages send IMAGE` (`send = true`) or `pages receive IMAGE`: one end of a
    /// disk-less migration's page stream, stdin and stdout both used.
    /// With `lazy` the target's pump serves a post-copy restore (`--lazy`); `size`
    /// (about the pages' bytes) lets a target that keeps images in memory choose.
    pub async fn pages(
        &self,
        send: bool,
        image: &str,
        lazy: bool,
        size: Option<u64>,
    ) -> Result<ImageStream, String> {
        let mut args = vec!["pages", if send { "send" } else { "receive" }];
        if lazy && !send {
            args.push("--lazy");
        }
        let size = size.filter(|_| !send).map(|s| s.to_string());
        if let Some(s) = &size {
            args.extend(["--size", s]);
        }
        args.push(image);
        self.side_channel(&args, true, true).await
    }

    /// Runs `AGENT args…` beside the agent, with stdin and stdout piped as asked.
    async fn side_channel(
        &self,
        args: &[&str],
        stdin: bool,
        stdout: bool,
    ) -> Result<ImageStream, String> {
        match self {
            Aux::Ssh { .. } | Aux::Via { .. } => {
                let pick = |p: bool| {
                    if p {
                        openssh::Stdio::piped()
                    } else {
                        openssh::Stdio::null()
                    }
                };
                let mut cmd = match self {
                    Aux::Via { session, prefix } => {
                        let mut c = agent_command(session, super::gateway::GATEWAY_PROGRAM);
                        c.args(prefix);
                        c
                    }
                    Aux::Ssh { session, agent } => agent_command(session, agent),
                    Aux::Local { .. } => return Err("not a remote side channel".into()),
                };
                let mut child = cmd
                    .args(args)
                    .stdin(pick(stdin))
                    .stdout(pick(stdout))
                    .stderr(openssh::Stdio::piped())
                    .spawn()
                    .await
                    .map_err(|e| ssh_reason(&e))?;
                let (stdout, stdin, stderr) = (
                    child.stdout().take(),
                    child.stdin().take(),
                    child.stderr().take(),
                );
                Ok(ImageStream::new(
                    StreamChild::Ssh(child),
                    stdout,
                    stdin,
                    stderr,
                ))
            }
            Aux::Local { agent, state_dir } => {
                let mut cmd = tokio::process::Command::new(agent);
                cmd.args(args);
                if let Some(d) = state_dir {
                    cmd.arg("--state-dir").arg(d);
                }
                let pick = |p: bool| if p { Stdio::piped() } else { Stdio::null() };
                let mut child = cmd
                    .stdin(pick(stdin))
                    .stdout(pick(stdout))
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| format!("cannot start {}: {e}", agent.display()))?;
                let (stdout, stdin, stderr) =
                    (child.stdout.take(), child.stdin.take(), child.stderr.take());
                Ok(ImageStream::new(
                    StreamChild::Local(child),
                    stdout,
                    stdin,
                    stderr,
                ))
            }
        }
    }
}

mod master;
mod words;
pub(crate) use words::ssh_reason;

#[cfg(test)]
mod tests;
