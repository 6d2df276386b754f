//! The handoff of a migrating process between two agents, as both ends record it
//! (docs/migration.md has the state machine and the table of faults).
//!
//! The source goes `dumping → dumped → committed → departed` (or `→ aborted`), the
//! target `restoring → restored → running` (or is discarded). Each phase is written to
//! disk by the agent before it acts on it, so an agent that dies and a client that
//! goes away leave a record that the next agent of the node settles.

use serde::{Deserialize, Serialize};

use crate::model::NodeId;
use crate::protocol::Carried;

/// Which end of the move a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The node the process leaves.
    Source,
    /// The node it goes to.
    Target,
}

/// Where a handoff stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Source: criu dump is running (the tree may be frozen).
    Dumping,
    /// Source: the tree is dumped and stopped; the target may be restoring it.
    Dumped,
    /// Source: the target holds the tree restored and stopped, and the move is decided:
    /// the original is never resumed, only removed.
    Committed,
    /// Source: the original is gone; the process runs on the target (kept as the answer
    /// for a target that asks).
    Departed,
    /// Source: the move was called off and the original runs here again (kept as the
    /// answer for a target that asks).
    Aborted,
    /// Target: criu restore is running.
    Restoring,
    /// Target: the tree is restored and stopped, waiting for the source's decision.
    Restored,
    /// Target: the tree was released to run.
    Running,
}

impl Phase {
    /// The source's decision, as a target waiting in [`Phase::Restored`] must take it:
    /// `Some(true)` run, `Some(false)` discard, `None` not decided yet.
    pub fn decision(self) -> Option<bool> {
        match self {
            Phase::Committed | Phase::Departed => Some(true),
            Phase::Aborted => Some(false),
            _ => None,
        }
    }
}

/// What the target records about its guest once it runs (from `restore`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guest {
    /// The node it came from.
    pub from: NodeId,
    /// Its home node.
    pub home: NodeId,
    /// Its pid on its home node.
    pub home_pid: i32,
    /// Migrations it had, this one included.
    pub nmigs: u32,
    /// The settings the source kept for it.
    #[serde(default)]
    pub carried: Carried,
}

/// One node's record of one handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// The image (names the move on both ends).
    pub image: String,
    /// This node's end.
    pub role: Role,
    /// Where it stands.
    pub phase: Phase,
    /// Source: the original pid; target: the restored root's pid (0 before restore).
    pub pid: i32,
    /// The pids of the tree (the same on both ends: criu restores pids).
    #[serde(default)]
    pub tree: Vec<i32>,
    /// The other end, when known.
    #[serde(default)]
    pub peer: Option<NodeId>,
    /// The process's pid on the target (source, from `commit`).
    #[serde(default)]
    pub new_pid: Option<i32>,
    /// Target: what to record once it runs.
    #[serde(default)]
    pub guest: Option<Guest>,
    /// When this phase was written (ms since the epoch).
    pub since_ms: u64,
    /// The node's boot id when it was written (a record from before a reboot names
    /// processes that are gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// Whether a live agent process holds the handoff (in progress), in answers to
    /// `handoffs`; not stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub active: bool,
}

impl Handoff {
    /// A target's tree waiting for a decision that no live agent drives: what a
    /// client settles by asking the source.
    pub fn in_doubt(&self) -> bool {
        self.role == Role::Target && self.phase == Phase::Restored && !self.active
    }

    /// One sentence for the admin: where the process is and why it waits.
    pub fn describe(&self, here: NodeId) -> String {
        let peer = self
            .peer
            .map_or_else(|| "another node".to_owned(), |n| format!("node {n}"));
        match (self.role, self.phase) {
            (Role::Target, Phase::Restored) => format!(
                "process {} arrived from {peer} and waits stopped on node {here} until {peer} says whether the move was committed",
                self.pid
            ),
            (Role::Target, _) => format!("process {} is arriving from {peer}", self.pid),
            (Role::Source, Phase::Committed) => format!(
                "process {} moved to {peer}; its stopped original on node {here} is being removed",
                self.pid
            ),
            (Role::Source, Phase::Departed) => {
                format!("process {} moved to {peer}", self.pid)
            }
            (Role::Source, Phase::Aborted) => format!(
                "process {} stayed on node {here}: its move to {peer} was called off",
                self.pid
            ),
            (Role::Source, _) => format!("process {} is moving to {peer}", self.pid),
        }
    }
}
