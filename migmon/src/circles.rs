//! From process lists to squares: which processes are worth a square, which penguin each
//! one sits by, and the words for a migration's phases. Pure data, no drawing.

use std::collections::BTreeMap;

use openmosix_client::migrate::Progress;
use openmosix_hpc::model::{NodeId, ProcInfo};

use crate::layout::MAX_SQUARES;

/// A process across migrations: its home node and its pid there.
pub type Key = (NodeId, i32);

/// The reasons that mark a process as part of the node itself rather than user work.
const SYSTEM_REASONS: &[&str] = &[
    "kernel thread",
    "the openMosix agent itself",
    "the node's init process",
];

/// Whether a process deserves a square: user work, not kernel threads, the node's init
/// (pid 1 and 2: init and its first child), sshd or openMosix agents.
pub fn worth_showing(p: &ProcInfo) -> bool {
    let cmd = p.cmdline.lossy();
    let comm = p.comm.lossy();
    let system = cmd.starts_with('[')
        || (p.pid <= 2 && p.home_pid <= 2)
        || SYSTEM_REASONS.contains(&p.cantmove.as_str())
        || comm == "sshd"
        || cmd.starts_with("sshd")
        || comm == "openmosix-agent"
        || cmd.starts_with("openmosix-agent ");
    !system
}

/// One process square.
#[derive(Debug, Clone, PartialEq)]
pub struct Square {
    /// Home node and home pid: the same process before and after it moves.
    pub key: Key,
    /// Its pid on `ask`.
    pub pid: i32,
    /// The node whose agent reported it: where actions on it go.
    pub ask: NodeId,
    /// The node it runs on: the penguin it sits by.
    pub at: NodeId,
    /// Its home node.
    pub home: NodeId,
    /// Its command line.
    pub cmdline: String,
    /// Its state letter.
    pub state: char,
    /// Why it cannot move, when it cannot.
    pub reason: Option<String>,
    /// The load balancer may move it (a mosrun job, or unlocked on purpose).
    pub candidate: bool,
    /// The load balancer moved it where it is.
    pub auto_moved: bool,
}

impl Square {
    fn of(p: &ProcInfo, ask: NodeId) -> Square {
        let home_pid = if p.home_pid > 0 { p.home_pid } else { p.pid };
        Square {
            key: (p.home, home_pid),
            pid: p.pid,
            ask,
            at: p.where_,
            home: p.home,
            cmdline: p.cmdline.lossy(),
            state: p.state,
            reason: p.cannot_move(),
            candidate: p.candidate,
            auto_moved: p.auto_moved,
        }
    }

    /// Its tooltip, `green` when it migrated away from the watched node.
    pub fn tip(&self, green: bool) -> String {
        let mut tip = format!("pid {} on node {}\n{}", self.pid, self.at, self.cmdline);
        if self.home != self.at {
            tip.push_str(&format!("\nhome: node {} (pid {})", self.home, self.key.1));
        }
        if self.auto_moved {
            tip.push_str("\nmoved here by the load balancer");
        } else if self.candidate && self.reason.is_none() {
            tip.push_str("\nthe load balancer may move it");
        }
        if let Some(r) = &self.reason {
            tip.push_str(&format!("\ncannot move: {r}"));
        } else if green {
            tip.push_str("\ndouble-click to send it home");
        } else {
            tip.push_str("\ndrag it onto a penguin to move it there");
            tip.push_str("\n(keys: its node's number, then Enter)");
        }
        tip
    }

    /// Its name for screen readers and tests: "pid 3012 on node 2 — drag to move" (or
    /// "— cannot move" when it cannot).
    pub fn label(&self) -> String {
        let hint = if self.reason.is_some() {
            "cannot move"
        } else {
            "drag to move"
        };
        format!("pid {} on node {} — {hint}", self.pid, self.at)
    }

