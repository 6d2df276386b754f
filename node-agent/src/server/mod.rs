//! `openmosix-agent serve`: answers protocol requests read from an input stream
//! (stdin over SSH) on an output stream (stdout).
//!
//! Layering, as in mini-redis: [`read_bounded_line`] frames the input, [`openmosix_hpc::protocol`]
//! parses a frame into a request, [`Server::handle`] applies it to the [`Backend`], and one
//! writer task owns the output so that responses and subscription pushes never interleave
//! within a line. A bad line gets an error response and the loop goes on; only the end of
//! input (or a shutdown signal) ends it.
//!
//! The runtime's thread only moves lines: every backend call (reading /proc, writing the
//! state file, running criu) runs in a blocking thread.
//!
//! - `frame`: one request a line, bounded;
//! - `requests`: subscriptions and the requests the backend answers at once;
//! - `subscription`: node figures and process lists pushed every interval, whole or as
//!   what changed;
//! - `steps`: the migration steps, which run for seconds;
//! - `events`: the sentences the server writes in the event log.

mod events;
pub mod frame;
mod requests;
mod steps;
mod subscription;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::backend::Backend;
use crate::backend::events::EventLog;
use crate::backend::migration::Migrator;
use openmosix_hpc::protocol::{self, AgentError, Capability, ErrorKind, MAX_LINE, ResponseLine};

pub use frame::{Frame, read_bounded_line};

/// The agent's answer to requests, over one backend.
#[derive(Debug)]
pub struct Server<B> {
    backend: Arc<Mutex<B>>,
    /// What `hello` says about migration when there is no migrator.
    migration: Capability,
    migrator: Option<Migrator>,
    events: Option<Arc<EventLog>>,
    /// Migration steps still running.
    in_flight: Mutex<Vec<JoinHandle<()>>>,
    /// Calls under way on this connection (at most [`MAX_CALLS`]).
    calls: Arc<tokio::sync::Semaphore>,
    /// The state file's lock, when the backend keeps one: requests that change the
    /// state wait for it to be free before they take the backend.
    state_lock: Option<std::path::PathBuf>,
    /// The moves this connection drives: their migration locks and handoff claims.
    /// When the client goes away, its handoffs are settled (docs/migration.md), so a
    /// client that dies mid-migration never leaves a process stopped for long.
    own: Arc<steps::Own>,
}

/// Requests one connection may have running at once (beyond them it reads no more).
pub const MAX_CALLS: usize = 8;

/// Where the lines to write go: the writer task.
type Out = mpsc::UnboundedSender<Outgoing>;

/// One line for the writer task.
#[derive(Debug)]
enum Outgoing {
    /// An answer: always written, in order.
    Line(String),
    /// A subscription's push; the flag is cleared once it is written. A subscription
    /// whose last push still waits skips its next ones (a peer that does not read gets
    /// fewer updates, and the agent holds at most one push per subscription).
    Push(String, Arc<std::sync::atomic::AtomicBool>),
}

/// One line of output (without its newline).
fn line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        format!(r#"{{"id":null,"err":{{"kind":"io","message":"cannot encode response: {e}"}}}}"#)
    })
}

/// Sends the answer to request `id`.
fn reply(tx: &Out, id: u64, answer: Result<Value, AgentError>) {
    let resp = match answer {
        Ok(ok) => ResponseLine::Ok { id: Some(id), ok },
        Err(err) => ResponseLine::Err { id: Some(id), err },
    };
    let _ = tx.send(Outgoing::Line(line(&resp)));
}

fn to_json<T: Serialize>(v: T) -> Result<Value, AgentError> {
    serde_json::to_value(v).map_err(|e| AgentError::new(ErrorKind::Io, e.to_string()))
}

/// Locks `m`. A panic while holding the lock would be a bug; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f` in a blocking thread, off the runtime's thread; a panic in `f` goes on
/// here, as if `f` had run here.
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

