//! Answering requests: subscriptions, and the requests the backend answers at once.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::subscription::{Subscriptions, Wants};
use super::{Out, Server, events, lock, off_thread, reply, to_json};
use crate::backend::Backend;
use crate::backend::criu::{Criu, Found};
use crate::backend::migration::Migrator;
use crate::backend::movelock;
use openmosix_hpc::bytes::BytesOrText;
use openmosix_hpc::model::RunOptions;
use openmosix_hpc::protocol::{
    self, AgentError, Capability, ErrorKind, EventKind, Hello, Readiness, Request,
};

/// How long a request that changes the state waits for the state lock before it takes
/// the backend (the backend then waits the rest of its own 5 s).
const STATE_WAIT: Duration = Duration::from_secs(5);

impl<B: Backend + 'static> Server<B> {
    /// Answers request `id`: a subscription at once, a migration step when it ends, any
    /// other request once the backend has answered it (in a blocking thread: the
    /// runtime's thread only moves lines).
    pub(super) async fn dispatch(
        self: &Arc<Self>,
        id: u64,
        request: Request,
        tx: &Out,
        subs: &mut Subscriptions,
    ) {
        let answer = match request {
            Request::Subscribe {
                interval_ms,
                procs,
                delta,
            } => {
                let wants = Wants {
                    interval_ms,
                    procs,
                    delta,
                };
                self.subscribe(id, wants, tx, subs)
            }
            Request::Resync { sub } => Self::resync(sub, subs),
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
            | Request::Prepare { .. }
            | Request::Dump { .. }
            | Request::Resume { .. }
            | Request::Finish { .. }
            | Request::Restore { .. }
            | Request::Commit { .. }
            | Request::Release { .. }
            | Request::Discard { .. }) => return self.start_step(id, r, tx),
            Request::Handoffs => self.handoffs().await,
            other => {
                // Each call runs on its own, so a slow one (a change waiting for the state
                // lock) holds up no other request of the connection; at most
                // MAX_CALLS at once, and the connection reads no further request meanwhile.
                let Ok(permit) = Arc::clone(&self.calls).acquire_owned().await else {
                    return;
                };
                let server = Arc::clone(self);
                let tx = tx.clone();
                tokio::spawn(async move {
                    let answer = off_thread(move || server.handle(other)).await;
                    reply(&tx, id, answer);
                    drop(permit);
                });
                return;
            }
        };
        reply(tx, id, answer);
    }

    /// Answers one request that needs no streaming.
    pub fn handle(&self, request: Request) -> Result<Value, AgentError> {
        // What waits for criu's checks waits before it takes the backend.
        match &request {
            Request::Readiness => return to_json(self.readiness()),
            Request::Hello { protocol } if protocol::negotiate(*protocol) < READINESS_PROTOCOL => {
                // An older client reads migration from `hello` only: it gets it known.
                let _ = self.readiness();
            }
            _ => {}
        }
        let reads_only = matches!(
            request,
            Request::Hello { .. }
                | Request::Node
                | Request::AdminGet
                | Request::Tune
                | Request::Procs
                | Request::Proc { .. }
                | Request::CanMigrate { .. }
                | Request::GetMap
                | Request::Events { .. }
                | Request::Emigrants
                | Request::Readiness
        );
        if let (false, Some(path)) = (reads_only, &self.state_lock) {
            crate::backend::state::wait_until_free(path, STATE_WAIT);
        }
        let mut b = lock(&self.backend);
        match request {
            Request::Hello { protocol } => to_json(self.hello(&*b, protocol::negotiate(protocol))),
            Request::Node => to_json(b.node()?),
            Request::AdminGet => to_json(b.admin()?),
            Request::Tune => to_json(b.tune()?),
            Request::Procs => to_json(b.procs()?),
            Request::Proc { pid } => to_json(b.proc(pid)?),
            Request::Signal { pid, signal } => {
                b.signal(pid, signal)?;
                self.logged(
                    (),
                    EventKind::Signal,
                    &events::signal(pid, signal),
                    Some(pid),
                )
            }
            Request::Renice { pid, nice } => {
                b.renice(pid, nice)?;
                self.logged((), EventKind::Renice, &events::renice(pid, nice), Some(pid))
            }
            Request::SetLock { pid, lock } => {
                let p = b.set_lock(pid, lock)?;
                self.logged(p, EventKind::Lock, &events::lock(pid, lock), Some(pid))
            }
            Request::SetMask { pid, mask } => {
                let p = b.set_mask(pid, &mask)?;
                self.logged(p, EventKind::Mask, &events::mask(pid, &mask), Some(pid))
            }
            Request::AdminSet { change } => {
                let admin = b.set_admin(&change)?;
                self.logged(admin, EventKind::Admin, &events::admin(&change), None)
            }
            Request::Goto { pid, to } => to_json(b.goto(pid, to)?),
            Request::Run { argv, options } => self.run(&mut *b, argv, &options),
            Request::Expel => {
                let n = b.expel()?;
                self.logged(n, EventKind::Admin, &events::expel(n), None)
            }
            Request::Bring => {
                let n = b.bring()?;
                self.logged(n, EventKind::Admin, &events::bring(n), None)
            }
            Request::Events { after } => self.events(after),
            Request::SetMap { nodes } => to_json(b.set_map(&nodes)?),
            Request::GetMap => to_json(b.map()?),
            Request::CanMigrate { pid, to } => {
                // A process on its way is refused for that reason, not for criu's trace.
                let moving = self.migrator.as_ref().map(Migrator::moving_dir);
                if let Some(why) = moving.and_then(|d| movelock::moved_by(&d, pid)) {
                    return Err(AgentError::new(ErrorKind::PermissionDenied, why));
                }
                to_json(b.can_migrate(pid, to)?)
            }
            Request::Whereabouts { home_pid, at } => to_json(b.whereabouts(home_pid, at)?),
            Request::Emigrants => to_json(b.emigrants()?),
            Request::Readiness => to_json(self.readiness()),
            Request::Subscribe { .. } | Request::Unsubscribe { .. } | Request::Resync { .. } => {
                Err(needs_streaming("subscriptions"))
            }
            Request::Predump { .. }
            | Request::Prepare { .. }
            | Request::Dump { .. }
            | Request::Resume { .. }
            | Request::Finish { .. }
            | Request::Restore { .. }
            | Request::Commit { .. }
            | Request::Release { .. }
            | Request::Discard { .. }
            | Request::Handoffs => Err(needs_streaming("migration steps")),
        }
    }

    fn hello(&self, b: &B, protocol: u32) -> Hello {
        let known = match &self.migrator {
            None => Some(self.no_migration()),
            Some(m) => m.checks().now().map(readiness_of),
        };
        let checking = known.is_none();
        let readiness = known.unwrap_or_else(|| Readiness {
            migration: Capability {
                available: false,
                detail: "criu's checks are still running".into(),
            },
            predump: false,
            postcopy: false,
        });
        let ops = protocol::OPS
            .iter()
            .filter(|op| protocol >= READINESS_PROTOCOL || **op != "readiness")
            .map(|s| (*s).to_owned());
        Hello {
            protocol,
            agent_version: env!("CARGO_PKG_VERSION").into(),
            node_id: b.node_id(),
            backend: b.kind().into(),
            ops: ops.collect(),
            migration: readiness.migration,
            predump: readiness.predump,
            postcopy: readiness.postcopy,
            memory_images: self
                .migrator
                .as_ref()
                .is_some_and(Migrator::has_memory_folder),
            // This agent's pumps take the `image` word whenever it can migrate; whether
            // post-copy itself works is `postcopy` (known once criu's checks end).
            postcopy_image_link: self.migrator.is_some(),
            checking,
        }
    }

    /// Whether migration works here, waiting for criu's checks if they still run.
    fn readiness(&self) -> Readiness {
        match &self.migrator {
            None => self.no_migration(),
            Some(m) => readiness_of(&m.checks().wait()),
        }
    }

    fn no_migration(&self) -> Readiness {
        Readiness {
            migration: self.migration.clone(),
            predump: false,
            postcopy: false,
        }
    }

    /// Starts a job and logs it.
    fn run(
        &self,
        b: &mut B,
        argv: Vec<BytesOrText>,
        options: &RunOptions,
    ) -> Result<Value, AgentError> {
        let argv: Vec<Vec<u8>> = argv.into_iter().map(|a| a.0).collect();
        let started = b.run(&argv, options)?;
        let pid = started.pid;
        self.logged(
            started,
            EventKind::Run,
            &events::run(pid, &argv, options),
            Some(pid),
        )
    }

    /// The events after seq `after` (none when this agent keeps no log).
    fn events(&self, after: u64) -> Result<Value, AgentError> {
        match &self.events {
            None => to_json(Vec::<protocol::Event>::new()),
            Some(log) => to_json(
                log.answer(after)
                    .map_err(|e| AgentError::io("reading the event log", &e))?,
            ),
        }
    }

    /// Logs what was done (`text`, an event of `kind`) and answers `value`.
    fn logged<T: Serialize>(
        &self,
        value: T,
        kind: EventKind,
        text: &str,
        pid: Option<i32>,
    ) -> Result<Value, AgentError> {
        events::append(self.events.as_deref(), kind, text, pid, false);
        to_json(value)
    }
}

/// The protocol whose `hello` comes before criu's checks end (with `checking`), and
/// which has the `readiness` op.
const READINESS_PROTOCOL: u32 = 3;

/// What the outcome of criu's checks says about migration here.
fn readiness_of((criu, capability): &Found) -> Readiness {
    Readiness {
        migration: capability.clone(),
        predump: criu.as_ref().is_some_and(Criu::can_predump),
        postcopy: criu.as_ref().is_some_and(Criu::can_postcopy),
    }
}

/// The answer to a request that a one-shot connection cannot carry.
fn needs_streaming(what: &str) -> AgentError {
    AgentError::new(
        ErrorKind::BadRequest,
        format!("{what} need a streaming connection"),
    )
}
