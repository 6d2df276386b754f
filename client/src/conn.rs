//! One protocol channel to one agent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::sync::{Notify, mpsc, oneshot};

use super::ClientError;
use super::procwatch::{ModelSink, ProcWatch};
use openmosix_hpc::protocol::{
    AgentError, Hello, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, Readiness, Request, RequestLine,
    ResponseLine, Update,
};

type Reply = Result<Value, AgentError>;

/// A subscription's pushes (or the agent's error for one tick).
pub type UpdateRx = mpsc::Receiver<Result<Update, AgentError>>;

/// Where a subscription's pushes go.
#[derive(Debug, Clone)]
enum Sink {
    /// To a receiver, as they come ([`AgentConn::subscribe`]).
    Channel(mpsc::Sender<Result<Update, AgentError>>),
    /// Into a process list kept where the pushes are read ([`AgentConn::watch_procs`]).
    Model(Arc<ModelSink>),
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    subs: Mutex<HashMap<u64, Sink>>,
    closed: AtomicBool,
    closed_notify: Notify,
}

impl Shared {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // Dropping the senders wakes every waiter with "closed".
        lock(&self.pending).clear();
        lock(&self.subs).clear();
        self.closed_notify.notify_waiters();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A live channel to an agent: cheap to share (`Arc`), safe to use from many tasks.
#[derive(Debug)]
pub struct AgentConn {
    out: mpsc::UnboundedSender<String>,
    shared: Arc<Shared>,
    next_id: Arc<AtomicU64>,
    hello: Hello,
    /// The agent's answer to `readiness`, once asked ([`AgentConn::readiness`]).
    readiness: tokio::sync::OnceCell<Readiness>,
    timeout: Duration,
    /// How to open more channels to the same agent (image streams).
    aux: Option<super::transport::Aux>,
    /// Whatever keeps the stream alive (the ssh child, the local agent process).
    _keep: Mutex<Box<dyn std::any::Any + Send>>,
}

/// How long [`AgentConn::readiness`] waits for an agent's criu checks (the agent gives
/// up on them after 120 s and says so).
const READINESS_WAIT: Duration = Duration::from_secs(130);

/// The longest response line the client accepts (a process list of a big node fits).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

impl AgentConn {
    /// Starts the protocol on `reader`/`writer` and performs `hello`. `keep` is held for
    /// as long as the connection lives.
    pub async fn start<R, W>(
        reader: R,
        writer: W,
        keep: Box<dyn std::any::Any + Send>,
        timeout: Duration,
    ) -> Result<AgentConn, ClientError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let out = pump(reader, writer, &shared);
        let mut conn = AgentConn {
            out,
            shared,
            next_id: Arc::new(AtomicU64::new(1)),
            hello: Hello {
                protocol: 0,
                agent_version: String::new(),
                node_id: 0,
                backend: String::new(),
                ops: Vec::new(),
                migration: openmosix_hpc::protocol::Capability {
                    available: false,
                    detail: String::new(),
                },
                predump: false,
                postcopy: false,
                memory_images: false,
                checking: false,
                postcopy_image_link: false,
            },
            readiness: tokio::sync::OnceCell::new(),
            timeout,
            aux: None,
            _keep: Mutex::new(keep),
        };
        // Negotiation: the agent answers with the newest version both speak (an agent of
        // protocol 1 ignores the field and answers 1).
        let hello: Hello = conn
            .request(Request::Hello {
                protocol: Some(PROTOCOL_VERSION),
            })
            .await?;
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&hello.protocol) {
            return Err(ClientError::Protocol(format!(
                "agent speaks protocol {} but this program speaks \
                 {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION} (agent {})",
                hello.protocol, hello.agent_version
            )));
        }
        conn.hello = hello;
        Ok(conn)
    }

    /// Sets how to open side channels (image streams) to this agent.
    pub(crate) fn set_aux(&mut self, aux: super::transport::Aux) {
        self.aux = Some(aux);
    }

    /// How to open side channels to this agent, if the transport can.
    pub(crate) fn aux(&self) -> Option<&super::transport::Aux> {
        self.aux.as_ref()
    }

    /// What the agent said in `hello`.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Whether and how processes can move through this agent: what `hello` said, or,
    /// when it said criu's checks still ran (`checking`, protocol 3), the agent's
    /// answer to `readiness`, which comes once they have ended (asked once, then kept).
    /// Whatever decides on migration asks this, not `hello`.
    pub async fn readiness(&self) -> Result<Readiness, ClientError> {
        if !self.hello.checking {
            return Ok(self.hello.readiness());
        }
        self.readiness
            .get_or_try_init(|| self.request_within(Request::Readiness, READINESS_WAIT))
            .await
            .cloned()
    }

    /// What the agent said in `hello`, with what [`readiness`](Self::readiness) has
    /// learnt since.
    pub fn hello_now(&self) -> Hello {
        let mut hello = self.hello.clone();
        if let Some(r) = self.readiness.get() {
            hello.set_readiness(r.clone());
        }
        hello
    }

    /// Whether the channel has closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Resolves when the channel closes.
    pub async fn closed(&self) {
        let notified = self.shared.closed_notify.notified();
        if self.is_closed() {
            return;
        }
        notified.await;
    }

    /// Sends a request and waits (at most the connection's time-out) for its answer.
    pub async fn request<T: DeserializeOwned>(&self, request: Request) -> Result<T, ClientError> {
        self.request_within(request, self.timeout).await
    }

    /// Like [`request`](Self::request) with an explicit time-out.
    pub async fn request_within<T: DeserializeOwned>(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let (id, rx) = self.send(request)?;
        let value = match tokio::time::timeout(timeout, rx).await {
            Err(_) => {
                lock(&self.shared.pending).remove(&id);
                return Err(ClientError::Timeout(timeout));
            }
            Ok(Err(_)) => return Err(ClientError::Closed),
            Ok(Ok(reply)) => reply?,
        };
        serde_json::from_value(value)
            .map_err(|e| ClientError::Protocol(format!("unexpected answer: {e}")))
    }

    fn send(&self, request: Request) -> Result<(u64, oneshot::Receiver<Reply>), ClientError> {
        if self.is_closed() {
            return Err(ClientError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.pending).insert(id, tx);
        let text = serde_json::to_string(&RequestLine { id, request })
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.out.send(text).map_err(|_| ClientError::Closed)?;
        Ok((id, rx))
    }

    /// Asks for node figures (and the process list if `procs`) every `interval`.
    /// Dropping the receiver does not stop the pushes; call [`unsubscribe`](Self::unsubscribe).
    pub async fn subscribe(
        &self,
        interval: Duration,
        procs: bool,
    ) -> Result<(u64, UpdateRx), ClientError> {
        let (tx, rx) = mpsc::channel(16);
        let request = Request::Subscribe {
            interval_ms: millis(interval),
            procs,
            delta: false,
        };
        let sub = self.start_sub(request, Sink::Channel(tx)).await?;
        Ok((sub, rx))
    }

    /// Watches the process list (and the figures) of the node every `interval`: a
    /// subscription with `delta` when the agent speaks protocol 2 (the whole list once,
    /// then what changed), else one with whole lists. Dropping the watch does not stop
    /// the pushes; call [`unsubscribe`](Self::unsubscribe) with [`ProcWatch::sub`].
    pub async fn watch_procs(&self, interval: Duration) -> Result<ProcWatch, ClientError> {
        let delta = self.hello.protocol >= 2;
        let sink = Arc::new(ModelSink::new(self.out.clone(), Arc::clone(&self.next_id)));
        let request = Request::Subscribe {
            interval_ms: millis(interval),
            procs: true,
            delta,
        };
        let sub = self
            .start_sub(request, Sink::Model(Arc::clone(&sink)))
            .await?;
        Ok(ProcWatch { sub, sink, delta })
    }

    /// Sends a subscribe request whose pushes go to `sink`; the subscription's id.
    async fn start_sub(&self, request: Request, sink: Sink) -> Result<u64, ClientError> {
        // Register before the request goes out, so the first push is not lost.
        let id = self.next_id.load(Ordering::Relaxed);
        if let Sink::Model(m) = &sink {
            m.set_sub(id);
        }
        lock(&self.shared.subs).insert(id, sink.clone());
        let (sent_id, reply) = self.send(request)?;
        if sent_id != id {
            // Another request took the id first; move the registration.
            if let Sink::Model(m) = &sink {
                m.set_sub(sent_id);
            }
            let mut subs = lock(&self.shared.subs);
            subs.remove(&id);
            subs.insert(sent_id, sink);
        }
        match tokio::time::timeout(self.timeout, reply).await {
            Ok(Ok(Ok(_))) => Ok(sent_id),
            Ok(Ok(Err(e))) => {
                lock(&self.shared.subs).remove(&sent_id);
                Err(e.into())
            }
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => {
                lock(&self.shared.subs).remove(&sent_id);
                Err(ClientError::Timeout(self.timeout))
            }
        }
    }

    /// Stops subscription `sub`.
    pub async fn unsubscribe(&self, sub: u64) -> Result<(), ClientError> {
        lock(&self.shared.subs).remove(&sub);
        self.request::<Value>(Request::Unsubscribe { sub })
            .await
            .map(|_| ())
    }
}

