//! Fan-out through gateway nodes (docs/fan-out.md): a node with `via = G` in the cluster
//! file is reached through the relay (`openmosix gateway serve`, [`relay`]) that the
//! workstation starts on gateway G over its one SSH connection to G. Each group node's
//! channel is an ordinary [`AgentConn`] over an in-memory pipe whose lines the [`Link`]
//! tags with the channel's number: the hello, the identity check, requests and pushes are
//! exactly those of a direct node. Side channels (migration images and page streams) run
//! `openmosix gateway pipe DEST -- AGENT ARGS…` on the gateway, which opens them on the
//! node over the gateway's own SSH and copies their bytes.
//!
//! One link per gateway is shared by its group's supervisors; when it ends (the gateway
//! lost), every channel on it closes at once and the group's nodes go down with it.

pub mod relay;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use openssh::Session;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::ClientError;
use super::conn::AgentConn;
use super::transport::{Aux, ClientOptions, agent_command, open_session, ssh_reason};
use openmosix_hpc::map::Via;
use openmosix_hpc::model::NodeId;

/// The program run on a gateway: the suite's command line, which links this crate's ssh
/// transport (the agent links no ssh client).
pub const GATEWAY_PROGRAM: &str = "openmosix";

/// Buffer of each in-memory pipe between a node's [`AgentConn`] and the link.
const PIPE: usize = 256 * 1024;

type Key = (String, Option<String>, Option<std::path::PathBuf>, String);

