//! `openmosix-agent serve`: answers protocol requests read from an input stream
//! (stdin over SSH) on an output stream (stdout).
//!
//! Layering, as in mini-redis: [`read_bounded_line`] frames the input, [`openmosix_hpc::protocol`]
//! parses a frame into a request, [`Server::handle`] applies it to the [`Backend`], and one
//! writer task owns the output so that responses and subscription pushes never interleave
//! within a line. A bad line gets an error response and the loop goes on; only the end of
//! input (or a shutdown signal) ends it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::backend::Backend;
use crate::backend::events::EventLog;
use crate::backend::migration::Migrator;
use openmosix_hpc::model::{AdminChange, MigMask, RunOptions, Signal};
use openmosix_hpc::protocol::{
    self, AgentError, Capability, ErrorKind, EventKind, Hello, MAX_LINE, Request, ResponseLine,
    Update,
};

/// How reading one line ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line (without its newline) is in the buffer.
    Line,
    /// The line was longer than the limit; it was read and dropped.
    TooLong,
    /// End of input.
    Eof,
}

/// Reads one line into `buf`, never holding more than `max` bytes of it: a longer line
/// is consumed to its end and reported as [`Frame::TooLong`].
pub async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Frame> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if too_long {
                Frame::TooLong
            } else if buf.is_empty() {
                Frame::Eof
            } else {
                Frame::Line
            });
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                Frame::TooLong
            } else {
                Frame::Line
            });
        }
    }
}

/// The agent's answer to requests, over one backend.
#[derive(Debug)]
pub struct Server<B> {
    backend: Arc<Mutex<B>>,
    migration: Capability,
    migrator: Option<Migrator>,
    events: Option<Arc<EventLog>>,
    /// Migration steps still running.
    in_flight: Mutex<Vec<JoinHandle<()>>>,
    /// Images this connection dumped (their trees stopped) and has not yet resumed or
    /// finished: if the client goes away now, the trees are resumed here, so a client
    /// that dies mid-migration never leaves a process stopped.
    dumped: Arc<Mutex<std::collections::HashSet<String>>>,
}

type Out = mpsc::UnboundedSender<String>;

