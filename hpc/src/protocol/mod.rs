//! The agent protocol: JSON lines over the agent's stdin/stdout (docs/protocol.md).
//!
//! A client writes one request a line, `{"id":N,"op":"...",...}`, and reads one response
//! a line with the same id: `{"id":N,"ok":VALUE}` or `{"id":N,"err":{"kind","message"}}`.
//! A `subscribe` request additionally makes the agent push `{"sub":N,"data":{...}}` lines,
//! where N is the id of the subscribe request, until `unsubscribe` or the end of input.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bytes::BytesOrText;
use crate::delta::ProcsDelta;
mod error;
mod events;
mod hello;

pub use error::{AgentError, ErrorKind};
pub use events::{Event, EventKind, MAX_EVENTS};
pub use hello::{Capability, Hello, Readiness};

use crate::model::{AdminChange, MapNode, MigMask, NodeId, NodeInfo, ProcInfo, RunOptions, Signal};

/// The newest protocol this program speaks. Bumped on every change a peer must know of;
/// `hello` negotiates it (docs/protocol.md#versioning).
pub const PROTOCOL_VERSION: u32 = 3;

/// The oldest protocol this program still speaks: an agent answers a `hello` that names
/// no version with it, and a client takes an agent that speaks it.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// The protocol an agent speaks with a client whose `hello` asked for `asked` (none: a
/// client of protocol 1, which asks for nothing and takes only 1).
pub fn negotiate(asked: Option<u32>) -> u32 {
    asked.map_or(MIN_PROTOCOL_VERSION, |v| {
        v.clamp(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION)
    })
}

/// Longest request line the agent accepts, in bytes (without the newline).
pub const MAX_LINE: usize = 1024 * 1024;

/// Most bytes in one frame of a page stream (relayed or node to node); a longer
/// frame is refused (docs/protocol.md, "Page streams").
pub const PAGE_FRAME: usize = 256 * 1024;

/// One request line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLine {
    /// Chosen by the client; echoed in the response.
    pub id: u64,
    /// The operation.
    #[serde(flatten)]
    pub request: Request,
}

