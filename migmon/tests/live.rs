//! The real window (egui_kittest) against real agents on a 3-node testbed: a drag moves a
//! process for real, a double-click brings it home, a locked one stays and says why.

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_client::{ClientOptions, LinkState};
use openmosix_gui::{ClusterSource, LiveCluster};
use openmosix_hpc::map::Cluster;
use openmosix_testbed::{Testbed, serial};
use openmosixmigmon::MigMon;
use serde_json::Value;

fn bed() -> &'static Testbed {
    Testbed::shared("tmgmon", 212, 3)
}

/// What the program holds: the live source and the window.
struct App {
    source: LiveCluster,
    mon: MigMon,
}

impl App {
    fn frame(&mut self, ui: &mut egui::Ui) {
        self.source.set_repaint(ui.ctx());
        self.mon.poll(&self.source, Instant::now());
        for (ticket, outcome) in self.source.outcomes() {
            self.mon.on_outcome(ticket, &outcome);
        }
        self.mon.ui(ui, &self.source);
    }
}

type H = Harness<'static, App>;

fn harness() -> H {
    let cluster = Cluster::from_file(&bed().cluster_file).expect("cluster file");
    let options = ClientOptions::for_cluster(&cluster);
    let source = LiveCluster::start(cluster, &options).expect("runtime");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 760.0))
        .with_step_dt(1.0 / 30.0)
        .with_max_steps(200)
        .build_ui_state(
            |ui, app: &mut App| app.frame(ui),
            App {
                source,
                mon: MigMon::new(2),
            },
        );
    wait(&mut h, 15, "every node up", |h| {
        let nodes = h.state().source.nodes();
        nodes.len() == 3 && nodes.iter().all(|n| n.state == LinkState::Up)
    });
    h
}

/// Steps the UI until `cond` holds, failing after `secs` seconds.
fn wait(h: &mut H, secs: u64, what: &str, mut cond: impl FnMut(&H) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        h.step();
        if cond(h) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not within {secs} s: {what} (status: {})",
            h.state().mon.status()
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn cli(args: &[&str]) -> String {
    let out = bed().cli(args);
    assert!(
        out.status.success(),
        "openmosix {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn ps(node: u32) -> Vec<Value> {
    cli(&["--json", "ps", &node.to_string()])
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

fn start(args: &[&str]) -> i32 {
    cli(args).trim().parse().expect("a pid")
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
                    bed().cli(&["signal", &node.to_string(), &pid.to_string(), "KILL"]);
                }
            }
        }
    }
}

fn drag(h: &mut H, from: egui::Pos2, to: egui::Pos2) {
    h.drag_at(from);
    h.run_steps(2);
    for i in 1..=8 {
        let t = i as f32 / 8.0;
        h.hover_at(from.lerp(to, t));
        h.run_steps(2);
    }
    h.drop_at(to);
    h.run_steps(2);
}

fn center(h: &H, label: &str) -> egui::Pos2 {
    h.get_by_label(label).rect().center()
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
    let pid = start(&["run", "2", "--", "sleep", "4712"]);
    let label = format!("pid {pid}");
    wait(&mut h, 10, "the marker's square by node 2", |h| {
        h.state().mon.square_state(pid) == Some((2, false)) && h.query_by_label(&label).is_some()
    });
    let (from, to) = (center(&h, &label), center(&h, "node 3"));
    drag(&mut h, from, to);
    wait(&mut h, 60, "the migration's end", |h| {
        !h.state().mon.is_moving()
    });
    let status = h.state().mon.status().to_owned();
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
    assert_eq!(h.state().mon.square_state(new_pid), Some((3, true)));
    settle(&mut h);
    let by3 = center(&h, &format!("pid {new_pid}"));
    assert!(
        by3.distance(center(&h, "node 3")) < by3.distance(center(&h, "node 2")),
        "the square is not by node 3"
    );

    // Double-click: home.
    let label = format!("pid {new_pid}");
    h.get_by_label(&label).click();
    h.run_steps(1);
    h.get_by_label(&label).click();
    h.run_steps(2);
    wait(&mut h, 60, "the way home", |h| !h.state().mon.is_moving());
    let status = h.state().mon.status().to_owned();
    assert!(status.starts_with("moved pid"), "{status}");
    assert!(status.contains("to node 2"), "{status}");
    let home = ps(2)
        .into_iter()
        .find(|p| p["cmdline"] == "sleep 4712")
        .expect("the marker back on node 2");
    let back = i32::try_from(home["pid"].as_i64().expect("pid")).expect("pid");
    assert!(!ps(3).iter().any(|p| p["cmdline"] == "sleep 4712"));
    wait(&mut h, 5, "the square back by node 2, black", |h| {
        h.state().mon.square_state(back) == Some((2, false))
    });
}

#[test]
fn a_locked_process_dropped_on_a_penguin_says_why_and_stays() {
    let _g = serial();
    // Started before the window's agents: an agent reads its node's state file when it
    // starts, so a lock set by another agent process later would be unknown to it.
    let _c = Cleanup("sleep 4713");
    let pid = start(&["run", "2", "--nomig", "--", "sleep", "4713"]);
    let mut h = harness();
    let label = format!("pid {pid}");
    wait(&mut h, 10, "the locked square by node 2", |h| {
        h.state().mon.square_state(pid) == Some((2, false)) && h.query_by_label(&label).is_some()
    });
    let (from, to) = (center(&h, &label), center(&h, "node 3"));
    drag(&mut h, from, to);
    h.run_steps(2);
    assert!(!h.state().mon.is_moving(), "{}", h.state().mon.status());
    let reason = ps(2)
        .into_iter()
        .find(|p| p["pid"].as_i64() == Some(i64::from(pid)))
        .expect("still on node 2")["cantmove"]
        .as_str()
        .expect("cantmove")
        .to_owned();
    assert!(!reason.is_empty());
    let status = h.state().mon.status().to_owned();
    assert!(status.contains(&reason), "{status} / {reason}");
    let note = h.get_by_label_contains("cannot move:");
    let text = note
        .value()
        .or_else(|| note.accesskit_node().label())
        .unwrap_or_default();
    assert!(text.contains(&reason), "{text}");
    // Nothing moved.
    let t = Instant::now();
    wait(&mut h, 5, "a second of fresh lists", |_| {
        t.elapsed() > Duration::from_millis(1500)
    });
    assert_eq!(h.state().mon.square_state(pid), Some((2, false)));
    assert!(!ps(3).iter().any(|p| p["cmdline"] == "sleep 4713"));
}