fn line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        format!(r#"{{"id":null,"err":{{"kind":"io","message":"cannot encode response: {e}"}}}}"#)
    })
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
            dumped: Arc::default(),
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

    /// Enables the migration ops with `migrator`; `capability` is what `hello` reports.
    #[must_use]
    pub fn with_migration(mut self, migrator: Migrator, capability: Capability) -> Self {
        self.migrator = Some(migrator);
        self.migration = capability;
        self
    }

    fn lock(backend: &Mutex<B>) -> MutexGuard<'_, B> {
        // A panic while holding the lock would be a bug; the data is still usable.
        backend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves requests from `input` until it ends, writing responses to `output`.
    pub async fn serve<R, W>(self, mut input: R, output: W) -> std::io::Result<()>
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let writer: JoinHandle<std::io::Result<()>> = tokio::spawn(async move {
            let mut output = output;
            while let Some(mut l) = rx.recv().await {
                l.push('\n');
                output.write_all(l.as_bytes()).await?;
                output.flush().await?;
            }
            Ok(())
        });

        let ticker = {
            let backend = Arc::clone(&self.backend);
            tokio::spawn(async move {
                loop {
                    let secs = {
                        let mut b = Self::lock(&backend);
                        b.tick();
                        b.admin().map(|a| a.decay_interval).unwrap_or(1).max(1)
                    };
                    tokio::time::sleep(Duration::from_secs(u64::from(secs))).await;
                }
            })
        };

        let mut subs: HashMap<u64, JoinHandle<()>> = HashMap::new();
        let mut buf = Vec::with_capacity(4096);
        let result = loop {
            let frame = match read_bounded_line(&mut input, &mut buf, MAX_LINE).await {
                Ok(f) => f,
                Err(e) => break Err(e),
            };
            match frame {
                Frame::Eof => break Ok(()),
                Frame::TooLong => {
                    let err = AgentError::new(
                        ErrorKind::TooLarge,
                        format!("request longer than {MAX_LINE} bytes was dropped"),
                    );
                    let _ = tx.send(line(&ResponseLine::Err { id: None, err }));
                }
                Frame::Line if buf.iter().all(u8::is_ascii_whitespace) => {}
                Frame::Line => match protocol::parse_request(&buf) {
                    Err((id, err)) => {
                        let _ = tx.send(line(&ResponseLine::Err { id, err }));
                    }
                    Ok(req) => self.dispatch(req.id, req.request, &tx, &mut subs),
                },
            }
        };
        ticker.abort();
        for (_, s) in subs.drain() {
            s.abort();
        }
        self.resume_abandoned().await;
        drop(tx);
        match writer.await {
            Ok(w) => result.and(w),
            Err(_) => result,
        }
    }

    /// The client went away: let running steps end, then resume every tree this
    /// connection left stopped.
    async fn resume_abandoned(&self) {
        let steps = std::mem::take(&mut *lock_set(&self.in_flight));
        for step in steps {
            let _ = step.await;
        }
        let images: Vec<String> = lock_set(&self.dumped).drain().collect();
        if let (Some(m), false) = (self.migrator.clone(), images.is_empty()) {
            let _ = tokio::task::spawn_blocking(move || {
                for image in images {
                    tracing::warn!("client gone mid-migration: resuming the tree of image {image}");
                    if let Err(e) = m.resume(&image) {
                        tracing::warn!("resuming image {image}: {e}");
                    }
                }
            })
            .await;
        }
    }

    fn dispatch(
        &self,
        id: u64,
        request: Request,
        tx: &Out,
        subs: &mut HashMap<u64, JoinHandle<()>>,
    ) {
        let reply = match request {
            Request::Subscribe { interval_ms, procs } => {
                if !(100..=3_600_000).contains(&interval_ms) {
                    Err(AgentError::new(
                        ErrorKind::InvalidArgument,
                        format!("interval {interval_ms} ms is outside 100..3600000"),
                    ))
                } else {
                    subs.retain(|_, h| !h.is_finished());
                    let task = self.subscription(id, interval_ms, procs, tx.clone());
                    if let Some(old) = subs.insert(id, task) {
                        old.abort();
                    }
                    Ok(serde_json::json!({ "sub": id }))
                }
            }
            Request::Unsubscribe { sub } => match subs.remove(&sub) {
                Some(h) => {
                    h.abort();
                    Ok(Value::Null)
                }
                None => Err(AgentError::new(
                    ErrorKind::InvalidArgument,
                    format!("no subscription {sub}"),
                )),
            },
            r @ (Request::Predump { .. }
            | Request::Dump { .. }
            | Request::Resume { .. }
            | Request::Finish { .. }
            | Request::Restore { .. }) => {
                // criu runs for seconds: off the request loop, without the backend lock.
                let backend = Arc::clone(&self.backend);
                let migrator = self.migrator.clone();
                let events = self.events.clone();
                let tx = tx.clone();
                let dumped = Arc::clone(&self.dumped);
                let step = tokio::spawn(async move {
                    // Once the client resumes or finishes an image, it is its business.
                    if let Request::Resume { image } | Request::Finish { image, .. } = &r {
                        lock_set(&dumped).remove(image);
                    }
                    let is_dump = matches!(r, Request::Dump { .. });
                    let reply = migrate_step(backend, migrator, events.as_deref(), r).await;
                    if is_dump
                        && let Ok(v) = &reply
                        && let Some(image) = v.get("image").and_then(Value::as_str)
                    {
                        lock_set(&dumped).insert(image.to_owned());
                    }
                    let resp = match reply {
                        Ok(ok) => ResponseLine::Ok { id: Some(id), ok },
                        Err(err) => ResponseLine::Err { id: Some(id), err },
                    };
                    let _ = tx.send(line(&resp));
                });
                let mut steps = lock_set(&self.in_flight);
                steps.retain(|h| !h.is_finished());
                steps.push(step);
                return;
            }
            other => self.handle(other),
        };
        let resp = match reply {
            Ok(ok) => ResponseLine::Ok { id: Some(id), ok },
            Err(err) => ResponseLine::Err { id: Some(id), err },
        };
        let _ = tx.send(line(&resp));
    }

    fn subscription(&self, id: u64, interval_ms: u64, procs: bool, tx: Out) -> JoinHandle<()> {
        let backend = Arc::clone(&self.backend);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(interval_ms));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let update = {
                    let mut b = Self::lock(&backend);
                    b.node().and_then(|node| {
                        let procs = if procs { Some(b.procs()?) } else { None };
                        Ok(Update { node, procs })
                    })
                };
                let msg = match update {
                    Ok(data) => line(&ResponseLine::Push { sub: id, data }),
                    Err(err) => line(&ResponseLine::Err { id: Some(id), err }),
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        })
    }

    /// Answers one request that needs no streaming.
    pub fn handle(&self, request: Request) -> Result<Value, AgentError> {
        fn json<T: Serialize>(v: T) -> Result<Value, AgentError> {
            serde_json::to_value(v).map_err(|e| AgentError::new(ErrorKind::Io, e.to_string()))
        }
        let mut b = Self::lock(&self.backend);
        match request {
            Request::Hello => json(Hello {
                protocol: protocol::PROTOCOL_VERSION,
                agent_version: env!("CARGO_PKG_VERSION").into(),
                node_id: b.node_id(),
                backend: b.kind().into(),
                ops: protocol::OPS.iter().map(|s| (*s).to_owned()).collect(),
                migration: self.migration.clone(),
                predump: self.migrator.as_ref().is_some_and(Migrator::can_predump),
            }),
            Request::Node => json(b.node()?),
            Request::AdminGet => json(b.admin()?),
            Request::Tune => json(b.tune()?),
            Request::Procs => json(b.procs()?),
            Request::Proc { pid } => json(b.proc(pid)?),
            Request::Signal { pid, signal } => {
                b.signal(pid, signal)?;
                let text = format!("sent {} to process {pid}", signal_name(signal));
                self.log(EventKind::Signal, &text, Some(pid));
                json(())
            }
            Request::Renice { pid, nice } => {
                b.renice(pid, nice)?;
                self.log(
                    EventKind::Renice,
                    &format!("set the nice value of process {pid} to {nice}"),
                    Some(pid),
                );
                json(())
            }
            Request::SetLock { pid, lock } => {
                let p = b.set_lock(pid, lock)?;
                let verb = if lock { "locked" } else { "unlocked" };
                self.log(EventKind::Lock, &format!("{verb} process {pid}"), Some(pid));
                json(p)
            }
            Request::SetMask { pid, mask } => {
                let p = b.set_mask(pid, &mask)?;
                self.log(EventKind::Mask, &mask_text(pid, &mask), Some(pid));
                json(p)
            }
            Request::AdminSet { change } => {
                let admin = b.set_admin(&change)?;
                self.log(EventKind::Admin, &admin_text(&change), None);
                json(admin)
            }
            Request::Goto { pid, to } => json(b.goto(pid, to)?),
            Request::Run { argv, options } => {
                let argv: Vec<Vec<u8>> = argv.into_iter().map(|a| a.0).collect();
                let started = b.run(&argv, &options)?;
                self.log(
                    EventKind::Run,
                    &run_text(started.pid, &argv, &options),
                    Some(started.pid),
                );
                json(started)
            }
            Request::Expel => {
                let n = b.expel()?;
                self.log(
                    EventKind::Admin,
                    &format!("expel: sent {n} guests home"),
                    None,
                );
                json(n)
            }
            Request::Bring => {
                let n = b.bring()?;
                let text = format!("bring: brought {n} processes home");
                self.log(EventKind::Admin, &text, None);
                json(n)
            }
            Request::Events { after } => match &self.events {
                None => json(Vec::<protocol::Event>::new()),
                Some(log) => json(
                    log.answer(after)
                        .map_err(|e| AgentError::io("reading the event log", &e))?,
                ),
            },
            Request::SetMap { nodes } => json(b.set_map(&nodes)?),
            Request::GetMap => json(b.map()?),
            Request::CanMigrate { pid, to } => json(b.can_migrate(pid, to)?),
            Request::Whereabouts { home_pid, at } => json(b.whereabouts(home_pid, at)?),
            Request::Emigrants => json(b.emigrants()?),
            Request::Subscribe { .. } | Request::Unsubscribe { .. } => Err(AgentError::new(
                ErrorKind::BadRequest,
                "subscriptions need a streaming connection",
            )),
            Request::Predump { .. }
            | Request::Dump { .. }
            | Request::Resume { .. }
            | Request::Finish { .. }
            | Request::Restore { .. } => Err(AgentError::new(
                ErrorKind::BadRequest,
                "migration steps need a streaming connection",
            )),
        }
    }
}