/// The operations of the protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who are you? Answered with [`Hello`], whose `protocol` is [`negotiate`]`(protocol)`.
    Hello {
        /// The newest protocol the client speaks (protocol 2 on; a client of protocol 1
        /// leaves it out and gets 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<u32>,
    },
    /// The node's figures: [`NodeInfo`].
    Node,
    /// The admin switches: [`AdminState`](crate::model::AdminState).
    AdminGet,
    /// Change one admin setting; answered with the new [`AdminState`](crate::model::AdminState).
    AdminSet {
        /// The change.
        change: AdminChange,
    },
    /// `mosctl gettune`, `getyard`, `getdecay` as text: [`TuneInfo`].
    Tune,
    /// Every process of the node: `Vec<ProcInfo>`.
    Procs,
    /// One process: [`ProcInfo`].
    Proc {
        /// Process id.
        pid: i32,
    },
    /// Send a signal to a process; answered with `null`.
    Signal {
        /// Process id.
        pid: i32,
        /// The signal.
        signal: Signal,
    },
    /// Set a process's nice value; answered with `null`.
    Renice {
        /// Process id.
        pid: i32,
        /// New nice value (-20..=19).
        nice: i32,
    },
    /// Lock a process to this node or unlock it (`/proc/PID/lock`, HOWTO table 8-5);
    /// answered with the new [`ProcInfo`]. Unlocking also frees a job started with
    /// `nomig`, `runhome` or `runon`. Kernel threads and the agent itself are refused.
    SetLock {
        /// Process id.
        pid: i32,
        /// `true` locks, `false` unlocks.
        lock: bool,
    },
    /// Set the cluster mask of a process (`migfilter`, `mignodes`, `migpolicy`, HOWTO
    /// 8.4); answered with the new [`ProcInfo`]. Kernel threads and the agent itself are
    /// refused.
    SetMask {
        /// Process id.
        pid: i32,
        /// The new mask (`migpolicy` 0 = DENY, 1 = ALLOW).
        mask: MigMask,
    },
    /// Have the kernel move a process to node `to` (`/proc/PID/goto`, HOWTO table 8-5)
    /// after the checks of `can_migrate`; answered with `null`. Only the kernel backend
    /// does this: on the linux backend processes move with CRIU (`openmosix migrate`).
    Goto {
        /// Process id.
        pid: i32,
        /// Target node.
        to: NodeId,
    },
    /// Start a program detached from the session (the agent side of `mosrun`):
    /// answered with [`Started`].
    Run {
        /// Program and arguments; never passed through a shell.
        argv: Vec<BytesOrText>,
        /// mosrun options.
        #[serde(default)]
        options: RunOptions,
    },
    /// Send every guest home (`mosctl expel`): answered with the count moved.
    Expel,
    /// Bring every migrated process home (`mosctl bring`): answered with the count.
    Bring,
    /// Install the cluster map (`setpe -w`): answered with `null`.
    SetMap {
        /// The nodes of the map.
        nodes: Vec<MapNode>,
    },
    /// The installed cluster map (`setpe -r`): `Vec<MapNode>`.
    GetMap,
    /// Push node figures (and optionally the process list) every `interval_ms`.
    Subscribe {
        /// Period in milliseconds (100..=3_600_000).
        interval_ms: u64,
        /// Include the process list in each push.
        #[serde(default)]
        procs: bool,
        /// Protocol 2: push the whole list first (and after `resync`), then only what
        /// changed ([`crate::delta::ProcsDelta`]); each push is numbered (`seq`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        delta: bool,
    },
    /// Protocol 2: the next push of subscription `sub` comes at once and carries the
    /// whole list (a client that lost track of the deltas asks for it).
    Resync {
        /// The id of the subscribe request.
        sub: u64,
    },
    /// Stop the pushes of subscription `sub`.
    Unsubscribe {
        /// The id of the subscribe request.
        sub: u64,
    },
    /// Pre-flight on the source: may `pid` go to node `to`? Answered with the process.
    CanMigrate {
        /// Process id.
        pid: i32,
        /// Target node.
        to: NodeId,
    },
    /// One pre-dump round (memory copied while the process runs).
    Predump {
        /// Process id.
        pid: i32,
        /// The image of earlier rounds, if any.
        #[serde(default)]
        image: Option<String>,
        /// The target node, when the client says (the agent then checks the process's
        /// cluster mask against it too); older clients leave it out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<NodeId>,
    },
    /// Before a disk-less dump: the source checks that `pid` may go to `to`, holds it
    /// for this connection and names its image (answered `{"image": …}`), so that the
    /// page streams of both ends can be opened before the dump starts.
    Prepare {
        /// Process id.
        pid: i32,
        /// Target node.
        to: NodeId,
    },
    /// The final dump; the tree is left stopped here.
    Dump {
        /// Process id.
        pid: i32,
        /// The image of the pre-dump rounds, or the prepared one, if any.
        #[serde(default)]
        image: Option<String>,
        /// The target node, when the client says (the agent then checks the process's
        /// cluster mask against it too); older clients leave it out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<NodeId>,
        /// Memory pages go to the image's page stream (`openmosix-agent pages send`,
        /// opened by the client), not to this node's disk.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pages: bool,
        /// Post-copy (with `pages`): the answer comes as soon as everything but the
        /// private memory is dumped; criu then serves those pages on the page stream as
        /// the target asks for them, the tree frozen here until the last one went
        /// (`finish` waits for that).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        lazy: bool,
    },
    /// The migration failed: let the stopped tree run on here.
    Resume {
        /// The image.
        image: String,
    },
    /// The target has the process: remove the stopped original and record where it went.
    Finish {
        /// The image.
        image: String,
        /// The original pid here.
        pid: i32,
        /// The node it went to.
        to: NodeId,
        /// Its pid there.
        new_pid: i32,
        /// The move was the load balancer's (docs/balancing.md): the event says so.
        #[serde(default)]
        auto: bool,
        /// Post-copy only: the page stream broke after the target ran and its copy was
        /// killed there: the original runs on here instead of being removed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        copy_lost: bool,
    },
    /// On the target: restore a received image and record the guest.
    Restore {
        /// The image.
        image: String,
        /// The node it came from.
        from: NodeId,
        /// Its home node.
        home: NodeId,
        /// Its pid on its home node.
        home_pid: i32,
        /// How many migrations it had before this one.
        nmigs: u32,
        /// The settings the source kept for it, recorded here too.
        #[serde(default)]
        carried: Carried,
        /// Leave the restored tree stopped until `release` (the two-phase handoff,
        /// docs/migration.md); older clients leave it out and get it running at once.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        hold: bool,
        /// Post-copy: restore with criu's lazy pages, served by the image's page pump
        /// (`openmosix-agent pages receive --lazy`, started by the client).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        lazy: bool,
    },
    /// On the source, after the target restored the tree stopped: the decision is
    /// taken, durably: from here the original is never resumed, only removed.
    Commit {
        /// The image.
        image: String,
        /// The node it goes to.
        to: NodeId,
        /// Its pid there.
        new_pid: i32,
    },
    /// On the target, after the source committed: the restored tree runs.
    Release {
        /// The image.
        image: String,
    },
    /// On the target, when the source did not commit: the restored, stopped tree is
    /// killed.
    Discard {
        /// The image.
        image: String,
    },
    /// The handoffs this node has not settled (docs/migration.md), after settling the
    /// ones whose agent went away.
    Handoffs,
    /// On a home node: note where one of its processes is now (`at: None` = back home or gone).
    Whereabouts {
        /// The pid it had here.
        home_pid: i32,
        /// Node and pid where it runs now.
        #[serde(default)]
        at: Option<(NodeId, i32)>,
    },
    /// On a home node: its processes running elsewhere, `[(home_pid, node, pid)]`.
    Emigrants,
    /// What was done to this node through the suite (docs/collector.md): the [`Event`]s
    /// of the node's event log with `seq > after`, oldest first, at most
    /// [`MAX_EVENTS`]; an empty list when the agent keeps no log.
    Events {
        /// The last seq the caller has (0 for all).
        #[serde(default)]
        after: u64,
    },
    /// Whether migration works here, once criu's checks have ended (protocol 3): a
    /// [`Readiness`]. Asked when `hello` said `checking`; answered when they end.
    Readiness,
}

