//! The process lists of a cluster's nodes, as the windows read them: each node whose list
//! is asked for gets one watched list ([`crate::procwatch`]) on its connection — with an
//! agent of protocol 2 the whole list once and then only what changed, every
//! [`LIST_EVERY`] — and every later ask is answered from it at once. A node whose list
//! nobody asked for in [`LIST_IDLE`] is unsubscribed, and so the agent stops reading its
//! processes; a new connection (after the node was down) gets a new watch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ClientError, ClusterHandle, lock};
use crate::conn::AgentConn;
use crate::procwatch::ProcWatch;
use openmosix_hpc::model::{NodeId, ProcInfo};
use openmosix_hpc::protocol::Request;

/// How often a watched list is pushed (the windows read the lists once a second).
pub const LIST_EVERY: Duration = Duration::from_secs(1);

/// A watched list nobody asked for this long is unsubscribed.
pub const LIST_IDLE: Duration = Duration::from_secs(10);

/// One node's watched list.
#[derive(Debug)]
struct Watched {
    conn: Arc<AgentConn>,
    watch: ProcWatch,
    asked: Mutex<Instant>,
}

/// One node's watched list, if it has one, behind the lock taken to start it.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Watched>>>>;

/// Every node's watched list, each behind its own lock (starting one node's watch
/// waits for nothing of another's).
#[derive(Debug, Default)]
pub(super) struct Lists {
    nodes: Mutex<HashMap<NodeId, Slot>>,
}

impl ClusterHandle {
    /// The process list of node `id`, ordered by pid: from the node's watched list, which
    /// the first call starts (and waits for, at most the request time-out); an agent that
    /// cannot be watched is asked for the whole list (`procs`) instead.
    pub async fn procs(&self, id: NodeId) -> Result<Vec<ProcInfo>, ClientError> {
        let conn = self.conn(id)?;
        let timeout = self.shared.options.request_timeout;
        let slot = Arc::clone(lock(&self.shared.lists.nodes).entry(id).or_default());
        let watched = {
            let mut slot = slot.lock().await;
            match slot.as_ref().filter(|w| Arc::ptr_eq(&w.conn, &conn)) {
                Some(w) => Arc::clone(w),
                None => match conn.watch_procs(LIST_EVERY).await {
                    Ok(watch) => {
                        let w = Arc::new(Watched {
                            conn: Arc::clone(&conn),
                            watch,
                            asked: Mutex::new(Instant::now()),
                        });
                        tokio::spawn(end_when_idle(Arc::clone(&self.shared), id, Arc::clone(&w)));
                        *slot = Some(Arc::clone(&w));
                        w
                    }
                    Err(e) => {
                        tracing::debug!(node = id, "cannot watch the process list: {e}");
                        drop(slot);
                        return conn.request_within(Request::Procs, timeout).await;
                    }
                },
            }
        };
        *lock(&watched.asked) = Instant::now();
        if let Some(list) = watched.watch.procs() {
            return match watched.watch.model().error {
                Some(e) => Err(ClientError::Agent(e)),
                None => Ok(list),
            };
        }
        watched.watch.loaded(timeout).await?;
        Ok(watched.watch.procs().unwrap_or_default())
    }

    /// The watched list of node `id`, if one runs (for tests and diagnostics).
    pub fn watched_procs(&self, id: NodeId) -> Option<ProcWatch> {
        let slot = lock(&self.shared.lists.nodes).get(&id).cloned()?;
        let guard = slot.try_lock().ok()?;
        guard.as_ref().map(|w| w.watch.clone())
    }
}

/// Ends the watch `w` of node `id` once nobody asked for its list in [`LIST_IDLE`], or
/// its connection closed.
async fn end_when_idle(shared: Arc<super::Shared>, id: NodeId, w: Arc<Watched>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(LIST_IDLE / 4) => {}
            () = w.conn.closed() => break,
        }
        if lock(&w.asked).elapsed() >= LIST_IDLE {
            let _ = w.conn.unsubscribe(w.watch.sub()).await;
            break;
        }
    }
    let slot = lock(&shared.lists.nodes).get(&id).cloned();
    if let Some(slot) = slot {
        let mut slot = slot.lock().await;
        if slot.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, &w)) {
            *slot = None;
        }
    }
}