impl<B> Server<B> {
    fn log(&self, kind: EventKind, text: &str, pid: Option<i32>) {
        log_event(self.events.as_deref(), kind, text, pid);
    }
}

/// Appends to the event log, if any; a failure is only logged (the op itself succeeded).
fn log_event(log: Option<&EventLog>, kind: EventKind, text: &str, pid: Option<i32>) {
    log_marked(log, kind, text, pid, false);
}

/// [`log_event`], marked as the load balancer's when `auto`.
fn log_marked(log: Option<&EventLog>, kind: EventKind, text: &str, pid: Option<i32>, auto: bool) {
    if let Some(log) = log
        && let Err(e) = log.append_marked(kind, text, pid, auto)
    {
        tracing::warn!(
            "cannot write to the event log {}: {e}",
            log.path().display()
        );
    }
}

/// The end of a migration event's sentence: who moved it, when it was not a person.
fn by_balancer(auto: bool) -> &'static str {
    if auto {
        ", moved by the load balancer"
    } else {
        ""
    }
}

fn signal_name(signal: Signal) -> &'static str {
    match signal {
        Signal::Stop => "SIGSTOP",
        Signal::Cont => "SIGCONT",
        Signal::Term => "SIGTERM",
        Signal::Kill => "SIGKILL",
    }
}