    /// Its accessible value: the command line, where it comes from, why it cannot move and
    /// the phase of its migration (`moving`: `Some` while one runs, with its progress).
    pub fn value(&self, green: bool, moving: Option<Option<&Progress>>) -> String {
        let mut v = self.cmdline.clone();
        if green {
            v.push_str(&format!(", migrated from node {}", self.home));
        } else if self.home != self.at {
            v.push_str(&format!(", guest from node {}", self.home));
        }
        if self.auto_moved {
            v.push_str(", moved by the load balancer");
        }
        if let Some(r) = &self.reason {
            v.push_str(&format!(", cannot move: {r}"));
        }
        if let Some(p) = moving {
            v.push_str(&format!(", moving: {}", p.map_or("starting".into(), phase)));
        }
        v
    }

    /// Migrated away from the watched node `main`: drawn green, with a line home.
    pub fn green(&self, main: NodeId) -> bool {
        self.home == main && self.at != main
    }
}

/// The squares around one penguin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Circle {
    /// Shown squares, by pid.
    pub shown: Vec<Square>,
    /// How many more there are than fit.
    pub more: usize,
}

/// The process circles while watching `main`: around `main`, the processes running there;
/// around every other node, the processes from `main` running there. Emigrants that
/// `main` itself reports (an openMosix kernel keeps them in its list) count as well.
pub fn circles(procs: &BTreeMap<NodeId, Vec<ProcInfo>>, main: NodeId) -> BTreeMap<NodeId, Circle> {
    let mut all: BTreeMap<NodeId, BTreeMap<Key, Square>> = BTreeMap::new();
    if let Some(list) = procs.get(&main) {
        for p in list.iter().filter(|p| worth_showing(p)) {
            if p.where_ == main || p.home == main {
                let sq = Square::of(p, main);
                all.entry(sq.at).or_default().insert(sq.key, sq);
            }
        }
    }
    for (&node, list) in procs.iter().filter(|(n, _)| **n != main) {
        for p in list
            .iter()
            .filter(|p| p.home == main && p.where_ == node && worth_showing(p))
        {
            // The node's own report wins over the home node's.
            let sq = Square::of(p, node);
            all.entry(node).or_default().insert(sq.key, sq);
        }
    }
    all.into_iter()
        .map(|(node, squares)| {
            let mut shown: Vec<Square> = squares.into_values().collect();
            shown.sort_by_key(|s| s.pid);
            let more = shown.len().saturating_sub(MAX_SQUARES);
            shown.truncate(MAX_SQUARES);
            (node, Circle { shown, more })
        })
        .collect()
}

/// Every square `list` (reported by `node`) could give, whichever node is watched: what
/// of the list the monitor draws.
pub(crate) fn squares_of(list: &[ProcInfo], node: NodeId) -> Vec<Square> {
    list.iter()
        .filter(|p| worth_showing(p))
        .map(|p| Square::of(p, node))
        .collect()
}

/// A migration phase in words.
pub fn phase(p: &Progress) -> String {
    match p {
        Progress::Checking => "checking".to_owned(),
        Progress::PreDump { round, pages } => format!("pre-dump round {round} ({pages} pages)"),
        Progress::Freeze => "dumping (frozen)".to_owned(),
        Progress::Transfer { .. } => format!("moving {}", p.moved().unwrap_or_default()),
        Progress::Restore => "restoring".to_owned(),
        Progress::Resuming => "failed: resuming the original".to_owned(),
    }
}

/// How far along a migration is (0..=1), for its progress ring.
pub fn fraction(p: Option<&Progress>) -> f32 {
    match p {
        None => 0.03,
        Some(Progress::Checking) => 0.1,
        Some(Progress::PreDump { .. }) => 0.2,
        Some(Progress::Freeze) => 0.3,
        Some(Progress::Transfer { sent, total, .. }) => {
            let t = if *total == 0 {
                1.0
            } else {
                (*sent as f32 / *total as f32).clamp(0.0, 1.0)
            };
            0.3 + 0.5 * t
        }
        Some(Progress::Restore) => 0.9,
        Some(Progress::Resuming) => 0.5,
    }
}
