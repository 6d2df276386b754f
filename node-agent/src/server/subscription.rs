//! Subscriptions: the node's figures, and perhaps its process list, pushed every interval.
//!
//! A subscription of protocol 1 pushes the whole list every time. One with `delta`
//! (protocol 2) pushes the whole list first and after `resync`, and otherwise what changed
//! since its last push ([`openmosix_hpc::delta`]): the list it compares with is the one it
//! pushed last, held by the subscription's task (nothing else), so a push skipped because
//! the peer did not read the one before loses nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Out, Outgoing, Server, line, lock, off_thread};
use crate::backend::Backend;
use openmosix_hpc::delta;
use openmosix_hpc::model::ProcInfo;
use openmosix_hpc::protocol::{AgentError, ErrorKind, ResponseLine, Update};

/// The most subscriptions one connection may hold at once (each reads the node, and
/// perhaps every process, every interval; docs/protocol.md).
pub const MAX_SUBSCRIPTIONS: usize = 16;

/// One running subscription.
#[derive(Debug)]
pub(super) struct Sub {
    task: JoinHandle<()>,
    /// Wakes the task for a whole list at once (`resync`).
    resync: Arc<Resync>,
}

impl Sub {
    /// Stops its pushes.
    pub(super) fn abort(&self) {
        self.task.abort();
    }
}

/// A `resync` asked for and not yet pushed.
#[derive(Debug, Default)]
struct Resync {
    asked: AtomicBool,
    wake: Notify,
}

/// The subscriptions of a connection, by id.
pub(super) type Subscriptions = HashMap<u64, Sub>;

/// What a subscription asked for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wants {
    /// Push every this many milliseconds.
    pub interval_ms: u64,
    /// With the process list.
    pub procs: bool,
    /// The list as deltas (protocol 2).
    pub delta: bool,
}

/// What a delta subscription's task keeps between pushes.
#[derive(Debug, Default)]
struct Sent {
    /// The list pushed last (none before the first push, and after `resync`).
    list: Option<Vec<ProcInfo>>,
    /// The number of the last push.
    seq: u64,
}

impl<B: Backend + 'static> Server<B> {
    /// Starts subscription `id` (replacing one with the same id).
    pub(super) fn subscribe(
        &self,
        id: u64,
        wants: Wants,
        tx: &Out,
        subs: &mut Subscriptions,
    ) -> Result<Value, AgentError> {
        if !(100..=3_600_000).contains(&wants.interval_ms) {
            return Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!("interval {} ms is outside 100..3600000", wants.interval_ms),
            ));
        }
        subs.retain(|_, s| !s.task.is_finished());
        if subs.len() >= MAX_SUBSCRIPTIONS && !subs.contains_key(&id) {
            return Err(AgentError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "this connection already has {MAX_SUBSCRIPTIONS} subscriptions, the most \
                     one connection may hold; unsubscribe one first"
                ),
            ));
        }
        let resync = Arc::new(Resync::default());
        let task = self.subscription(id, wants, tx.clone(), Arc::clone(&resync));
        if let Some(old) = subs.insert(id, Sub { task, resync }) {
            old.abort();
        }
        Ok(serde_json::json!({ "sub": id }))
    }

    /// The task that pushes the node's figures (and processes, if asked) every interval
    /// until the connection goes.
    fn subscription(&self, id: u64, wants: Wants, tx: Out, resync: Arc<Resync>) -> JoinHandle<()> {
        let backend = Arc::clone(&self.backend);
        let waiting = Arc::new(AtomicBool::new(false));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(wants.interval_ms));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut sent = Some(Sent::default());
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = resync.wake.notified() => {}
                }
                // The peer has not read the last push yet: skip this one (and its work).
                if waiting.load(Ordering::Acquire) {
                    continue;
                }
                let whole = resync.asked.swap(false, Ordering::AcqRel);
                let backend = Arc::clone(&backend);
                let mut kept = sent.take().unwrap_or_default();
                // Read, compared and written out off the runtime's thread.
                let (msg, kept) = off_thread(move || {
                    let mut b = lock(&backend);
                    let read = b.node().and_then(|node| {
                        let procs = if wants.procs { Some(b.procs()?) } else { None };
                        Ok((node, procs))
                    });
                    drop(b);
                    let msg = match read {
                        Ok((node, procs)) if wants.delta => {
                            next_push(id, &mut kept, node, procs, whole)
                        }
                        Ok((node, procs)) => line(&ResponseLine::Push {
                            sub: id,
                            data: Update::new(node, procs),
                        }),
                        Err(err) => line(&ResponseLine::Err { id: Some(id), err }),
                    };
                    (msg, kept)
                })
                .await;
                sent = Some(kept);
                waiting.store(true, Ordering::Release);
                if tx.send(Outgoing::Push(msg, Arc::clone(&waiting))).is_err() {
                    return;
                }
            }
        })
    }

    /// `resync`: the next push of `sub` comes now, with the whole list.
    pub(super) fn resync(sub: u64, subs: &Subscriptions) -> Result<Value, AgentError> {
        let s = subs.get(&sub).ok_or_else(|| {
            AgentError::new(ErrorKind::InvalidArgument, format!("no subscription {sub}"))
        })?;
        s.resync.asked.store(true, Ordering::Release);
        s.resync.wake.notify_one();
        Ok(Value::Null)
    }
}

/// The line of the next push of delta subscription `sub`: the whole list the first time
/// and when `whole`, else what changed since the list in `sent`; numbered.
fn next_push(
    sub: u64,
    sent: &mut Sent,
    node: openmosix_hpc::model::NodeInfo,
    procs: Option<Vec<ProcInfo>>,
    whole: bool,
) -> String {
    sent.seq += 1;
    let mut data = Update::new(node, None);
    data.seq = Some(sent.seq);
    let Some(mut list) = procs else {
        return line(&ResponseLine::Push { sub, data });
    };
    // Deltas compare lists ordered by pid (the backends list them so; a pid twice would
    // be a bug, and the second is dropped rather than sent).
    list.sort_by_key(|p| p.pid);
    list.dedup_by_key(|p| p.pid);
    if let Some(before) = sent.list.as_ref().filter(|_| !whole) {
        data.delta = Some(delta::diff(before, &list));
        sent.list = Some(list);
        return line(&ResponseLine::Push { sub, data });
    }
    data.procs = Some(list);
    let push = ResponseLine::Push { sub, data };
    let text = line(&push);
    if let ResponseLine::Push { data, .. } = push {
        sent.list = data.procs;
    }
    text
}