fn admin_text(change: &AdminChange) -> String {
    match change {
        AdminChange::Switch { switch, on } => {
            format!(
                "switched {} {}",
                switch.name(),
                if *on { "on" } else { "off" }
            )
        }
        AdminChange::Speed { speed } => format!("set the speed to {speed}"),
        AdminChange::Decay {
            interval,
            slow,
            fast,
        } => {
            let mut t = format!("set the decay interval to {interval} s");
            if let (Some(s), Some(f)) = (slow, fast) {
                t.push_str(&format!(" (slow {s}, fast {f})"));
            }
            t
        }
        AdminChange::Off { off: true } => "took the node out of the pool (setpe -off)".into(),
        AdminChange::Off { off: false } => "put the node back into the pool".into(),
    }
}

fn mask_text(pid: i32, mask: &MigMask) -> String {
    if !mask.migfilter {
        return format!("switched the cluster mask of process {pid} off");
    }
    let nodes: Vec<String> = (1..=64u32)
        .filter(|n| mask.mignodes & (1u64 << (n - 1)) != 0)
        .map(|n| n.to_string())
        .collect();
    let policy = if mask.migpolicy == 1 { "allow" } else { "deny" };
    format!(
        "set the cluster mask of process {pid}: {policy} nodes {}",
        if nodes.is_empty() {
            "none".to_owned()
        } else {
            nodes.join(",")
        }
    )
}

fn run_text(pid: i32, argv: &[Vec<u8>], options: &RunOptions) -> String {
    let cmd: Vec<String> = argv
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut t = format!("started job {pid}: {}", cmd.join(" "));
    let flags = options.flags();
    if !flags.is_empty() {
        t.push_str(&format!(" ({})", flags.join(", ")));
    }
    t
}

fn to_json<T: Serialize>(v: T) -> Result<Value, AgentError> {
    serde_json::to_value(v).map_err(|e| AgentError::new(ErrorKind::Io, e.to_string()))
}

fn lock_set<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs one migration step: criu in a blocking thread, records under the lock after.
async fn migrate_step<B: Backend + 'static>(
    backend: Arc<Mutex<B>>,
    migrator: Option<Migrator>,
    events: Option<&EventLog>,
    request: Request,
) -> Result<Value, AgentError> {
    let Some(m) = migrator else {
        return Err(AgentError::new(
            ErrorKind::Unsupported,
            "this agent does not migrate processes (no criu, or the kernel backend)",
        ));
    };
    let blocking = |f: Box<dyn FnOnce() -> Result<Value, AgentError> + Send>| async move {
        tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
            Err(AgentError::new(
                ErrorKind::Io,
                format!("migration step crashed: {e}"),
            ))
        })
    };
    match request {
        Request::Predump { pid, image } => {
            blocking(Box::new(move || to_json(m.predump(pid, image.as_deref())?))).await
        }
        Request::Dump { pid, image } => {
            blocking(Box::new(move || to_json(m.dump(pid, image.as_deref())?))).await
        }
        Request::Resume { image } => blocking(Box::new(move || to_json(m.resume(&image)?))).await,
        Request::Finish {
            image,
            pid,
            to,
            new_pid,
            auto,
        } => {
            blocking(Box::new(move || to_json(m.finish(&image)?))).await?;
            Server::<B>::lock(&backend).departed(pid, to, new_pid)?;
            let text = format!(
                "process {pid} migrated to node {to} (pid {new_pid} there){}",
                by_balancer(auto)
            );
            log_marked(events, EventKind::MigrateOut, &text, Some(pid), auto);
            Ok(Value::Null)
        }
        Request::Restore {
            image,
            from,
            home,
            home_pid,
            nmigs,
            carried,
        } => {
            if let Err(e) = Server::<B>::lock(&backend).accepts_guests() {
                m.remove(&image);
                return Err(e);
            }
            let pid: i32 = serde_json::from_value(
                blocking(Box::new(move || to_json(m.restore(&image)?))).await?,
            )
            .map_err(|e| AgentError::new(ErrorKind::Io, e.to_string()))?;
            Server::<B>::lock(&backend).arrived(pid, from, home, home_pid, nmigs + 1, &carried)?;
            let text = format!(
                "process {pid} arrived from node {from} (home node {home}, pid {home_pid} there){}",
                by_balancer(carried.auto)
            );
            log_marked(events, EventKind::MigrateIn, &text, Some(pid), carried.auto);
            Ok(serde_json::json!({ "pid": pid }))
        }
        _ => Err(AgentError::new(
            ErrorKind::BadRequest,
            "not a migration step",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_lines() {
        let data = b"short\nthis line is far too long\nok\nlast".to_vec();
        let mut r = tokio::io::BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::Line
        );
        assert_eq!(buf, b"short");
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::TooLong
        );
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::Line
        );
        assert_eq!(buf, b"ok");
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::Line
        );
        assert_eq!(buf, b"last");
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::Eof
        );
    }
}
