//! `openmosix top` in a real terminal (tmux) against a 3-node testbed: a marker job
//! found by the filter, locked and refused, unlocked and migrated to node 3 from the
//! keyboard, and the shell's screen given back; `--once` without a terminal; and
//! `mosctl NODE setyard` end to end, the agent checking what it is given.

use std::time::Duration;

use openmosix_testbed::testbed::bin;
use openmosix_testbed::tmux::Tmux;
use openmosix_testbed::{Testbed, serial, shell_quote, wait};

fn bed() -> &'static Testbed {
    Testbed::shared("ttop", 227, 3)
}

fn top_command() -> String {
    format!(
        "{} --cluster {} top",
        shell_quote(&bin("openmosix")),
        shell_quote(&bed().cluster_file.display().to_string())
    )
}

/// The screen row of process `pid` of node `node`, if shown.
fn row(screen: &str, node: u32, pid: i64) -> Option<&str> {
    let head = format!("{node:>4} {pid:>7} ");
    screen.lines().find(|l| l.starts_with(&head))
}

/// Kills the marker wherever it was last seen, however the test ends.
struct Marker {
    at: (u32, i64),
}

impl Drop for Marker {
    fn drop(&mut self) {
        bed().kill(self.at.0, self.at.1);
    }
}

#[test]
fn once_lists_every_nodes_processes_with_a_node_column_in_80_columns() {
    let _g = serial();
    let out = bed().cli_ok(&["top", "--once"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("openmosix top · 3 of 3 nodes up"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("NODE     PID WHERE HOME NMIGS  CPU%    MEM S COMMAND"),
        "{out}"
    );
    for id in 1..=3 {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{id:>4} "))),
            "no process of node {id}:\n{out}"
        );
    }
    assert!(
        lines.iter().all(|l| l.chars().count() <= 80),
        "wider than 80:\n{out}"
    );
    let only = bed().cli_ok(&["top", "--once", "--node", "2"]);
    let rows: Vec<&str> = only.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{only}");
    assert!(rows.iter().all(|l| l.starts_with("   2 ")), "{only}");
    let out = bed().cli(&["top", "--once", "--node", "9"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("node 9 is not in the cluster"));
}

#[test]
fn a_marker_is_filtered_refused_while_locked_migrated_by_key_and_the_screen_given_back() {
    let _g = serial();
    let bed = bed();
    let pid = bed.run_job(1, &[], &["sleep", "7227227"]);
    let mut marker = Marker { at: (1, pid) };
    let secs = Duration::from_secs;
    let t = Tmux::start("openmosix-test-top", 80, 24, "xterm-256color");
    t.type_line("echo before-top");
    let before = t.wait_for(secs(5), "the echo", |s| {
        s.lines().any(|l| l == "before-top")
            && s.lines().rev().find(|l| !l.trim().is_empty()) == Some("$")
    });
    t.type_line(&top_command());
    t.wait_for(secs(15), "the process table", |s| {
        s.contains("3 of 3 nodes up") && s.contains("NODE     PID WHERE")
    });
    t.keys(&["/"]);
    t.type_line("7227227");
    let screen = t.wait_for(secs(5), "the marker alone", |s| {
        s.contains("filter \"7227227\"") && row(s, 1, pid).is_some()
    });
    let shown = row(&screen, 1, pid).unwrap_or_default();
    assert!(shown.ends_with("sleep 7227227"), "{screen}");
    assert!(
        screen.contains(&format!("{pid} on node 1: home 1/{pid}")),
        "{screen}"
    );

    // Locked, it says why it cannot move, and a migration is refused in a sentence.
    t.keys(&["l"]);
    t.wait_for(secs(5), "the lock and its reason", |s| {
        s.contains("is locked") && s.contains("cantmove:")
    });
    t.keys(&["g"]);
    t.type_line("3");
    t.wait_for(secs(15), "the refusal", |s| {
        s.contains(&format!("process {pid} stays on node 1:"))
    });
    t.keys(&["l"]);
    t.wait_for(secs(5), "the unlock", |s| {
        s.contains("is unlocked") && s.contains("can move")
    });

    t.keys(&["g"]);
    t.type_line("3");
    let moved = t.wait_for(secs(60), "the move to node 3", |s| {
        s.contains(&format!("process {pid} moved from node 1 to node 3"))
    });
    let new_pid: i64 = moved
        .split("now pid ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no new pid in the status line:\n{moved}"));
    marker.at = (3, new_pid);
    t.wait_for(secs(10), "the marker's row on node 3", |s| {
        row(s, 3, new_pid).is_some_and(|r| r.contains("sleep 7227227"))
    });
    let there = wait::until_some(secs(10), "the marker in openmosix ps 3", || {
        bed.ps(3)
            .into_iter()
            .find(|p| p["pid"].as_i64() == Some(new_pid))
    });
    assert_eq!(there["home"].as_u64(), Some(1), "{there}");
    assert!(bed.find(1, pid).is_none(), "still on node 1");

    t.keys(&["q"]);
    let after = t.wait_for_prompt(secs(5));
    assert!(!after.contains("openmosix top ·"), "{after}");
    let kept: Vec<&str> = before.lines().filter(|l| !l.trim().is_empty()).collect();
    let (shell, last) = kept.split_at(kept.len() - 1);
    assert_eq!(last, ["$"], "{before}");
    assert!(
        after.lines().take(shell.len()).eq(shell.iter().copied()),
        "q did not give the shell's screen back:\nbefore:\n{before}\nafter:\n{after}"
    );
}

#[test]
fn ctrl_c_leaves_top_in_a_linux_terminal() {
    let _g = serial();
    let t = Tmux::start("openmosix-test-top-exit", 80, 24, "linux");
    t.type_line(&top_command());
    t.wait_for(Duration::from_secs(15), "the table", |s| {
        s.contains("NODE     PID WHERE")
    });
    t.keys(&["C-c"]);
    let after = t.wait_for_prompt(Duration::from_secs(5));
    assert!(!after.contains("NODE     PID"), "{after}");
}

fn speed_and_yard(node: u32) -> (u64, u64) {
    let admin = bed().admin(node);
    (
        admin["speed"].as_u64().expect("speed"),
        admin["yard"].as_u64().expect("yard"),
    )
}

fn refusal(args: &[&str]) -> String {
    let out = bed().cli(args);
    assert!(!out.status.success(), "openmosix {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn setyard_rescales_the_speed_and_the_agent_refuses_what_is_not_a_yardstick() {
    let _g = serial();
    let (speed, yard) = speed_and_yard(2);
    assert_eq!(yard, 1000, "the default yardstick is a PIII/1GHz");
    let out = bed().cli_ok(&["mosctl", "2", "setyard", "2000"]);
    assert_eq!(out.trim(), format!("yardstick 2000, speed {}", speed / 2));
    assert_eq!(speed_and_yard(2), (speed / 2, 2000));
    let text = bed().cli_ok(&["mosctl", "2", "getyard"]);
    assert!(text.starts_with("yardstick 2000 "), "{text}");
    assert!(
        bed()
            .cli_ok(&["mosctl", "2", "status"])
            .contains("yardstick:                       2000")
    );

    // `this`: node 2's own processor becomes the standard, so its speed is 1000.
    bed().cli_ok(&["mosctl", "2", "setyard", "this"]);
    let (s, y) = speed_and_yard(2);
    assert!((999..=1000).contains(&s), "speed {s} against yardstick {y}");
    assert!(y.abs_diff(speed) <= 2, "yardstick {y}, node speed {speed}");

    for (word, says) in [
        ("fast", "\"fast\" is not a yardstick"),
        ("0", "yardstick speed 0 is outside 1..1000000"),
        ("2000000", "outside 1..1000000"),
    ] {
        let err = refusal(&["mosctl", "2", "setyard", word]);
        assert!(err.contains(says), "setyard {word}: {err}");
    }
    assert_eq!(
        speed_and_yard(2),
        (s, y),
        "a refused yardstick changes nothing"
    );
    assert!(refusal(&["mosctl", "2", "setyard"]).contains("usage: mosctl NODE setyard"));

    bed().cli_ok(&["mosctl", "2", "setyard", "piii"]);
    let (back, yard) = speed_and_yard(2);
    assert_eq!(yard, 1000);
    assert!(back.abs_diff(speed) <= 2, "speed {back}, was {speed}");
    // Node 1 was not touched.
    assert_eq!(speed_and_yard(1).1, 1000);
}
