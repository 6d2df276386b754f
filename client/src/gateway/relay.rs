//! The gateway side of fan-out (`openmosix gateway serve`, docs/fan-out.md): one channel
//! from the workstation carries the agent protocol of a whole group of nodes, each line
//! tagged with its node; the relay opens each node's agent over its own SSH (its own ssh
//! config and keys, host keys checked) and copies lines both ways.
//!
//! Every line the workstation sends is checked here before it goes anywhere: at most
//! [`MAX_LINE`] bytes, JSON, one of the three frames below, a channel number, a
//! destination that ssh cannot read as an option, a request that is an object with a
//! numeric `id` and a text `op` (the agent checks the rest, as always). What a peer can
//! make the relay hold is bounded: [`MAX_NODES`] nodes, [`NODE_QUEUE`] lines waiting per
//! node (one more is answered with an error, not queued), [`MAX_RESPONSE`] bytes a line
//! from an agent.
//!
//! Lines name a channel C, a number the workstation picks for each node channel it opens
//! (never used twice on one relay, so a late line of an old channel never reaches a new
//! one):
//!
//! ```text
//! workstation → gateway   {"open":C,"dest":"root@10.0.0.5"}   start an agent there
//!                         {"to":C,"msg":REQUEST}              a request line for it
//!                         {"close":C}                          stop it
//! gateway → workstation   {"ready":"gateway","max_nodes":N}   first line
//!                         {"opened":C}                         its agent runs
//!                         {"from":C,"msg":LINE}                a line that agent sent
//!                         {"closed":C,"reason":"sentence"}     the channel ended
//!                         {"refused":LINE}                     a line with no channel refused
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::sync::mpsc;

use super::super::transport::{ClientOptions, agent_command, open_session, ssh_reason};
use super::shared_session;
use openmosix_hpc::map::Dest;

/// The longest line the workstation may send (as the agent's own limit).
pub const MAX_LINE: usize = 1024 * 1024;
/// The longest line relayed from an agent (as the client's own limit).
pub const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// The most nodes one relay serves at once.
pub const MAX_NODES: usize = 4096;
/// Lines waiting for one node's agent (an agent runs at most 8 calls at once).
pub const NODE_QUEUE: usize = 64;
/// Lines waiting to go to the workstation.
const OUT_QUEUE: usize = 1024;

/// Serves the workstation on `input`/`output` until `input` ends; each node's agent is
/// started with `options` (the gateway's ssh config, the agent command).
pub async fn serve<R, W>(input: R, output: W, options: ClientOptions)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel::<String>(OUT_QUEUE);
    let writer = tokio::spawn(write_lines(output, out_rx));
    let _ = out_tx
        .send(json!({"ready": "gateway", "max_nodes": MAX_NODES}).to_string())
        .await;
    let options = Arc::new(options);
    let masters: Masters = Arc::default();
    let nodes: Arc<Mutex<HashMap<u64, mpsc::Sender<String>>>> = Arc::default();
    let mut reader = BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await;
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.len() > MAX_LINE {
            // Skip the rest of the line; it is not read into memory.
            if buf.last() != Some(&b'\n') && !skip_line(&mut reader).await {
                break;
            }
            let _ = out_tx.send(refusal(None, "a line longer than 1 MiB")).await;
            continue;
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match frame(&buf) {
            Err((node, why)) => {
                let _ = out_tx.send(refusal(node, &why)).await;
            }
            Ok(Frame::Open(k, dest)) => {
                let Some(rx) = register(&nodes, k) else {
                    let _ = out_tx
                        .send(closed(
                            k,
                            &format!("the gateway serves at most {MAX_NODES} nodes"),
                        ))
                        .await;
                    continue;
                };
                let tx = held_sender(&nodes, k).unwrap_or_else(|| mpsc::channel(1).0);
                let (out, nodes, options, masters) = (
                    out_tx.clone(),
                    Arc::clone(&nodes),
                    Arc::clone(&options),
                    Arc::clone(&masters),
                );
                tokio::spawn(async move {
                    let reason = node_task(k, &dest, rx, &out, &options, &masters).await;
                    let _ = out.send(closed(k, &reason)).await;
                    // Forget it unless the channel number was opened again since.
                    let mut held = lock(&nodes);
                    if held.get(&k).is_some_and(|t| t.same_channel(&tx)) {
                        held.remove(&k);
                    }
                });
            }
            Ok(Frame::To(k, msg)) => match held_sender(&nodes, k) {
                Some(tx) => {
                    if tx.try_send(msg.clone()).is_err() {
                        let id = id_of(&msg);
                        let _ = out_tx.send(busy(k, id)).await;
                    }
                }
                None => {
                    let _ = out_tx.send(closed(k, "not open on this gateway")).await;
                }
            },
            Ok(Frame::Close(k)) => {
                // Dropping the sender ends the node's task and its ssh channel.
                lock(&nodes).remove(&k);
            }
        }
    }
    lock(&nodes).clear();
    drop(out_tx);
    writer.abort();
}