impl Request {
    /// The `op` name, for logs and errors.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Node => "node",
            Request::AdminGet => "admin_get",
            Request::AdminSet { .. } => "admin_set",
            Request::Tune => "tune",
            Request::Procs => "procs",
            Request::Proc { .. } => "proc",
            Request::Signal { .. } => "signal",
            Request::Renice { .. } => "renice",
            Request::SetLock { .. } => "set_lock",
            Request::SetMask { .. } => "set_mask",
            Request::Goto { .. } => "goto",
            Request::Run { .. } => "run",
            Request::Expel => "expel",
            Request::Bring => "bring",
            Request::SetMap { .. } => "set_map",
            Request::GetMap => "get_map",
            Request::Subscribe { .. } => "subscribe",
            Request::Unsubscribe { .. } => "unsubscribe",
            Request::Resync { .. } => "resync",
            Request::CanMigrate { .. } => "can_migrate",
            Request::Predump { .. } => "predump",
            Request::Prepare { .. } => "prepare",
            Request::Dump { .. } => "dump",
            Request::Resume { .. } => "resume",
            Request::Finish { .. } => "finish",
            Request::Restore { .. } => "restore",
            Request::Commit { .. } => "commit",
            Request::Release { .. } => "release",
            Request::Discard { .. } => "discard",
            Request::Handoffs => "handoffs",
            Request::Whereabouts { .. } => "whereabouts",
            Request::Emigrants => "emigrants",
            Request::Events { .. } => "events",
            Request::Readiness => "readiness",
        }
    }
}

