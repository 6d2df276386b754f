//! A node's process list kept up to date by one subscription: with an agent of protocol 2
//! the agent pushes the whole list once and then only what changed, which is applied
//! here ([`openmosix_hpc::delta`]); an agent of protocol 1 pushes the whole list every
//! time, which is simply taken. Pushes are applied where the connection reads them, so
//! none is lost to a slow reader; a numbered push that does not follow the one before,
//! or a delta that does not fit, makes the client ask for the whole list again
//! (`resync`) and keep the list it has until that comes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::ClientError;
use openmosix_hpc::delta;
use openmosix_hpc::model::{NodeInfo, ProcInfo};
use openmosix_hpc::protocol::{AgentError, Request, RequestLine, Update};

/// A node's process list as the pushes of one subscription make it.
#[derive(Debug, Clone, Default)]
pub struct ProcsModel {
    /// The processes, ordered by pid.
    pub procs: Vec<ProcInfo>,
    /// The node's figures of the last push.
    pub node: Option<NodeInfo>,
    /// Whether a whole list has arrived.
    pub loaded: bool,
    /// The agent's error for the last interval, if it failed (the list is the older one).
    pub error: Option<AgentError>,
    /// When the last push was taken.
    pub updated: Option<Instant>,
    /// The number of the last push taken (protocol 2).
    seq: u64,
    /// Whether the deltas follow on from `procs` (false while a resync is awaited).
    in_sync: bool,
    /// Pushes taken since the start.
    pub pushes: u64,
    /// Whole lists asked for again since the start.
    pub resyncs: u64,
}

/// What taking a push asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Nothing more.
    Done,
    /// Ask for the whole list again (`resync`): the deltas no longer follow, for this
    /// reason.
    Resync(String),
}

impl ProcsModel {
    /// Takes one push of the subscription.
    pub fn take(&mut self, update: Update) -> Taken {
        self.pushes += 1;
        self.updated = Some(Instant::now());
        self.error = None;
        self.node = Some(update.node);
        let seq = update.seq;
        let expected = self.seq.wrapping_add(1);
        if let Some(s) = seq {
            self.seq = s;
        }
        if let Some(list) = update.procs {
            let mut list = list;
            list.sort_by_key(|p| p.pid);
            self.procs = list;
            self.loaded = true;
            self.in_sync = true;
            return Taken::Done;
        }
        let Some(d) = update.delta else {
            return Taken::Done;
        };
        if !self.in_sync {
            // Waiting for the whole list: this delta follows on from nothing held.
            return Taken::Done;
        }
        if seq != Some(expected) {
            self.in_sync = false;
            return Taken::Resync(format!(
                "push {} followed push {}",
                seq.map_or_else(|| "without a number".to_owned(), |s| s.to_string()),
                expected.wrapping_sub(1)
            ));
        }
        match delta::apply(&mut self.procs, &d) {
            Ok(()) => Taken::Done,
            Err(e) => {
                self.in_sync = false;
                Taken::Resync(e.to_string())
            }
        }
    }

    /// Takes the agent's error for one interval.
    pub fn take_error(&mut self, err: AgentError) {
        self.error = Some(err);
    }
}

