//! What the server writes in the node's event log: one sentence for each thing done
//! through it (signals, renices, admin changes, jobs, migrations, locks, masks).

use crate::backend::events::EventLog;
use openmosix_hpc::model::{AdminChange, MigMask, NodeId, RunOptions, Signal};
use openmosix_hpc::protocol::EventKind;

/// Appends to the event log, if any, marked as the load balancer's when `auto`; a
/// failure is only logged (the op itself succeeded).
pub(super) fn append(
    log: Option<&EventLog>,
    kind: EventKind,
    text: &str,
    pid: Option<i32>,
    auto: bool,
) {
    if let Some(log) = log
        && let Err(e) = log.append_marked(kind, text, pid, auto)
    {
        tracing::warn!(
            "cannot write to the event log {}: {e}",
            log.path().display()
        );
    }
}

pub(super) fn signal(pid: i32, signal: Signal) -> String {
    let name = match signal {
        Signal::Stop => "SIGSTOP",
        Signal::Cont => "SIGCONT",
        Signal::Term => "SIGTERM",
        Signal::Kill => "SIGKILL",
    };
    format!("sent {name} to process {pid}")
}

pub(super) fn renice(pid: i32, nice: i32) -> String {
    format!("set the nice value of process {pid} to {nice}")
}

pub(super) fn lock(pid: i32, lock: bool) -> String {
    let verb = if lock { "locked" } else { "unlocked" };
    format!("{verb} process {pid}")
}

pub(super) fn mask(pid: i32, mask: &MigMask) -> String {
    if !mask.migfilter {
        return format!("switched the cluster mask of process {pid} off");
    }
    let nodes: Vec<String> = (1..=64u32)
        .filter(|n| mask.mignodes & (1u64 << (n - 1)) != 0)
        .map(|n| n.to_string())
        .collect();
    let policy = if mask.migpolicy == 1 { "allow" } else { "deny" };
    format!(
        "set the cluster mask of process {pid}: {policy} nodes {}",
        if nodes.is_empty() {
            "none".to_owned()
        } else {
            nodes.join(",")
        }
    )
}

pub(super) fn admin(change: &AdminChange) -> String {
    match change {
        AdminChange::Switch { switch, on } => {
            format!(
                "switched {} {}",
                switch.name(),
                if *on { "on" } else { "off" }
            )
        }
        AdminChange::Speed { speed } => format!("set the speed to {speed}"),
        AdminChange::Yard { yard } => format!("set the yardstick to {yard}"),
        AdminChange::Decay {
            interval,
            slow,
            fast,
        } => {
            let mut t = format!("set the decay interval to {interval} s");
            if let (Some(s), Some(f)) = (slow, fast) {
                t.push_str(&format!(" (slow {s}, fast {f})"));
            }
            t
        }
        AdminChange::Off { off: true } => "took the node out of the pool (setpe -off)".into(),
        AdminChange::Off { off: false } => "put the node back into the pool".into(),
    }
}

pub(super) fn run(pid: i32, argv: &[Vec<u8>], options: &RunOptions) -> String {
    let cmd: Vec<String> = argv
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut t = format!("started job {pid}: {}", cmd.join(" "));
    let flags = options.flags();
    if !flags.is_empty() {
        t.push_str(&format!(" ({})", flags.join(", ")));
    }
    t
}

pub(super) fn expel(n: u32) -> String {
    format!("expel: sent {n} guests home")
}

pub(super) fn bring(n: u32) -> String {
    format!("bring: brought {n} processes home")
}

pub(super) fn migrated_out(pid: i32, to: NodeId, new_pid: i32, auto: bool) -> String {
    format!(
        "process {pid} migrated to node {to} (pid {new_pid} there){}",
        by_balancer(auto)
    )
}

pub(super) fn arrived(pid: i32, from: NodeId, home: NodeId, home_pid: i32, auto: bool) -> String {
    format!(
        "process {pid} arrived from node {from} (home node {home}, pid {home_pid} there){}",
        by_balancer(auto)
    )
}

/// The end of a migration event's sentence: who moved it, when it was not a person.
fn by_balancer(auto: bool) -> &'static str {
    if auto {
        ", moved by the load balancer"
    } else {
        ""
    }
}
