//! The migration steps (`predump`, `dump`, `resume`, `finish`, `restore`): criu runs for
//! seconds, so each step runs on its own, off the request loop and without the backend
//! lock, and answers when it is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Out, Server, events, lock, reply, to_json};
use crate::backend::Backend;
use crate::backend::events::EventLog;
use crate::backend::migration::Migrator;
use crate::backend::movelock::{self, MoveLock};
use openmosix_hpc::model::NodeId;
use openmosix_hpc::protocol::{AgentError, ErrorKind, EventKind, Request};

impl<B: Backend + 'static> Server<B> {
    /// Starts migration step `request` (id `id`); its answer goes to `tx` when it ends.
    pub(super) fn start_step(&self, id: u64, request: Request, tx: &Out) {
        let backend = Arc::clone(&self.backend);
        let migrator = self.migrator.clone();
        let events = self.events.clone();
        let tx = tx.clone();
        let dumped = Arc::clone(&self.dumped);
        let moving = Arc::clone(&self.moving);
        let step = tokio::spawn(async move {
            // Once the client resumes or finishes an image, it is its business.
            if let Request::Resume { image } | Request::Finish { image, .. } = &request {
                lock(&dumped).remove(image);
            }
            let is_dump = matches!(request, Request::Dump { .. });
            let answer = migrate_step(backend, migrator, events, moving, request).await;
            if is_dump
                && let Ok(v) = &answer
                && let Some(image) = v.get("image").and_then(Value::as_str)
            {
                lock(&dumped).insert(image.to_owned());
            }
            reply(&tx, id, answer);
        });
        let mut steps = lock(&self.in_flight);
        steps.retain(|h| !h.is_finished());
        steps.push(step);
    }
}

/// Runs one migration step in a blocking thread: criu first, then the records under
/// the backend lock.
async fn migrate_step<B: Backend + 'static>(
    backend: Arc<Mutex<B>>,
    migrator: Option<Migrator>,
    events: Option<Arc<EventLog>>,
    moving: Arc<Moving>,
    request: Request,
) -> Result<Value, AgentError> {
    let Some(m) = migrator else {
        return Err(AgentError::new(
            ErrorKind::Unsupported,
            "this agent does not migrate processes (no criu, or the kernel backend)",
        ));
    };
    tokio::task::spawn_blocking(move || step(&backend, &m, events.as_deref(), &moving, request))
        .await
        .unwrap_or_else(|e| {
            Err(AgentError::new(
                ErrorKind::Io,
                format!("migration step crashed: {e}"),
            ))
        })
}

/// The migration locks a connection holds, by image.
pub(super) type Moving = Mutex<HashMap<String, MoveLock>>;

/// The lock on moving `pid` for this connection: the one it took with image `image`'s
/// first round, else a new one; then the agent's own checks (lock, mask against `to`,
/// cantmove, kernel threads, init, the agent itself), whoever sent the request.
fn checked<B: Backend>(
    backend: &Mutex<B>,
    m: &Migrator,
    moving: &Moving,
    pid: i32,
    image: Option<&str>,
    to: Option<NodeId>,
) -> Result<MoveLock, AgentError> {
    let held = image.and_then(|i| lock(moving).remove(i));
    let held = match held {
        Some(l) => l,
        None => movelock::acquire(&m.moving_dir(), pid, to, &movelock::holder_here())?,
    };
    if let Err(e) = lock(backend).movable(pid, to) {
        // Earlier rounds stay this connection's until it resumes them.
        if let Some(i) = image {
            lock(moving).insert(i.to_owned(), held);
        }
        return Err(e);
    }
    Ok(held)
}

/// One migration step, in the calling thread.
fn step<B: Backend>(
    backend: &Mutex<B>,
    m: &Migrator,
    log: Option<&EventLog>,
    moving: &Moving,
    request: Request,
) -> Result<Value, AgentError> {
    match request {
        Request::Predump { pid, image, to } => {
            let held = checked(backend, m, moving, pid, image.as_deref(), to)?;
            match m.predump(pid, image.as_deref()) {
                Ok(info) => {
                    lock(moving).insert(info.image.clone(), held);
                    to_json(info)
                }
                Err(e) => {
                    // Earlier rounds: the client resumes the image, which releases it.
                    if let Some(i) = image {
                        lock(moving).insert(i, held);
                    }
                    Err(e)
                }
            }
        }
        Request::Dump { pid, image, to } => {
            let held = checked(backend, m, moving, pid, image.as_deref(), to)?;
            let info = m.dump(pid, image.as_deref())?;
            lock(moving).insert(info.image.clone(), held);
            to_json(info)
        }
        Request::Resume { image } => {
            let done = m.resume(&image);
            lock(moving).remove(&image);
            to_json(done?)
        }
        Request::Finish {
            image,
            pid,
            to,
            new_pid,
            auto,
        } => {
            let done = m.finish(&image);
            lock(moving).remove(&image);
            done?;
            lock(backend).departed(pid, to, new_pid)?;
            let text = events::migrated_out(pid, to, new_pid, auto);
            events::append(log, EventKind::MigrateOut, &text, Some(pid), auto);
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
            if let Err(e) = lock(backend).accepts_guests() {
                m.remove(&image);
                return Err(e);
            }
            let pid = m.restore(&image)?;
            lock(backend).arrived(pid, from, home, home_pid, nmigs + 1, &carried)?;
            let text = events::arrived(pid, from, home, home_pid, carried.auto);
            events::append(log, EventKind::MigrateIn, &text, Some(pid), carried.auto);
            Ok(serde_json::json!({ "pid": pid }))
        }
        _ => Err(AgentError::new(
            ErrorKind::BadRequest,
            "not a migration step",
        )),
    }
}