/// One gateway's relay channel, shared by the connections of its group.
struct Link {
    out: mpsc::UnboundedSender<String>,
    channels: Mutex<HashMap<u64, mpsc::Sender<String>>>,
    /// Channels whose agent the relay is still starting, told when it runs.
    opening: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    reasons: Mutex<HashMap<u64, String>>,
    next: AtomicU64,
    closed: AtomicBool,
    gone_reason: Mutex<Option<String>>,
    session: Arc<Session>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a gateway's link is kept; its lock is held while one is started.
type LinkSlot = Arc<tokio::sync::Mutex<Weak<Link>>>;

static LINKS: LazyLock<Mutex<HashMap<Key, LinkSlot>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Where the master connection to one destination is kept; its lock is held while one
/// is opened, so that a gateway's node and its relay share one.
type SessionSlot = Arc<tokio::sync::Mutex<Weak<Session>>>;

/// A destination and the ssh config it is reached with.
type SessionKey = (String, Option<std::path::PathBuf>);

/// The master connections, by destination and ssh config: a gateway's relay starts on
/// its node's own connection (and the other way round), so the workstation keeps one
/// SSH connection per gateway.
static SESSIONS: LazyLock<Mutex<HashMap<SessionKey, SessionSlot>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The live master connection to `dest`, opened when there is none.
pub(crate) async fn shared_session(
    dest: &str,
    options: &ClientOptions,
) -> Result<Arc<Session>, String> {
    let slot = {
        let mut all = lock(&SESSIONS);
        all.retain(|_, s| s.try_lock().map_or(true, |w| w.strong_count() > 0));
        Arc::clone(
            all.entry((dest.to_owned(), options.ssh_config.clone()))
                .or_default(),
        )
    };
    let mut slot = slot.lock().await;
    if let Some(session) = slot.upgrade()
        && session.check().await.is_ok()
    {
        return Ok(session);
    }
    let session = Arc::new(open_session(dest, options).await?);
    *slot = Arc::downgrade(&session);
    Ok(session)
}

/// Opens node `node`'s agent channel at `dest` (as gateway `via` reaches it) through the
/// gateway's relay, starting the relay when none runs.
pub async fn connect_via(
    node: NodeId,
    dest: &str,
    via: &Via,
    options: &ClientOptions,
) -> Result<AgentConn, ClientError> {
    let link = link_for(via, options)
        .await
        .map_err(|reason| ClientError::Connect {
            node,
            reason: format!("gateway {} (node {}): {reason}", via.dest, via.id),
        })?;
    let ch = link.next.fetch_add(1, Ordering::Relaxed);
    let (conn_read, mut link_write) = tokio::io::duplex(PIPE);
    let (conn_write, link_read) = tokio::io::duplex(PIPE);
    let (tx, mut rx) = mpsc::channel::<String>(256);
    lock(&link.channels).insert(ch, tx);
    let (opened_tx, opened) = oneshot::channel();
    lock(&link.opening).insert(ch, opened_tx);
    let open = serde_json::json!({"open": ch, "dest": dest}).to_string();
    if link.out.send(open).is_err() {
        return Err(gateway_gone(node, via, &link));
    }
    // The relay opens the node's ssh connection first (within the caller's connect
    // time-out, as for a direct node); only then does hello's request time-out start.
    if opened.await.is_err() {
        lock(&link.channels).remove(&ch);
        let _ = link.out.send(serde_json::json!({"close": ch}).to_string());
        return Err(closed_error(node, via, &link, ch));
    }
    // Lines of the agent, to the connection.
    tokio::spawn(async move {
        while let Some(mut l) = rx.recv().await {
            l.push('\n');
            if link_write.write_all(l.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    // Lines of the connection, tagged, to the gateway; its end closes the channel there.
    {
        let link = Arc::clone(&link);
        tokio::spawn(async move {
            let mut r = BufReader::new(link_read);
            let mut buf = String::new();
            loop {
                buf.clear();
                match (&mut r)
                    .take(relay::MAX_LINE as u64)
                    .read_line(&mut buf)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = buf.trim_end();
                if line.is_empty() {
                    continue;
                }
                // The line is the connection's own serialized request: JSON already.
                if link
                    .out
                    .send(format!("{{\"to\":{ch},\"msg\":{line}}}"))
                    .is_err()
                {
                    break;
                }
            }
            lock(&link.channels).remove(&ch);
            let _ = link.out.send(serde_json::json!({"close": ch}).to_string());
        });
    }
    let keep = Box::new(Arc::clone(&link));
    match AgentConn::start(conn_read, conn_write, keep, options.request_timeout).await {
        Ok(mut conn) => {
            conn.set_aux(Aux::Via {
                session: Arc::clone(&link.session),
                prefix: pipe_prefix(dest, via, options),
            });
            Ok(conn)
        }
        Err(ClientError::Closed) => Err(closed_error(node, via, &link, ch)),
        Err(e) => Err(e),
    }
}

/// Why channel `ch` closed: the relay's words, or the gateway lost.
fn closed_error(node: NodeId, via: &Via, link: &Link, ch: u64) -> ClientError {
    let reason = lock(&link.reasons).remove(&ch);
    match reason {
        Some(reason) => ClientError::Connect {
            node,
            reason: format!("through gateway {}: {reason}", via.id),
        },
        None => gateway_gone(node, via, link),
    }
}

fn gateway_gone(node: NodeId, via: &Via, link: &Link) -> ClientError {
    let why = lock(&link.gone_reason)
        .clone()
        .unwrap_or_else(|| "the connection closed".into());
    ClientError::Connect {
        node,
        reason: format!("gateway node {} lost: {why}", via.id),
    }
}

/// `gateway pipe` arguments on the gateway for side channels to `dest`.
fn pipe_prefix(dest: &str, via: &Via, options: &ClientOptions) -> Vec<String> {
    let mut p = vec!["gateway".to_owned(), "pipe".to_owned()];
    p.extend(relay_args(via, options));
    p.extend([dest.to_owned(), "--".to_owned()]);
    p
}

/// The relay's options: the gateway's ssh config and the agent command.
fn relay_args(via: &Via, options: &ClientOptions) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(cfg) = &via.ssh_config {
        a.extend(["--ssh-config".to_owned(), cfg.clone()]);
    }
    a.extend(["--agent".to_owned(), options.remote_agent.clone()]);
    a
}

/// The live link to `via`, started when there is none (one start at a time per gateway).
async fn link_for(via: &Via, options: &ClientOptions) -> Result<Arc<Link>, String> {
    let key: Key = (
        via.dest.clone(),
        via.ssh_config.clone(),
        options.ssh_config.clone(),
        options.remote_agent.clone(),
    );
    let slot = Arc::clone(lock(&LINKS).entry(key).or_default());
    let mut slot = slot.lock().await;
    if let Some(link) = slot.upgrade().filter(|l| !l.closed.load(Ordering::SeqCst)) {
        return Ok(link);
    }
    let link = tokio::time::timeout(options.connect_timeout, start_link(via, options))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", options.connect_timeout)))?;
    *slot = Arc::downgrade(&link);
    Ok(link)
}

async fn start_link(via: &Via, options: &ClientOptions) -> Result<Arc<Link>, String> {
    let session = shared_session(&via.dest, options).await?;
    let mut child = agent_command(&session, GATEWAY_PROGRAM)
        .arg("gateway")
        .arg("serve")
        .args(relay_args(via, options))
        .stdin(openssh::Stdio::piped())
        .stdout(openssh::Stdio::piped())
        .stderr(openssh::Stdio::piped())
        .spawn()
        .await
        .map_err(|e| ssh_reason(&e))?;
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) = (
        child.stdin().take(),
        child.stdout().take(),
        child.stderr().take(),
    ) else {
        return Err("ssh channel pipes missing".into());
    };
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    let ready = (&mut reader).take(4096).read_line(&mut first).await;
    let ok = ready.is_ok()
        && serde_json::from_str::<Value>(&first)
            .is_ok_and(|v| v.get("ready").and_then(Value::as_str) == Some("gateway"));
    if !ok {
        let mut said = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            (&mut stderr).take(4096).read_to_end(&mut said),
        )
        .await;
        let said = String::from_utf8_lossy(&said);
        return Err(said
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or_else(
                || "the relay did not start".to_owned(),
                |l| l.trim().to_owned(),
            ));
    }
    let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
    let link = Arc::new(Link {
        out,
        channels: Mutex::new(HashMap::new()),
        opening: Mutex::new(HashMap::new()),
        reasons: Mutex::new(HashMap::new()),
        next: AtomicU64::new(1),
        closed: AtomicBool::new(false),
        gone_reason: Mutex::new(None),
        session: Arc::clone(&session),
    });
    let weak = Arc::downgrade(&link);
    tokio::spawn(async move {
        // Holds the relay's channel (and the session) while the link lives.
        let _child = child;
        let _session = session;
        let write = async {
            while let Some(mut l) = out_rx.recv().await {
                l.push('\n');
                if stdin.write_all(l.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    return;
                }
            }
        };
        let read = read_link(reader, weak.clone());
        tokio::select! {
            () = write => {}
            () = read => {}
        }
        if let Some(link) = weak.upgrade() {
            link.close("the gateway's relay ended");
        }
    });
    Ok(link)
}

impl Link {
    fn close(&self, why: &str) {
        lock(&self.gone_reason).get_or_insert_with(|| why.to_owned());
        self.closed.store(true, Ordering::SeqCst);
        // Dropping the senders ends every node's pipe: its connection closes.
        lock(&self.channels).clear();
        lock(&self.opening).clear();
    }
}

/// Routes the relay's lines to the node channels until it ends.
async fn read_link<R: tokio::io::AsyncRead + Unpin>(mut reader: BufReader<R>, link: Weak<Link>) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader)
            .take(relay::MAX_RESPONSE as u64 + 64)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Some(link) = link.upgrade() else { return };
        let Ok(Value::Object(mut v)) = serde_json::from_slice::<Value>(&buf) else {
            tracing::warn!("gateway sent a line that is not its protocol");
            continue;
        };
        if let Some(ch) = v.get("opened").and_then(Value::as_u64) {
            if let Some(tx) = lock(&link.opening).remove(&ch) {
                let _ = tx.send(());
            }
        } else if let Some(ch) = v.get("from").and_then(Value::as_u64) {
            let tx = lock(&link.channels).get(&ch).cloned();
            if let (Some(tx), Some(msg)) = (tx, v.remove("msg")) {
                let _ = tx.send(msg.to_string()).await;
            }
        } else if let Some(ch) = v.get("closed").and_then(Value::as_u64) {
            let reason = v
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("closed")
                .to_owned();
            let mut reasons = lock(&link.reasons);
            if reasons.len() >= 1024 {
                reasons.clear();
            }
            reasons.insert(ch, reason);
            drop(reasons);
            lock(&link.channels).remove(&ch);
            lock(&link.opening).remove(&ch);
        } else if let Some(r) = v.get("refused") {
            tracing::warn!("gateway refused a line: {r}");
        }
    }
}