/// What a process takes along when it migrates besides its memory: the settings its
/// source agent kept for it, which `restore` records on the target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Carried {
    /// The mosrun options it was started with (cpujob, iojob, decay …).
    #[serde(default)]
    pub run: Option<RunOptions>,
    /// Its cluster mask.
    #[serde(default)]
    pub mask: MigMask,
    /// A candidate for automatic load balancing ([`crate::model::ProcInfo::candidate`]).
    #[serde(default)]
    pub candidate: bool,
    /// The move is the load balancer's: the events and the guest record say so.
    #[serde(default)]
    pub auto: bool,
}

/// Every op name the agent knows (reported in `hello`).
pub const OPS: &[&str] = &[
    "hello",
    "node",
    "admin_get",
    "admin_set",
    "tune",
    "procs",
    "proc",
    "signal",
    "renice",
    "set_lock",
    "set_mask",
    "goto",
    "run",
    "expel",
    "bring",
    "set_map",
    "get_map",
    "subscribe",
    "unsubscribe",
    "resync",
    "can_migrate",
    "predump",
    "prepare",
    "dump",
    "resume",
    "finish",
    "restore",
    "commit",
    "release",
    "discard",
    "handoffs",
    "whereabouts",
    "emigrants",
    "events",
    "readiness",
];

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResponseLine {
    /// A successful answer.
    Ok {
        /// The request's id (`null` when the request had none that could be read).
        id: Option<u64>,
        /// The op's result.
        ok: Value,
    },
    /// A failed request.
    Err {
        /// The request's id, `null` when it could not be read.
        id: Option<u64>,
        /// What went wrong.
        err: AgentError,
    },
    /// A push of a subscription.
    Push {
        /// The id of the subscribe request.
        sub: u64,
        /// The figures.
        data: Update,
    },
}

/// What a subscription pushes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// Node figures.
    pub node: NodeInfo,
    /// The whole process list, when the subscription asked for it (with `delta`: in the
    /// first push and after `resync`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub procs: Option<Vec<ProcInfo>>,
    /// Subscriptions with `delta`: what changed in the list since the push before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<ProcsDelta>,
    /// Subscriptions with `delta`: the push's number, 1 for the first and one more for
    /// each after it; a client that misses one asks for `resync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl Update {
    /// Node figures and, if given, the whole list (protocol 1's push).
    pub fn new(node: NodeInfo, procs: Option<Vec<ProcInfo>>) -> Update {
        Update {
            node,
            procs,
            delta: None,
            seq: None,
        }
    }
}

/// The answer to `tune`: `mosctl gettune`, `getyard`, `getdecay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneInfo {
    /// Overhead parameters, one `name value` per line.
    pub tune: String,
    /// The yardstick in use.
    pub yard: String,
    /// The decay settings.
    pub decay: String,
}

/// The answer to `run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// Pid of the started process on the node.
    pub pid: i32,
    /// The node it runs on.
    pub node: NodeId,
}

/// Parses one request line, or says why it is not one.
pub fn parse_request(line: &[u8]) -> Result<RequestLine, (Option<u64>, AgentError)> {
    let text = std::str::from_utf8(line).map_err(|e| {
        (
            None,
            AgentError::new(ErrorKind::BadRequest, format!("request is not UTF-8: {e}")),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        (
            None,
            AgentError::new(ErrorKind::BadRequest, format!("request is not JSON: {e}")),
        )
    })?;
    let id = value.get("id").and_then(Value::as_u64);
    let op = value.get("op").and_then(Value::as_str).map(str::to_owned);
    match (&id, &op) {
        (None, _) => {
            return Err((
                None,
                AgentError::new(ErrorKind::BadRequest, "request has no numeric \"id\""),
            ));
        }
        (_, None) => {
            return Err((
                id,
                AgentError::new(ErrorKind::BadRequest, "request has no \"op\" string"),
            ));
        }
        (_, Some(op)) if !OPS.contains(&op.as_str()) => {
            return Err((
                id,
                AgentError::new(ErrorKind::UnknownOp, format!("unknown op {op:?}")),
            ));
        }
        _ => {}
    }
    serde_json::from_value(value).map_err(|e| {
        (
            id,
            AgentError::new(
                ErrorKind::BadRequest,
                format!("bad {} request: {e}", op.unwrap_or_default()),
            ),
        )
    })
}

#[cfg(test)]
mod tests;
