//! The migration steps (`predump`, `dump`, `resume`, `finish`, `restore`): criu runs for
//! seconds, so each step runs on its own, off the request loop and without the backend
//! lock, and answers when it is done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Out, Server, events, lock, reply, to_json};
use crate::backend::Backend;
use crate::backend::events::EventLog;
use crate::backend::handoff::Claim;
use crate::backend::migration::{Migrator, Settled};
use crate::backend::movelock::{self, MoveLock};
use openmosix_hpc::handoff::Guest;
use openmosix_hpc::model::NodeId;
use openmosix_hpc::protocol::{AgentError, ErrorKind, EventKind, Request};

impl<B: Backend + 'static> Server<B> {
    /// Starts migration step `request` (id `id`); its answer goes to `tx` when it ends.
    pub(super) fn start_step(&self, id: u64, request: Request, tx: &Out) {
        let backend = Arc::clone(&self.backend);
        let migrator = self.migrator.clone();
        let events = self.events.clone();
        let tx = tx.clone();
        let own = Arc::clone(&self.own);
        let step = tokio::spawn(async move {
            let answer = migrate_step(backend, migrator, events, own, request).await;
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
    own: Arc<Own>,
    request: Request,
) -> Result<Value, AgentError> {
    let Some(m) = migrator else {
        return Err(AgentError::new(
            ErrorKind::Unsupported,
            "this agent does not migrate processes (no criu, or the kernel backend)",
        ));
    };
    tokio::task::spawn_blocking(move || step(&backend, &m, events.as_deref(), &own, request))
        .await
        .unwrap_or_else(|e| {
            Err(AgentError::new(
                ErrorKind::Io,
                format!("migration step crashed: {e}"),
            ))
        })
}

/// What a connection holds of the moves it drives, by image: the migration lock of the
/// process (source) and the claim on the image's handoff (both ends). Released when the
/// image is finished, resumed, released or discarded, and when the connection ends
/// (after the handoffs are settled).
#[derive(Debug, Default)]
pub(super) struct Own {
    pub(super) moving: Mutex<HashMap<String, MoveLock>>,
    pub(super) claims: Mutex<HashMap<String, Claim>>,
}

impl Own {
    /// This connection's claim on `image`, else a fresh one (a handoff left by a
    /// connection that went away).
    fn claim(&self, m: &Migrator, image: &str) -> Result<Claim, AgentError> {
        match lock(&self.claims).remove(image) {
            Some(c) => Ok(c),
            None => m.handoffs().claim(image),
        }
    }

    fn keep(&self, claim: Claim) {
        lock(&self.claims).insert(claim.image().to_owned(), claim);
    }

    fn done(&self, image: &str) {
        lock(&self.moving).remove(image);
        lock(&self.claims).remove(image);
    }
}

/// The lock on moving `pid` for this connection: the one it took with image `image`'s
/// first round, else a new one; then the agent's own checks (lock, mask against `to`,
/// cantmove, kernel threads, init, the agent itself), whoever sent the request.
fn checked<B: Backend>(
    backend: &Mutex<B>,
    m: &Migrator,
    own: &Own,
    pid: i32,
    image: Option<&str>,
    to: Option<NodeId>,
) -> Result<MoveLock, AgentError> {
    let held = image.and_then(|i| lock(&own.moving).remove(i));
    let held = match held {
        Some(l) => l,
        None => movelock::acquire(&m.moving_dir(), pid, to, &movelock::holder_here())?,
    };
    if let Err(e) = lock(backend).movable(pid, to) {
        // Earlier rounds stay this connection's until it resumes them.
        if let Some(i) = image {
            lock(&own.moving).insert(i.to_owned(), held);
        }
        return Err(e);
    }
    Ok(held)
}

/// The image a dump or pre-dump round goes to: this connection's earlier rounds, or a
/// new image, claimed.
fn image_to_dump(
    m: &Migrator,
    own: &Own,
    pid: i32,
    image: Option<&str>,
) -> Result<Claim, AgentError> {
    match image {
        Some(i) => lock(&own.claims).remove(i).ok_or_else(|| {
            AgentError::new(
                ErrorKind::InvalidArgument,
                format!("image {i} is not one this connection made"),
            )
        }),
        None => {
            let id = m.new_image(pid)?;
            m.handoffs().claim(&id)
        }
    }
}

/// One migration step, in the calling thread.
fn step<B: Backend>(
    backend: &Mutex<B>,
    m: &Migrator,
    log: Option<&EventLog>,
    own: &Own,
    request: Request,
) -> Result<Value, AgentError> {
    match request {
        Request::Predump { pid, image, to } => {
            let held = checked(backend, m, own, pid, image.as_deref(), to)?;
            let claim = image_to_dump(m, own, pid, image.as_deref())?;
            let id = claim.image().to_owned();
            // Rounds stay this connection's until it dumps or resumes them.
            lock(&own.moving).insert(id.clone(), held);
            own.keep(claim);
            let info = m.predump(pid, &id);
            if info.is_err() && image.is_none() {
                m.remove(&id);
                own.done(&id);
            }
            to_json(info?)
        }
        Request::Prepare { pid, to } => {
            let held = checked(backend, m, own, pid, None, Some(to))?;
            let claim = image_to_dump(m, own, pid, None)?;
            let id = claim.image().to_owned();
            // Held for this connection until it dumps or resumes the image.
            lock(&own.moving).insert(id.clone(), held);
            own.keep(claim);
            Ok(serde_json::json!({ "image": id }))
        }
        Request::Dump {
            pid,
            image,
            to,
            pages,
            lazy,
        } => {
            if lazy && !(pages && m.can_postcopy()) {
                return Err(AgentError::new(
                    ErrorKind::Unsupported,
                    "post-copy needs a page stream and criu's lazy pages (userfaultfd), which this node lacks",
                ));
            }
            let held = checked(backend, m, own, pid, image.as_deref(), to)?;
            let claim = image_to_dump(m, own, pid, image.as_deref())?;
            let info = m.dump(pid, &claim, to, pages, lazy)?;
            lock(&own.moving).insert(info.image.clone(), held);
            own.keep(claim);
            m.fault_hook("after-dump")?;
            to_json(info)
        }
        Request::Resume { image } => {
            let claim = own.claim(m, &image)?;
            let done = m.resume(&claim);
            own.done(&image);
            to_json(done?)
        }
        Request::Commit { image, new_pid, .. } => {
            let claim = own.claim(m, &image)?;
            let done = m.commit(&claim, new_pid);
            own.keep(claim);
            done?;
            m.fault_hook("after-commit")?;
            Ok(Value::Null)
        }
        Request::Finish {
            image,
            pid,
            to,
            new_pid,
            auto,
            copy_lost,
        } => {
            let claim = own.claim(m, &image)?;
            if copy_lost {
                let done = m.take_back(&claim);
                own.done(&image);
                done?;
                return Ok(serde_json::json!({ "resumed": pid }));
            }
            let done = m.finish(&claim);
            own.done(&image);
            done?;
            quiet_state(m);
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
            hold,
            lazy,
        } => {
            if let Err(e) = lock(backend).accepts_guests() {
                m.remove(&image);
                return Err(e);
            }
            if lazy {
                // The client sends the restore while the image may still be on its way
                // on the page link: the lazy pages must wait for the restore first.
                m.wait_lazy_ready(&image)?;
            }
            let claim = m.handoffs().claim(&image)?;
            let guest = Guest {
                from,
                home,
                home_pid,
                nmigs: nmigs + 1,
                carried,
            };
            let images = if m.is_in_memory(&image) {
                "memory"
            } else {
                "disk"
            };
            let pid = m.restore(&claim, guest.clone(), hold, lazy)?;
            if hold {
                own.keep(claim);
                m.fault_hook("after-restore")?;
            } else {
                quiet_state(m);
                arrived(backend, log, pid, &guest)?;
            }
            Ok(serde_json::json!({ "pid": pid, "images": images }))
        }
        Request::Release { image } => {
            let claim = own.claim(m, &image)?;
            m.fault_hook("before-release")?;
            let done = m.release(&claim);
            own.done(&image);
            let record = done?;
            quiet_state(m);
            if let Some(guest) = &record.guest {
                // The process runs whatever happens here: a failed record is only logged.
                if let Err(e) = arrived(backend, log, record.pid, guest) {
                    tracing::warn!("process {} runs here but was not recorded: {e}", record.pid);
                }
            }
            Ok(serde_json::json!({ "pid": record.pid }))
        }
        Request::Discard { image } if m.handoffs().read(&image).is_none() => {
            // No handoff: pages a page pump took for a dump that failed. Removed unless
            // someone holds the image (then it is theirs to finish or drop).
            m.image_dir(&image)?;
            lock(&own.claims).remove(&image);
            if let Ok(Some(claim)) = m.handoffs().try_claim(&image) {
                m.remove(&image);
                m.handoffs().remove(&claim);
            }
            Ok(Value::Null)
        }
        Request::Discard { image } => {
            let claim = own.claim(m, &image)?;
            let done = m.discard(&claim);
            own.done(&image);
            done?;
            Ok(Value::Null)
        }
        _ => Err(AgentError::new(
            ErrorKind::BadRequest,
            "not a migration step",
        )),
    }
}

/// Waits until no other agent holds the state lock, before taking the backend to change
/// the state (so that `node` and the other reads are not held up meanwhile).
fn quiet_state(m: &Migrator) {
    let path = crate::backend::state::StateFile::lock_path_in(m.state_dir());
    crate::backend::state::wait_until_free(&path, std::time::Duration::from_secs(5));
}

/// Records a guest that runs here now, and logs it.
fn arrived<B: Backend>(
    backend: &Mutex<B>,
    log: Option<&EventLog>,
    pid: i32,
    g: &Guest,
) -> Result<(), AgentError> {
    lock(backend).arrived(pid, g.from, g.home, g.home_pid, g.nmigs, &g.carried)?;
    let text = events::arrived(pid, g.from, g.home, g.home_pid, g.carried.auto);
    events::append(log, EventKind::MigrateIn, &text, Some(pid), g.carried.auto);
    Ok(())
}

/// Applies what settling did to the node's records and its event log.
pub(super) fn apply_settled<B: Backend>(
    backend: &Mutex<B>,
    log: Option<&EventLog>,
    done: Vec<Settled>,
) {
    for s in done {
        let result = match &s {
            Settled::Resumed { .. } => Ok(()),
            Settled::Departed { pid, to, new_pid } => {
                let text = events::migrated_out(*pid, *to, *new_pid, false);
                events::append(log, EventKind::MigrateOut, &text, Some(*pid), false);
                lock(backend).departed(*pid, *to, *new_pid)
            }
            Settled::Arrived { pid, guest } => arrived(backend, log, *pid, guest),
        };
        if let Err(e) = result {
            tracing::warn!("recording {s:?}: {e}");
        }
    }
}
