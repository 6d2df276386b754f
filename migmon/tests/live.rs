//! The real window (egui_kittest) against real agents on a 3-node testbed: a drag moves a
//! process for real, a double-click brings it home, a locked one stays and says why.

use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_testbed::gui::{drag, text_containing};
use openmosix_testbed::{Testbed, serial};

mod common;
use common::{App, live_harness, wait};
use serde_json::Value;

fn bed() -> &'static Testbed {
    Testbed::shared("tmgmon", 212, 3)
}

type H = Harness<'static, App>;

fn harness() -> H {
    live_harness(&bed().cluster_file)
}

fn ps(node: u32) -> Vec<Value> {
    bed().ps(node)
}

fn start(argv: &[&str], flags: &[&str]) -> i32 {
    i32::try_from(bed().run_job(2, flags, argv)).expect("a pid")
}

/// Kills the marker processes (whatever node they ended on) when a test ends, even
/// when it fails.
struct Cleanup(&'static str);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for node in 1..=3 {
            let procs = bed().cli(&["--json", "ps", &node.to_string()]);
            for line in String::from_utf8_lossy(&procs.stdout).lines() {
                let p: Value = serde_json::from_str(line).unwrap_or_default();
                if p["cmdline"] == self.0
                    && let Some(pid) = p["pid"].as_i64()
                {
                    bed().kill(node, pid);
                }
            }
        }
    }
}

/// "pid N": that process's square (its label: "pid N on node M — …"); "node N": that
/// node's penguin.
fn find<'h>(h: &'h H, what: &str) -> egui_kittest::Node<'h> {
    match what.strip_prefix("pid ") {
        Some(pid) => {
            let prefix = format!("pid {pid} on node ");
            h.get_by(move |n| {
                n.role() == Role::Button && n.label().is_some_and(|l| l.starts_with(&prefix))
            })
        }
        None => {
            let label = format!("{what} penguin");
            h.get_by(move |n| {
                n.role() == Role::Image && n.label().as_deref() == Some(label.as_str())
            })
        }
    }
}

fn has(h: &H, what: &str) -> bool {
    let prefix = format!("{what} on node ");
    h.query_by(move |n| {
        n.role() == Role::Button && n.label().is_some_and(|l| l.starts_with(&prefix))
    })
    .is_some()
}

fn center(h: &H, what: &str) -> egui::Pos2 {
    find(h, what).rect().center()
}

/// Waits for `pid`'s square by node 2 (`what`), then drags it onto node 3's penguin.
fn drag_to_node_3(h: &mut H, pid: i32, what: &str) {
    let label = format!("pid {pid}");
    wait(h, 10, what, |h| {
        h.state().window.square_state(pid) == Some((2, false)) && has(h, &label)
    });
    let (from, to) = (center(h, &label), center(h, "node 3"));
    drag(h, from, to, 8);
    h.run_steps(2);
}

/// Lets a square finish gliding to its new place.
fn settle(h: &mut H) {
    for _ in 0..30 {
        h.step();
    }
}

#[test]
fn a_dragged_square_migrates_and_a_double_click_sends_it_home() {
    let _g = serial();
    let mut h = harness();
    let _c = Cleanup("sleep 4712");
    let pid = start(&["sleep", "4712"], &[]);
    drag_to_node_3(&mut h, pid, "the marker's square by node 2");
    wait(&mut h, 60, "the migration's end", |h| {
        !h.state().window.is_moving()
    });
    let status = h.state().window.status().to_owned();
    assert!(
        status.starts_with(&format!("moved pid {pid} to node 3")),
        "{status}"
    );
    // The agent on node 3 reports the guest, from home node 2.
    let guest = ps(3)
        .into_iter()
        .find(|p| p["home"] == 2 && p["home_pid"].as_i64() == Some(i64::from(pid)))
        .unwrap_or_else(|| panic!("pid {pid} is not a guest on node 3"));
    let new_pid = i32::try_from(guest["pid"].as_i64().expect("pid")).expect("pid");
    assert!(
        !ps(2)
            .iter()
            .any(|p| p["pid"].as_i64() == Some(i64::from(pid)))
    );
    // The square sits by node 3, green, and stays there as the lists come in.
    let t = Instant::now();
    wait(&mut h, 5, "two seconds of fresh lists", |_| {
        t.elapsed() > Duration::from_secs(2)
    });
    assert_eq!(h.state().window.square_state(new_pid), Some((3, true)));
    settle(&mut h);
    let by3 = center(&h, &format!("pid {new_pid}"));
    assert!(
        by3.distance(center(&h, "node 3")) < by3.distance(center(&h, "node 2")),
        "the square is not by node 3"
    );

    // Double-click: home.
    let label = format!("pid {new_pid}");
    find(&h, &label).click();
    h.run_steps(1);
    find(&h, &label).click();
    h.run_steps(2);
    wait(&mut h, 60, "the way home", |h| {
        !h.state().window.is_moving()
    });
    let status = h.state().window.status().to_owned();
    assert!(status.starts_with("moved pid"), "{status}");
    assert!(status.contains("to node 2"), "{status}");
    let home = ps(2)
        .into_iter()
        .find(|p| p["cmdline"] == "sleep 4712")
        .expect("the marker back on node 2");
    let back = i32::try_from(home["pid"].as_i64().expect("pid")).expect("pid");
    assert!(!ps(3).iter().any(|p| p["cmdline"] == "sleep 4712"));
    wait(&mut h, 5, "the square back by node 2, black", |h| {
        h.state().window.square_state(back) == Some((2, false))
    });
}

#[test]
fn a_locked_process_dropped_on_a_penguin_says_why_and_stays() {
    let _g = serial();
    // Started before the window's agents: an agent reads its node's state file when it
    // starts, so a lock set by another agent process later would be unknown to it.
    let _c = Cleanup("sleep 4713");
    let pid = start(&["sleep", "4713"], &["--nomig"]);
    let mut h = harness();
    drag_to_node_3(&mut h, pid, "the locked square by node 2");
    h.run_steps(2);
    assert!(
        !h.state().window.is_moving(),
        "{}",
        h.state().window.status()
    );
    let reason = ps(2)
        .into_iter()
        .find(|p| p["pid"].as_i64() == Some(i64::from(pid)))
        .expect("still on node 2")["cantmove"]
        .as_str()
        .expect("cantmove")
        .to_owned();
    assert!(!reason.is_empty());
    let status = h.state().window.status().to_owned();
    assert!(status.contains(&reason), "{status} / {reason}");
    let text = text_containing(&h, "cannot move:");
    assert!(text.contains(&reason), "{text}");
    // Nothing moved.
    let t = Instant::now();
    wait(&mut h, 5, "a second of fresh lists", |_| {
        t.elapsed() > Duration::from_millis(1500)
    });
    assert_eq!(h.state().window.square_state(pid), Some((2, false)));
    assert!(!ps(3).iter().any(|p| p["cmdline"] == "sleep 4713"));
}
