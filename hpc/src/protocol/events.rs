//! What happened on a node, as the `events` op answers it.

use serde::{Deserialize, Serialize};

/// Most events one `events` answer carries.
pub const MAX_EVENTS: usize = 1000;

/// What an [`Event`] was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A signal was sent to a process.
    Signal,
    /// A nice value was set.
    Renice,
    /// An admin switch or setting changed (mosctl, setpe).
    Admin,
    /// A job was started (mosrun).
    Run,
    /// A process left this node (migration, `finish`).
    MigrateOut,
    /// A process arrived on this node (migration, `restore`).
    MigrateIn,
    /// A process was locked or unlocked.
    Lock,
    /// A process's cluster mask was set.
    Mask,
    /// A kind this program does not know (written by a newer agent).
    #[serde(other)]
    Other,
}

impl EventKind {
    /// The name in the log and in the collector's `events.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Signal => "signal",
            EventKind::Renice => "renice",
            EventKind::Admin => "admin",
            EventKind::Run => "run",
            EventKind::MigrateOut => "migrate_out",
            EventKind::MigrateIn => "migrate_in",
            EventKind::Lock => "lock",
            EventKind::Mask => "mask",
            EventKind::Other => "other",
        }
    }
}

/// One line of a node's event log (`<state_dir>/events.jsonl`) and of the `events` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Increases by one with every event of the node, across log rotations.
    pub seq: u64,
    /// When, in milliseconds since the Unix epoch (the node's clock).
    pub time: u64,
    /// What it was about.
    pub kind: EventKind,
    /// One sentence, for people.
    pub text: String,
    /// The process it concerned, if any (its pid on this node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Done by the load balancer rather than by a person (automatic migrations).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
}