/// A new channel `k` (replacing one of the same number), unless [`MAX_NODES`] are open.
fn register(
    nodes: &Mutex<HashMap<u64, mpsc::Sender<String>>>,
    k: u64,
) -> Option<mpsc::Receiver<String>> {
    let mut held = lock(nodes);
    if !held.contains_key(&k) && held.len() >= MAX_NODES {
        return None;
    }
    let (tx, rx) = mpsc::channel(NODE_QUEUE);
    held.insert(k, tx);
    Some(rx)
}

fn held_sender(
    nodes: &Mutex<HashMap<u64, mpsc::Sender<String>>>,
    k: u64,
) -> Option<mpsc::Sender<String>> {
    lock(nodes).get(&k).cloned()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The group's master connections, kept while the relay runs: a channel opened again
/// (the workstation gave up waiting while many handshakes ran at once) finds the
/// connection its first try finished. At most [`MAX_NODES`].
type Masters = Arc<Mutex<HashMap<String, Arc<openssh::Session>>>>;

enum Frame {
    Open(u64, String),
    To(u64, String),
    Close(u64),
}

/// Checks one line of the workstation; the node (if one could be read) and a sentence
/// when it is refused.
fn frame(line: &[u8]) -> Result<Frame, (Option<u64>, String)> {
    let v: Value =
        serde_json::from_slice(line).map_err(|_| (None, "a line that is not JSON".to_owned()))?;
    let obj = v
        .as_object()
        .ok_or((None, "a line that is not an object".to_owned()))?;
    let node_of = |key: &str| -> Option<u64> { obj.get(key)?.as_u64().filter(|&c| c >= 1) };
    if let Some(k) = node_of("open") {
        let dest = obj.get("dest").and_then(Value::as_str).unwrap_or_default();
        return match Dest::parse(dest) {
            Ok(Dest::Ssh(d)) if obj.len() == 2 => Ok(Frame::Open(k, d)),
            Ok(_) => Err((Some(k), "open needs an ssh dest and nothing else".into())),
            Err(e) => Err((Some(k), e)),
        };
    }
    if let Some(k) = node_of("close") {
        return Ok(Frame::Close(k));
    }
    if let Some(k) = node_of("to") {
        let msg = obj
            .get("msg")
            .and_then(Value::as_object)
            .filter(|m| {
                m.get("id").is_some_and(Value::is_u64) && m.get("op").is_some_and(Value::is_string)
            })
            .filter(|_| obj.len() == 2)
            .ok_or((Some(k), "a request needs a numeric id and an op".to_owned()))?;
        let text = serde_json::to_string(msg).map_err(|e| (Some(k), e.to_string()))?;
        return Ok(Frame::To(k, text));
    }
    Err((
        None,
        "a line that is no gateway frame (open, to, close) with a channel number".into(),
    ))
}

fn id_of(msg: &str) -> Option<u64> {
    serde_json::from_str::<Value>(msg).ok()?.get("id")?.as_u64()
}

fn closed(k: u64, reason: &str) -> String {
    json!({"closed": k, "reason": reason}).to_string()
}

/// The agent protocol's answer to a request the node could not take now.
fn busy(k: u64, id: Option<u64>) -> String {
    let msg = json!({"id": id, "err": {"kind": "io", "message":
        format!("the gateway holds {NODE_QUEUE} requests for this node already; try again")}});
    json!({"from": k, "msg": msg}).to_string()
}

fn refusal(node: Option<u64>, why: &str) -> String {
    let msg = json!({"id": null, "err": {"kind": "bad_request", "message":
        format!("the gateway refused {why}")}});
    match node {
        Some(k) => json!({"from": k, "msg": msg}).to_string(),
        None => json!({"refused": msg}).to_string(),
    }
}

async fn skip_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> bool {
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => return false,
            Ok(c) => c,
        };
        if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            reader.consume(i + 1);
            return true;
        }
        let n = chunk.len();
        reader.consume(n);
    }
}

async fn write_lines<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<String>) {
    while let Some(mut l) = rx.recv().await {
        l.push('\n');
        if w.write_all(l.as_bytes()).await.is_err() {
            return;
        }
        // Flush once the queue is drained, not after every line.
        if rx.is_empty() && w.flush().await.is_err() {
            return;
        }
    }
}

