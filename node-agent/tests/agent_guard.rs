//! The agent enforces its own rules, whoever asks (real agents and criu on a 3-node
//! testbed): `dump`/`predump` sent straight to the agent re-check the process's lock,
//! mask and cantmove reason; `signal` refuses init; a process being moved is locked
//! against a second migration, with a sentence naming who moves it.

use std::process::Stdio;

use openmosix_testbed::copies::{Counter, runs_on};
use openmosix_testbed::session::AgentSession;
use openmosix_testbed::{Testbed, serial};
use serde_json::{Value, json};

fn bed() -> &'static Testbed {
    Testbed::shared("tguard", 220, 3)
}

#[test]
fn dump_of_a_locked_process_sent_straight_is_refused() {
    let _g = serial();
    let job = Counter::start(bed(), 2, "locked");
    let pid = job.pid;
    let mut s = AgentSession::open(bed(), 2);
    let ok = s.request(json!({"op":"set_lock","pid":pid,"lock":true}));
    assert_eq!(ok["ok"]["lock"], true, "{ok}");
    for req in [
        json!({"op":"dump","pid":pid,"to":3}),
        json!({"op":"dump","pid":pid}),
        json!({"op":"predump","pid":pid,"to":3}),
    ] {
        let (kind, msg) = s.refused(req.clone());
        assert_eq!(kind, "cannot_migrate", "{req}: {msg}");
        assert_eq!(
            msg,
            format!("process {pid} cannot move: locked to this node")
        );
    }
    job.grows();
    assert!(
        runs_on(bed(), 2, pid),
        "the locked process still runs on node 2"
    );

    // Unlocked, but its mask denies node 3: refused for node 3 only.
    s.request(json!({"op":"set_lock","pid":pid,"lock":false}));
    let deny3 = json!({"migfilter":true,"mignodes":4,"migpolicy":0});
    s.request(json!({"op":"set_mask","pid":pid,"mask":deny3}));
    let (kind, msg) = s.refused(json!({"op":"dump","pid":pid,"to":3}));
    assert_eq!(
        (kind.as_str(), msg),
        (
            "cannot_migrate",
            format!("process {pid} cannot move: its cluster mask does not allow node 3")
        )
    );
    job.grows();
    assert!(runs_on(bed(), 2, pid));

    // Init and kernel threads never move.
    let (_, msg) = s.refused(json!({"op":"dump","pid":1,"to":3}));
    assert!(msg.contains("init"), "{msg}");
    let kthreadd: Value = s.request(json!({"op":"proc","pid":2}));
    if kthreadd["ok"]["cantmove"] == "kernel thread" {
        let (_, msg) = s.refused(json!({"op":"dump","pid":2,"to":3}));
        assert!(msg.contains("kernel thread"), "{msg}");
    }
    s.close();
    bed().kill(2, pid);
}

#[test]
fn signal_to_init_is_refused() {
    let _g = serial();
    let mut s = AgentSession::open(bed(), 2);
    let (kind, msg) = s.refused(json!({"op":"signal","pid":1,"signal":"KILL"}));
    assert_eq!(kind, "permission_denied");
    assert_eq!(
        msg,
        "process 1 is the node's init: the agent does not signal it"
    );
    s.close();
    let out = bed().cli(&["signal", "2", "1", "TERM"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("init"), "{err}");
    // Node 2 still answers: its init is alive.
    bed().admin(2);
}

#[test]
fn a_process_being_moved_is_locked_against_a_second_migration() {
    let _g = serial();
    let job = Counter::start(bed(), 2, "held");
    let pid = job.pid;
    // One connection dumps it (stopped, locked) and holds it there.
    let mut holder = AgentSession::open(bed(), 2);
    let dumped = holder.request(json!({"op":"dump","pid":pid,"to":3}));
    assert!(dumped["ok"]["image"].is_string(), "{dumped}");
    // Another connection, and a whole client, are refused with who holds it.
    let mut other = AgentSession::open(bed(), 2);
    let (kind, msg) = other.refused(json!({"op":"dump","pid":pid,"to":1}));
    assert_eq!(kind, "permission_denied");
    assert!(
        msg.starts_with(&format!(
            "process {pid} is already being moved to node 3 by "
        )),
        "{msg}"
    );
    other.close();
    let out = bed().cli(&["migrate", "2", &pid.to_string(), "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already being moved to node 3"), "{err}");
    // The holder goes away: its agent resumes the tree and the lock is gone.
    holder.close();
    job.grows();
    assert!(runs_on(bed(), 2, pid));
    let new: i64 = bed()
        .cli_ok(&["migrate", "2", &pid.to_string(), "3"])
        .trim()
        .parse()
        .expect("new pid");
    job.grows();
    assert!(runs_on(bed(), 3, new) && bed().find(2, pid).is_none_or(|p| p["state"] == "Z"));
    bed().kill(3, new);
}

#[test]
fn two_clients_migrating_one_pid_at_once_one_wins() {
    let _g = serial();
    // A node's first agent keeps criu's checks once they have run (criu-check.json):
    // asked for here, so that neither client waits for a node's checks and both moves
    // reach node 2 together (on a busy machine a client waiting for node 1's checks
    // came after the other move had ended, and found no process).
    for n in 1..=3 {
        let ready = AgentSession::open(bed(), n).request(json!({"op":"readiness"}));
        assert_eq!(
            ready["ok"]["migration"]["available"], true,
            "node {n}: {ready}"
        );
    }
    let job = Counter::start(bed(), 2, "race");
    let pid = job.pid;
    let spawn = |to: &str| {
        bed()
            .cli_command(&["migrate", "2", &pid.to_string(), to])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openmosix migrate")
    };
    let (a, b) = (spawn("3"), spawn("1"));
    let outs = [a, b].map(|c| c.wait_with_output().expect("migrate ends"));
    let won: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
    assert_eq!(won.len(), 1, "exactly one wins: {outs:?}");
    let lost = String::from_utf8_lossy(&outs[1 - won[0]].stderr).into_owned();
    assert!(lost.contains("already being moved"), "{lost}");
    let node = if won[0] == 0 { 3 } else { 1 };
    let new: i64 = String::from_utf8_lossy(&outs[won[0]].stdout)
        .trim()
        .parse()
        .expect("new pid");
    job.grows();
    // Exactly one copy: on the winner's node, none left on node 2 or the other node.
    assert!(runs_on(bed(), node, new));
    assert!(!runs_on(bed(), 2, pid));
    let other = if node == 3 { 1 } else { 3 };
    let copies = bed()
        .ps(other)
        .into_iter()
        .filter(|p| p["cmdline"].as_str().is_some_and(|c| c.contains("race")))
        .count();
    assert_eq!(copies, 0, "a copy on node {other}");
    bed().kill(node, new);
}