/// An interval in whole milliseconds, as requests carry it.
fn millis(interval: Duration) -> u64 {
    u64::try_from(interval.as_millis()).unwrap_or(u64::MAX)
}

/// Starts the tasks that write the lines sent on the returned channel and read the
/// agent's; either closes the connection when its stream ends.
fn pump<R, W>(reader: R, mut writer: W, shared: &Arc<Shared>) -> mpsc::UnboundedSender<String>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
    {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            while let Some(mut l) = out_rx.recv().await {
                l.push('\n');
                if writer.write_all(l.as_bytes()).await.is_err() || writer.flush().await.is_err() {
                    break;
                }
            }
            shared.close();
        });
    }
    {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            read_loop(reader, &shared).await;
            shared.close();
        });
    }
    out
}

/// Reads one line the agent sent (a reply, an error or a push; the newline may be there).
pub fn parse_reply(line: &[u8]) -> serde_json::Result<ResponseLine> {
    serde_json::from_slice(line)
}

async fn read_loop<R: AsyncRead + Unpin>(reader: R, shared: &Shared) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader)
            .take(MAX_RESPONSE as u64)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.last() != Some(&b'\n') && buf.len() >= MAX_RESPONSE {
            tracing::warn!("agent sent a line longer than {MAX_RESPONSE} bytes; closing");
            return;
        }
        let Ok(resp) = parse_reply(&buf) else {
            tracing::warn!(
                "agent sent a line that is not the protocol: {:?}",
                String::from_utf8_lossy(&buf)
            );
            continue;
        };
        match resp {
            ResponseLine::Ok { id: Some(id), ok } => {
                if let Some(tx) = lock(&shared.pending).remove(&id) {
                    let _ = tx.send(Ok(ok));
                }
            }
            ResponseLine::Err { id: Some(id), err } => {
                if let Some(tx) = lock(&shared.pending).remove(&id) {
                    let _ = tx.send(Err(err));
                } else if let Some(sink) = lock(&shared.subs).get(&id).cloned() {
                    match sink {
                        Sink::Channel(tx) => {
                            let _ = tx.try_send(Err(err));
                        }
                        Sink::Model(m) => m.error(err),
                    }
                }
            }
            ResponseLine::Ok { id: None, .. } => {}
            ResponseLine::Err { id: None, err } => {
                tracing::warn!("agent error without id: {err}");
            }
            ResponseLine::Push { sub, data } => {
                let sink = lock(&shared.subs).get(&sub).cloned();
                match sink {
                    // A slow consumer loses pushes rather than stalling every request.
                    Some(Sink::Channel(tx)) => {
                        let _ = tx.try_send(Ok(data));
                    }
                    // A watched list takes every push where it is read.
                    Some(Sink::Model(m)) => m.push(data),
                    None => {}
                }
            }
        }
    }
}

use tokio::io::AsyncReadExt as _;