impl<B: Backend + 'static> Server<B> {
    /// A server over `backend`.
    pub fn new(backend: B) -> Self {
        Server {
            backend: Arc::new(Mutex::new(backend)),
            migration: Capability {
                available: false,
                detail: "this backend does not migrate with criu".into(),
            },
            migrator: None,
            in_flight: Mutex::default(),
            own: Arc::default(),
            state_lock: None,
            calls: Arc::new(tokio::sync::Semaphore::new(MAX_CALLS)),
            events: None,
        }
    }

    /// Logs what is done through this server (signals, renices, admin changes, jobs,
    /// migrations, locks, masks) to `log`, and answers `events` from it.
    #[must_use]
    pub fn with_events(mut self, log: EventLog) -> Self {
        self.events = Some(Arc::new(log));
        self
    }

    /// Requests that change the state wait for the lock at `path` to be free before they
    /// take the backend ([`crate::backend::state::wait_until_free`]).
    #[must_use]
    pub fn with_state_lock(mut self, path: std::path::PathBuf) -> Self {
        self.state_lock = Some(path);
        self
    }

    /// Enables the migration ops with `migrator`; `hello` reports the outcome of its
    /// criu checks (or that they still run).
    #[must_use]
    pub fn with_migration(mut self, migrator: Migrator) -> Self {
        self.migrator = Some(migrator);
        self
    }

    /// Serves requests from `input` until it ends, writing responses to `output`.
    pub async fn serve<R, W>(self, mut input: R, output: W) -> std::io::Result<()>
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let server = Arc::new(self);
        // Handoffs left by agents that died are settled before anything else is done.
        server.settle().await;
        let (tx, rx) = mpsc::unbounded_channel::<Outgoing>();
        let writer = tokio::spawn(write_lines(rx, output));
        let ticker = server.ticker();
        let mut subs = subscription::Subscriptions::new();
        let mut buf = Vec::with_capacity(4096);
        let result = loop {
            match read_bounded_line(&mut input, &mut buf, MAX_LINE).await {
                Err(e) => break Err(e),
                Ok(Frame::Eof) => break Ok(()),
                Ok(Frame::TooLong) => {
                    let err = AgentError::new(
                        ErrorKind::TooLarge,
                        format!("request longer than {MAX_LINE} bytes was dropped"),
                    );
                    let _ = tx.send(Outgoing::Line(line(&ResponseLine::Err { id: None, err })));
                }
                Ok(Frame::Line) if buf.iter().all(u8::is_ascii_whitespace) => {}
                Ok(Frame::Line) => match protocol::parse_request(&buf) {
                    Err((id, err)) => {
                        let _ = tx.send(Outgoing::Line(line(&ResponseLine::Err { id, err })));
                    }
                    Ok(req) => server.dispatch(req.id, req.request, &tx, &mut subs).await,
                },
            }
        };
        ticker.abort();
        for (_, s) in subs.drain() {
            s.abort();
        }
        server.resume_abandoned().await;
        drop(tx);
        match writer.await {
            Ok(w) => result.and(w),
            Err(_) => result,
        }
    }

    /// The task that lets the backend update its load every decay interval.
    fn ticker(&self) -> JoinHandle<()> {
        let backend = Arc::clone(&self.backend);
        tokio::spawn(async move {
            loop {
                let backend = Arc::clone(&backend);
                let secs = off_thread(move || {
                    let mut b = lock(&backend);
                    b.tick();
                    b.admin().map(|a| a.decay_interval).unwrap_or(1).max(1)
                })
                .await;
                tokio::time::sleep(Duration::from_secs(u64::from(secs))).await;
            }
        })
    }

    /// The client went away: let running steps end, then settle the handoffs this
    /// connection drove (and any other nobody drives).
    async fn resume_abandoned(&self) {
        let steps = std::mem::take(&mut *lock(&self.in_flight));
        for step in steps {
            let _ = step.await;
        }
        // A post-copy dump whose page stream went with the client ends by itself (its
        // tree left stopped), and then its handoff can be settled.
        if let Some(m) = self.migrator.clone() {
            let _ =
                tokio::task::spawn_blocking(move || m.drain_lazy(Duration::from_secs(30))).await;
        }
        // Images this connection made but never dumped (prepared, or pre-dump rounds
        // only) have no handoff to settle: resumed (a saved tree runs on) and removed.
        let unrecorded: Vec<_> = lock(&self.own.claims).drain().map(|(_, c)| c).collect();
        if let Some(m) = self.migrator.clone() {
            let _ = tokio::task::spawn_blocking(move || {
                for claim in unrecorded {
                    if m.handoffs().read(claim.image()).is_none() {
                        let _ = m.resume(&claim);
                    }
                }
            })
            .await;
        }
        self.settle().await;
        // Every tree runs again (or waits for its decision): the processes are free.
        lock(&self.own.moving).clear();
    }

    /// Settles the handoffs nobody drives (at start, when a connection ends, before
    /// answering `handoffs`).
    async fn settle(&self) {
        let Some(m) = self.migrator.clone() else {
            return;
        };
        let backend = Arc::clone(&self.backend);
        let events = self.events.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let done = m.settle_orphans();
            steps::apply_settled(&backend, events.as_deref(), done);
        })
        .await;
    }

    /// The `handoffs` answer: settle what can be, then every record of this node.
    async fn handoffs(&self) -> Result<Value, AgentError> {
        self.settle().await;
        let list = self
            .migrator
            .as_ref()
            .map(|m| m.handoffs().list())
            .unwrap_or_default();
        to_json(list)
    }
}

/// The writer task: owns the output, writes each line whole and flushes it.
async fn write_lines<W: AsyncWrite + Unpin>(
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    mut output: W,
) -> std::io::Result<()> {
    while let Some(out) = rx.recv().await {
        let (mut l, written) = match out {
            Outgoing::Line(l) => (l, None),
            Outgoing::Push(l, flag) => (l, Some(flag)),
        };
        l.push('\n');
        output.write_all(l.as_bytes()).await?;
        output.flush().await?;
        if let Some(flag) = written {
            flag.store(false, std::sync::atomic::Ordering::Release);
        }
    }
    Ok(())
}
