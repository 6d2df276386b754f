//! Settling handoffs that wait for a decision (docs/migration.md): a target holds a
//! process restored and stopped, and the client that moved it went away before telling
//! it to run or to go. Only the source knows whether the move was committed, and nodes
//! need not reach each other, so a client asks: the source's `handoffs` answer holds
//! the decision (committed → `release` on the target, called off → `discard`).
//! [`crate::ClusterHandle`] does this every few seconds for every node it has.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::ClientError;
use crate::conn::AgentConn;
use openmosix_hpc::handoff::Handoff;
use openmosix_hpc::model::NodeId;
use openmosix_hpc::protocol::Request;

/// A handoff still waiting, and why, for windows and `openmosix ps`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsettled {
    /// The node whose record it is.
    pub node: NodeId,
    /// The record.
    pub handoff: Handoff,
    /// Where the process is, why it waits and what the admin can do.
    pub why: String,
}

/// The handoffs of one node, or `None` when it cannot be asked (an older agent
/// without handoffs, or a failed request).
async fn handoffs_of(conn: &AgentConn) -> Option<Vec<Handoff>> {
    if !conn.hello().ops.iter().any(|o| o == "handoffs") {
        return None;
    }
    conn.request::<Vec<Handoff>>(Request::Handoffs).await.ok()
}

/// Settles what can be settled among the nodes of `conns` (the nodes that answer);
/// returns what still waits.
pub async fn settle_handoffs(conns: &BTreeMap<NodeId, Arc<AgentConn>>) -> Vec<Unsettled> {
    settle_among(conns).await
}

/// [`settle_handoffs`] among connections held any way (a move settles what waits
/// between its two ends before it starts: a copy left stopped by an earlier move that
/// failed would hold the pid).
pub(crate) async fn settle_among<C>(conns: &BTreeMap<NodeId, C>) -> Vec<Unsettled>
where
    C: std::ops::Deref<Target = AgentConn> + Sync,
{
    let mut asked: HashMap<NodeId, Option<Vec<Handoff>>> = HashMap::new();
    let mut waiting = Vec::new();
    for (&node, conn) in conns {
        let Some(list) = handoffs_of(conn).await else {
            continue;
        };
        for h in list.into_iter().filter(Handoff::in_doubt) {
            let why = match settle_one(node, conn, &h, conns, &mut asked).await {
                Ok(()) => continue,
                Err(why) => why,
            };
            tracing::info!("node {node}: {why}");
            waiting.push(Unsettled {
                node,
                handoff: h,
                why,
            });
        }
    }
    waiting
}

/// Brings the source's decision to target `node`; `Err`: why it must wait.
async fn settle_one<C>(
    node: NodeId,
    conn: &AgentConn,
    h: &Handoff,
    conns: &BTreeMap<NodeId, C>,
    asked: &mut HashMap<NodeId, Option<Vec<Handoff>>>,
) -> Result<(), String>
where
    C: std::ops::Deref<Target = AgentConn> + Sync,
{
    let waits = h.describe(node);
    let Some(source) = h.peer else {
        return Err(format!(
            "{waits}; the record names no source: `openmosix handoffs --discard {node} {}` removes it, `--release` lets it run",
            h.image
        ));
    };
    let Some(src) = conns.get(&source) else {
        return Err(format!(
            "{waits}; node {source} cannot be reached now: it is settled as soon as node {source} answers"
        ));
    };
    if let std::collections::hash_map::Entry::Vacant(e) = asked.entry(source) {
        e.insert(handoffs_of(src).await);
    }
    let records = asked.get(&source).cloned().flatten();
    let Some(records) = records else {
        return Err(format!(
            "{waits}; node {source} did not say: it is settled as soon as node {source} answers"
        ));
    };
    let decision = records
        .iter()
        .find(|r| r.image == h.image)
        .map(|r| r.phase.decision());
    let request = match decision {
        Some(Some(true)) => Request::Release {
            image: h.image.clone(),
        },
        Some(Some(false)) => Request::Discard {
            image: h.image.clone(),
        },
        Some(None) => return Err(format!("{waits}; node {source} is still deciding")),
        None => {
            return Err(format!(
                "{waits}; node {source} has no record of this move: if process {} no longer runs on node {source}, `openmosix handoffs --release {node} {}` lets this copy run, else `--discard` removes it",
                h.pid, h.image
            ));
        }
    };
    let what = request.op();
    conn.request::<serde_json::Value>(request)
        .await
        .map(|_| tracing::info!("node {node}: image {} settled ({what})", h.image))
        .map_err(|e: ClientError| format!("{waits}; {what} failed: {e}"))
}
