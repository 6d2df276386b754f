//! openMosixprocs (egui_kittest on the real window) against real agents on a 3-node
//! testbed: a marker process is listed, filtered, migrated by double-clicking a node in
//! its migrator, stopped, continued, reniced and killed — each checked with the agent.

use std::time::Instant;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_testbed::gui::{LiveApp, double_click, type_into, wait};
use openmosix_testbed::{Testbed, serial};
use openmosixprocs::{ProcsWindow, Row};
use serde_json::Value;

fn bed() -> &'static Testbed {
    Testbed::shared("tprocs", 211, 3)
}

/// What the standalone program is: the live source and the window.
type App = LiveApp<ProcsWindow>;

fn harness() -> Harness<'static, App> {
    let app = LiveApp::start(&bed().cluster_file, ProcsWindow::new());
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        // Every input event is a step: short steps make two clicks a double click.
        .with_step_dt(0.02)
        .build_ui_state(
            |ui, app: &mut App| app.window.root_ui(ui, &app.source, Instant::now()),
            app,
        );
    wait(&mut h, 10, "every node connected", |h| h.state().all_up(3));
    h
}

/// The agent's own word on a process: `openmosix --json ps NODE`.
fn ps(node: u32, pid: i32) -> Option<Value> {
    bed().find(node, i64::from(pid))
}

/// Kills markers left by an earlier run.
fn kill_markers() {
    for node in 1..=3u32 {
        for p in bed().ps(node) {
            if p["cmdline"] == "sleep 4711" {
                bed().kill(node, p["pid"].as_i64().expect("pid"));
            }
        }
    }
}

fn row(h: &Harness<'static, App>, node: u32, pid: i32) -> Option<Row> {
    h.state()
        .window
        .rows()
        .into_iter()
        .find(|r| r.node == node && r.pid == pid)
}

fn choose(h: &mut Harness<'static, App>, entry: &str) {
    h.get_by_role_and_label(Role::ComboBox, "node").click();
    h.run_steps(3);
    h.get_by_label(entry).click();
    h.run_steps(3);
}

fn migrator_message(h: &Harness<'static, App>) -> String {
    h.state()
        .window
        .migrators()
        .first()
        .and_then(|m| m.last_message())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_marker_is_listed_moved_stopped_continued_reniced_and_killed() {
    let _g = serial();
    kill_markers();
    let pid = i32::try_from(bed().run_job(2, &[], &["sleep", "4711"])).expect("pid");
    let mut h = harness();

    // The box, node 2 chosen, lists it; the filter leaves it alone.
    choose(&mut h, "node 2");
    let label = format!("pid {pid} on node 2");
    wait(&mut h, 10, "the marker listed on node 2", |h| {
        h.query_by_label(&label).is_some()
    });
    assert!(h.state().window.rows().len() > 1);
    type_into(&mut h, "filter", "4711");
    h.run_steps(1);
    let rows = h.state().window.rows();
    assert_eq!(
        rows.iter().map(|r| (r.node, r.pid)).collect::<Vec<_>>(),
        vec![(2, pid)]
    );
    assert_eq!(rows[0].command, "sleep 4711");
    assert!(!rows[0].migrated);

    // Double-click: its migrator; double-click node 3: it moves there.
    double_click(&mut h, &label);
    h.get_by_label(&format!("migrator: pid {pid} on node 2"));
    h.get_by_label("S (sleeping)");
    double_click(&mut h, "node 3");
    let mut phases = Vec::new();
    wait(&mut h, 90, "the migration reported", |h| {
        if let Some(m) = h.state().window.migrators()[0].moving() {
            phases.clone_from(&m.phases);
        }
        !migrator_message(h).is_empty()
    });
    let message = migrator_message(&h);
    eprintln!("phases seen: {phases:?}; {message}");
    assert!(message.starts_with("moved to node 3 as pid "), "{message}");
    let new_pid = h.state().window.migrators()[0].pid;
    assert_eq!(h.state().window.migrators()[0].node, 3);
    h.get_by_label(&message);
    h.get_by_label(&format!("migrator: pid {new_pid} on node 3"));
    let on3 = ps(3, new_pid).expect("the agent on node 3 has it");
    assert_eq!(on3["cmdline"], "sleep 4711");
    assert_eq!(on3["home"], 2);
    assert!(ps(2, pid).is_none(), "still on node 2");

    // The box shows it green on node 3.
    choose(&mut h, "all nodes");
    wait(&mut h, 10, "the marker listed green on node 3", |h| {
        row(h, 3, new_pid).is_some_and(|r| r.migrated && r.home == 2)
    });
    h.get_by_label(&format!("pid {new_pid} on node 3"));
    h.get_by_label("migrated from node 2");

    // SIGSTOP, SIGCONT: the state the agent reports changes, and the box shows it.
    h.get_by_label("SIGSTOP").click();
    wait(&mut h, 10, "stopped", |h| {
        row(h, 3, new_pid).is_some_and(|r| r.state == 'T')
    });
    assert_eq!(ps(3, new_pid).expect("marker")["state"], "T");
    h.get_by_label("T (stopped)");
    h.get_by_label("SIGCONT").click();
    wait(&mut h, 10, "continued", |h| {
        row(h, 3, new_pid).is_some_and(|r| r.state == 'S')
    });
    assert_eq!(ps(3, new_pid).expect("marker")["state"], "S");

    // Renice to 10.
    h.get_by_role_and_label(Role::Slider, "nice")
        .set_value_accesskit(10.0);
    h.run_steps(3);
    h.get_by_label("apply nice").click();
    wait(&mut h, 10, "reniced", |h| {
        row(h, 3, new_pid).is_some_and(|r| r.nice == 10)
    });
    assert_eq!(ps(3, new_pid).expect("marker")["nice"], 10);
    h.get_by_label(&format!("process {new_pid} on node 3 now has nice 10"));

    // Kill removes it.
    h.get_by_label("kill").click();
    wait(&mut h, 10, "killed", |h| row(h, 3, new_pid).is_none());
    assert!(ps(3, new_pid).is_none(), "still on node 3");
    h.get_by_label(&format!("process {new_pid} is not on node 3 (any more)"));
}