/// Where the connection's reader puts the pushes of a watched list.
#[derive(Debug)]
pub(crate) struct ModelSink {
    sub: AtomicU64,
    model: Mutex<ProcsModel>,
    changed: watch::Sender<u64>,
    out: mpsc::UnboundedSender<String>,
    ids: Arc<AtomicU64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ModelSink {
    pub(crate) fn new(out: mpsc::UnboundedSender<String>, ids: Arc<AtomicU64>) -> ModelSink {
        ModelSink {
            sub: AtomicU64::new(0),
            model: Mutex::default(),
            changed: watch::channel(0).0,
            out,
            ids,
        }
    }

    pub(crate) fn set_sub(&self, sub: u64) {
        self.sub.store(sub, Ordering::Release);
    }

    /// Takes a push (on the connection's reader task).
    pub(crate) fn push(&self, update: Update) {
        let taken = lock(&self.model).take(update);
        if let Taken::Resync(why) = taken {
            let sub = self.sub.load(Ordering::Acquire);
            tracing::debug!(sub, "asking for the whole process list again: {why}");
            lock(&self.model).resyncs += 1;
            // The answer (null) is read and dropped: no one waits for it.
            let id = self.ids.fetch_add(1, Ordering::Relaxed);
            let request = RequestLine {
                id,
                request: Request::Resync { sub },
            };
            if let Ok(text) = serde_json::to_string(&request) {
                let _ = self.out.send(text);
            }
        }
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Takes the agent's error for one interval.
    pub(crate) fn error(&self, err: AgentError) {
        lock(&self.model).take_error(err);
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }
}

/// A watched process list: the subscription's id and the model its pushes keep. Dropping
/// it does not stop the pushes; [`crate::AgentConn::unsubscribe`] does.
#[derive(Debug, Clone)]
pub struct ProcWatch {
    pub(crate) sub: u64,
    pub(crate) sink: Arc<ModelSink>,
    /// Whether the agent sends deltas (protocol 2) or whole lists.
    pub delta: bool,
}

impl ProcWatch {
    /// The subscription's id.
    pub fn sub(&self) -> u64 {
        self.sub
    }

    /// The model as it is now (a copy).
    pub fn model(&self) -> ProcsModel {
        lock(&self.sink.model).clone()
    }

    /// The processes, once a whole list has arrived (a copy).
    pub fn procs(&self) -> Option<Vec<ProcInfo>> {
        let m = lock(&self.sink.model);
        m.loaded.then(|| m.procs.clone())
    }

    /// A receiver that changes with every push taken.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.sink.changed.subscribe()
    }

    /// Waits until a whole list has arrived, at most `timeout`.
    pub async fn loaded(&self, timeout: Duration) -> Result<(), ClientError> {
        let mut rx = self.changes();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let m = lock(&self.sink.model);
                if m.loaded {
                    return Ok(());
                }
                if let Some(e) = &m.error {
                    return Err(ClientError::Agent(e.clone()));
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Err(_) => return Err(ClientError::Timeout(timeout)),
                Ok(Err(_)) => return Err(ClientError::Closed),
                Ok(Ok(())) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmosix_hpc::bytes::BytesOrText;
    use openmosix_hpc::model::NodeStatus;

    fn node() -> NodeInfo {
        NodeInfo {
            id: 1,
            cpus: 1,
            speed: 1000,
            load: 0.0,
            util: 0.0,
            mem: 1,
            rmem: 1,
            tmem: 2,
            status: NodeStatus::Up,
        }
    }

    fn proc(pid: i32, utime: u64) -> ProcInfo {
        ProcInfo {
            pid,
            utime,
            state: 'S',
            comm: BytesOrText::from("p"),
            cmdline: BytesOrText::from("p"),
            ..ProcInfo::default()
        }
    }

    fn full(seq: Option<u64>, procs: Vec<ProcInfo>) -> Update {
        let mut u = Update::new(node(), Some(procs));
        u.seq = seq;
        u
    }

    fn delta(seq: u64, before: &[ProcInfo], after: &[ProcInfo]) -> Update {
        let mut u = Update::new(node(), None);
        u.seq = Some(seq);
        u.delta = Some(delta::diff(before, after));
        u
    }

    #[test]
    fn deltas_follow_on_and_gaps_ask_for_the_whole_list() {
        let a = vec![proc(1, 0), proc(4, 0)];
        let b = vec![proc(1, 2), proc(7, 0)];
        let c = vec![proc(1, 3), proc(7, 1), proc(9, 0)];
        let mut m = ProcsModel::default();
        assert_eq!(m.take(full(Some(1), a.clone())), Taken::Done);
        assert_eq!(m.take(delta(2, &a, &b)), Taken::Done);
        assert_eq!(m.procs, b);
        // Push 3 went missing: 4 does not follow on.
        assert!(matches!(m.take(delta(4, &b, &c)), Taken::Resync(_)));
        assert_eq!(m.procs, b, "the list held stays until the whole one comes");
        // Deltas before the whole list are not applied.
        assert_eq!(m.take(delta(5, &b, &c)), Taken::Done);
        assert_eq!(m.procs, b);
        assert_eq!(m.take(full(Some(6), c.clone())), Taken::Done);
        assert_eq!(m.take(delta(7, &c, &a)), Taken::Done);
        assert_eq!(m.procs, a);
        // A delta that does not fit the list.
        assert!(matches!(m.take(delta(8, &c, &b)), Taken::Resync(_)));
        // An agent of protocol 1: whole lists, no numbers.
        let mut old = ProcsModel::default();
        for list in [&a, &b, &c] {
            assert_eq!(old.take(full(None, list.clone())), Taken::Done);
            assert_eq!(&old.procs, list);
        }
    }
}
