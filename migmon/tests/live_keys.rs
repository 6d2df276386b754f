//! The monitor by keys against real agents on a 3-node testbed: Tab to a square, `3`,
//! Enter, and the process moves to node 3 for real; H brings it home.

use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_testbed::{Testbed, serial};

mod common;
use common::{App, live_harness, wait};
use serde_json::Value;

fn bed() -> &'static Testbed {
    Testbed::shared("hkmig", 150, 3)
}

type H = Harness<'static, App>;

/// The label of the widget with the keyboard focus, if any.
fn focused(h: &H) -> Option<String> {
    h.query_by(|n| n.is_focused())
        .and_then(|n| n.accesskit_node().label())
}

/// The value of the widget with the keyboard focus, if any.
fn focused_value(h: &H) -> Option<String> {
    h.query_by(|n| n.is_focused())
        .and_then(|n| n.accesskit_node().value())
}

fn press(h: &mut H, key: Key) {
    h.key_press(key);
    h.run_steps(2);
}

/// Kills the marker wherever it ended, even when the test fails.
struct Cleanup(&'static str);

impl Drop for Cleanup {
    fn drop(&mut self) {
        bed().kill_all(self.0);
    }
}

#[test]
fn tab_3_and_enter_move_a_process_to_node_3_and_h_brings_it_home() {
    let _g = serial();
    let _c = Cleanup("sleep 4715");
    let pid = i32::try_from(bed().run_job(2, &[], &["sleep", "4715"])).expect("a pid");
    let mut h = live_harness(&bed().cluster_file);
    wait(&mut h, 10, "the marker's square by node 2", |h| {
        h.state().window.square_state(pid) == Some((2, false))
    });
    let square = format!("pid {pid} on node 2 — drag to move");
    let on_2 = format!("pid {pid} on node 2 ");
    for _ in 0..60 {
        if focused(&h).as_deref() == Some(square.as_str()) {
            break;
        }
        press(&mut h, Key::Tab);
    }
    assert_eq!(focused(&h).as_deref(), Some(square.as_str()));
    press(&mut h, Key::Num3);
    assert_eq!(h.state().window.target(), Some(3));
    press(&mut h, Key::Enter);
    assert!(
        h.state().window.is_moving(),
        "{}",
        h.state().window.status()
    );
    wait(&mut h, 60, "the migration's end", |h| {
        !h.state().window.is_moving()
    });
    let status = h.state().window.status().to_owned();
    assert!(
        status.starts_with(&format!("moved pid {pid} to node 3")),
        "{status}"
    );
    let guest: Vec<Value> = bed()
        .ps(3)
        .into_iter()
        .filter(|p| p["home"] == 2 && p["home_pid"].as_i64() == Some(i64::from(pid)))
        .collect();
    assert_eq!(guest.len(), 1, "pid {pid} is not a guest on node 3");
    // The focus stays on the process's square, now by node 3: H sends it home. (Node
    // 3's list says it is a guest from node 2 once the move has recorded it there; a
    // list from just before says home is node 3.)
    wait(
        &mut h,
        10,
        "the focused square by node 3, a guest from node 2",
        |h| {
            focused(h).is_some_and(|l| l.contains(" on node 3 — "))
                && focused_value(h).is_some_and(|v| v.contains("from node 2"))
                // Node 2's list from before the move, with the same process at home, is
                // gone too: its square would share the focused square's key.
                && h.query_by(|n| n.label().is_some_and(|l| l.starts_with(&on_2)))
                    .is_none()
        },
    );
    press(&mut h, Key::H);
    wait(&mut h, 60, "the way home", |h| {
        !h.state().window.is_moving()
    });
    let status = h.state().window.status().to_owned();
    assert!(status.contains("to node 2"), "{status}");
    assert!(bed().ps(2).iter().any(|p| p["cmdline"] == "sleep 4715"));
    assert!(!bed().ps(3).iter().any(|p| p["cmdline"] == "sleep 4715"));
}