/// Runs node `k`'s agent and copies lines until one side ends; why it ended.
async fn node_task(
    k: u64,
    dest: &str,
    mut rx: mpsc::Receiver<String>,
    out: &mpsc::Sender<String>,
    options: &ClientOptions,
    masters: &Masters,
) -> String {
    let opened = tokio::time::timeout(options.connect_timeout, async {
        let session = shared_session(dest, options).await?;
        {
            let mut kept = lock(masters);
            if kept.len() < MAX_NODES || kept.contains_key(dest) {
                kept.insert(dest.to_owned(), Arc::clone(&session));
            }
        }
        let child = agent_command(&session, &options.remote_agent)
            .arg("serve")
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await
            .map_err(|e| ssh_reason(&e))?;
        Ok::<_, String>((session, child))
    })
    .await;
    let (_session, mut child) = match opened {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return e,
        Err(_) => return format!("no answer within {:?}", options.connect_timeout),
    };
    let (Some(mut stdin), Some(stdout), Some(stderr)) = (
        child.stdin().take(),
        child.stdout().take(),
        child.stderr().take(),
    ) else {
        return "ssh channel pipes missing".into();
    };
    if out.send(json!({"opened": k}).to_string()).await.is_err() {
        return "the workstation left".into();
    }
    let tail = Arc::new(std::sync::Mutex::new(String::new()));
    tokio::spawn(keep_tail(stderr, Arc::clone(&tail)));
    let to_agent = async {
        while let Some(mut l) = rx.recv().await {
            l.push('\n');
            if stdin.write_all(l.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                return "the agent stopped reading".to_owned();
            }
        }
        "closed by the workstation".to_owned()
    };
    let from_agent = async {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut r)
                .take(MAX_RESPONSE as u64)
                .read_until(b'\n', &mut buf)
                .await
            {
                Ok(0) | Err(_) => return "the connection to the agent closed".to_owned(),
                Ok(_) => {}
            }
            if buf.last() != Some(&b'\n') && buf.len() >= MAX_RESPONSE {
                return "the agent sent a line longer than 64 MiB".to_owned();
            }
            let Ok(msg) = serde_json::from_slice::<Value>(&buf) else {
                continue;
            };
            if out
                .send(json!({"from": k, "msg": msg}).to_string())
                .await
                .is_err()
            {
                return "the workstation left".to_owned();
            }
        }
    };
    let reason = tokio::select! {
        r = to_agent => r,
        r = from_agent => r,
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let said = tail.lock().map(|t| t.clone()).unwrap_or_default();
    let _ = child.disconnect().await;
    if said.is_empty() { reason } else { said }
}

async fn keep_tail<R: AsyncRead + Unpin>(mut r: R, tail: Arc<std::sync::Mutex<String>>) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&buf[..n]);
        if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty())
            && let Ok(mut t) = tail.lock()
        {
            *t = line.trim().chars().take(300).collect();
        }
    }
}

/// `openmosix gateway pipe DEST -- ARGS…`: runs `AGENT ARGS…` on the group node `DEST`
/// over this gateway's own SSH and copies its stdin, stdout and stderr: a migration's
/// side channel (`images` or `pages`, nothing else) relayed. Its exit status, or why it
/// could not start.
pub async fn pipe(dest: &str, args: &[String], options: &ClientOptions) -> Result<i32, String> {
    let Dest::Ssh(dest) = Dest::parse(dest)? else {
        return Err("a side channel needs an ssh dest".into());
    };
    let verb = args.first().map(String::as_str);
    if !matches!(verb, Some("images" | "pages"))
        || !matches!(args.get(1).map(String::as_str), Some("send" | "receive"))
    {
        return Err("the gateway relays only images and pages streams".into());
    }
    let session = Arc::new(
        tokio::time::timeout(options.connect_timeout, open_session(&dest, options))
            .await
            .map_err(|_| format!("{dest}: no answer within {:?}", options.connect_timeout))??,
    );
    let mut child = agent_command(&session, &options.remote_agent)
        .args(args)
        .stdin(openssh::Stdio::piped())
        .stdout(openssh::Stdio::piped())
        .stderr(openssh::Stdio::piped())
        .spawn()
        .await
        .map_err(|e| ssh_reason(&e))?;
    let (Some(mut cin), Some(mut cout), Some(mut cerr)) = (
        child.stdin().take(),
        child.stdout().take(),
        child.stderr().take(),
    ) else {
        return Err("ssh channel pipes missing".into());
    };
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut cin).await;
        let _ = cin.shutdown().await;
    });
    let out = async {
        let mut o = tokio::io::stdout();
        let _ = tokio::io::copy(&mut cout, &mut o).await;
        let _ = o.flush().await;
    };
    let err = async {
        let mut e = tokio::io::stderr();
        let _ = tokio::io::copy(&mut cerr, &mut e).await;
        let _ = e.flush().await;
    };
    tokio::join!(out, err);
    let status = child.wait().await.map_err(|e| ssh_reason(&e))?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests;
