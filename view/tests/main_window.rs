//! The real main window (egui_kittest) against real agents on a 3-node testbed.

use std::time::{Duration, Instant};

use egui::accesskit::{Role, Toggled};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_client::LinkState;
use openmosix_hpc::map::Cluster;
use openmosix_testbed::gui::{drag, menu_item, text_containing, type_into, wait};
use openmosix_testbed::{Testbed, serial, wait as poll};
use openmosixview::App;

fn bed() -> &'static Testbed {
    Testbed::shared("tview", 205, 3)
}

fn harness() -> Harness<'static, App> {
    let cluster = Cluster::from_file(&bed().cluster_file).expect("cluster file");
    let app = App::live(cluster, "testbed").expect("app");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 700.0))
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    wait(&mut h, 10, "every node connected", |h| {
        let nodes = h.state().snapshot();
        nodes.len() == 3
            && nodes
                .iter()
                .all(|n| n.state == LinkState::Up && n.info.is_some())
    });
    h
}

fn cli(args: &[&str]) -> String {
    bed().cli_ok(args)
}

#[test]
fn rows_show_the_agents_figures() {
    let _g = serial();
    cli(&["mosctl", "2", "setspeed", "4321"]);
    let mut h = harness();
    for n in 1..=3 {
        h.get_by_label(&bed().addr(n));
    }
    h.get_by_role_and_label(Role::Slider, "node 2 speed");
    // The figures drawn are the agents' own.
    let speed: u32 = cli(&["mosctl", "2", "getspeed"])
        .trim()
        .parse()
        .expect("speed");
    wait(&mut h, 5, "node 2's speed on screen", |h| {
        h.state()
            .snapshot()
            .iter()
            .any(|n| n.id == 2 && n.info.as_ref().is_some_and(|i| i.speed == speed))
    });
    assert_eq!(speed, 4321);
    h.get_by_label("4321");
    h.get_by_label("3 of 3 up");
    cli(&["mosctl", "2", "setspeed", "1000"]);
}

#[test]
fn dragging_a_speed_slider_sets_the_nodes_speed() {
    let _g = serial();
    cli(&["mosctl", "2", "setspeed", "1000"]);
    let mut h = harness();
    let rect = h.get_by_role_and_label(Role::Slider, "node 2 speed").rect();
    let from = rect.center();
    drag(&mut h, from, egui::pos2(rect.right() + 20.0, from.y), 6);
    h.run_steps(2);
    let speed = poll::until_some(Duration::from_secs(5), "node 2's speed changed", || {
        let s: u32 = cli(&["mosctl", "2", "getspeed"])
            .trim()
            .parse()
            .expect("speed");
        h.step();
        (s != 1000).then_some(s)
    });
    assert!(
        speed >= 15_000,
        "node 2's speed after dragging to the right: {speed}"
    );
    // Node 3 was not touched.
    let s3: u32 = cli(&["mosctl", "3", "getspeed"])
        .trim()
        .parse()
        .expect("speed");
    assert!(s3 < 15_000);
    wait(&mut h, 5, "the slider shows the agent's speed", |h| {
        h.state()
            .snapshot()
            .iter()
            .any(|n| n.id == 2 && n.info.as_ref().is_some_and(|i| i.speed == speed))
    });
    cli(&["mosctl", "2", "setspeed", "1000"]);
}

fn toggled(h: &Harness<'static, App>, label: &str) -> Option<Toggled> {
    h.query_by_role_and_label(Role::CheckBox, label)
        .and_then(|n| n.accesskit_node().toggled())
}

#[test]
fn the_dialog_opens_preselected_and_applies_block() {
    let _g = serial();
    cli(&["mosctl", "2", "block"]);
    cli(&["mosctl", "2", "nolstay"]);
    cli(&["mosctl", "2", "stay"]);
    let mut h = harness();
    h.get_by_label(&bed().addr(2)).click();
    const BLOCK: &str = "block arriving guests";
    wait(&mut h, 5, "dialog preselected with block on", |h| {
        toggled(h, BLOCK) == Some(Toggled::True)
            && !h
                .get_by_role_and_label(Role::CheckBox, BLOCK)
                .accesskit_node()
                .is_disabled()
    });
    assert_eq!(
        toggled(&h, "local procs stay (bring them home)"),
        Some(Toggled::False)
    );
    // `stay` on (the default: automatic balancing is opt-in) is auto-migration off.
    assert_eq!(toggled(&h, "auto-migration on"), Some(Toggled::False));

    h.get_by_role_and_label(Role::CheckBox, BLOCK).click();
    h.run_steps(2);
    assert_eq!(toggled(&h, BLOCK), Some(Toggled::False));
    h.get_by_label("apply").click();
    wait(&mut h, 5, "apply reported", |h| {
        h.query_by_label("node 2: applied").is_some()
    });
    assert_eq!(bed().admin(2)["block"], false);

    h.get_by_role_and_label(Role::CheckBox, BLOCK).click();
    h.run_steps(2);
    h.get_by_label("apply").click();
    wait(&mut h, 5, "node 2 reported blocked", |h| {
        lamp(h, 2).as_deref() == Some("blocked")
    });
    assert_eq!(bed().admin(2)["block"], true);
    assert_eq!(bed().admin(3)["block"], false);
    cli(&["mosctl", "2", "noblock"]);
}

#[test]
fn a_dead_node_turns_red_while_the_others_update() {
    let _g = serial();
    let mut h = harness();
    let updated = |h: &Harness<'static, App>, id: u32| {
        h.state()
            .snapshot()
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.updated)
    };
    bed().sshd_stop(3);
    let t = Instant::now();
    wait(&mut h, 3, "node 3's lamp red", |h| {
        lamp(h, 3).as_deref() == Some("down")
    });
    let red_after = t.elapsed();
    let before = updated(&h, 1).expect("node 1 figures");
    wait(&mut h, 3, "node 1 still updating", |h| {
        updated(h, 1).is_some_and(|u| u > before)
    });
    assert_eq!(lamp(&h, 1).as_deref(), Some("up"));
    assert_eq!(lamp(&h, 2).as_deref(), Some("up"));
    bed().sshd_start(3);
    wait(&mut h, 5, "node 3 green again", |h| {
        lamp(h, 3).as_deref() == Some("up")
    });
    eprintln!("node 3 red after {red_after:?}");
}

#[test]
fn advanced_execution_runs_a_locked_job_on_node_3() {
    let _g = serial();
    let mut h = harness();
    h.get_by_label("Config").click();
    h.run_steps(2);
    h.get_by_label("advanced execution").click();
    h.run_steps(3);
    type_into(&mut h, "program", "/bin/sleep");
    type_into(&mut h, "arguments", "4646");
    h.get_by_role_and_label(Role::CheckBox, "run on").click();
    h.run_steps(1);
    h.get_by_role_and_label(Role::CheckBox, "no migration")
        .click();
    h.run_steps(1);
    let dial = |h: &Harness<'static, App>| {
        h.get_by_role_and_label(Role::Slider, "host chooser")
            .accesskit_node()
            .numeric_value()
    };
    for _ in 0..5 {
        if dial(&h) == Some(3.0) {
            break;
        }
        h.get_by_label("next node").click();
        h.run_steps(2);
    }
    assert_eq!(dial(&h), Some(3.0));
    h.get_by_label("execute").click();
    wait(&mut h, 10, "the job reported started", |h| {
        h.query_by_label_contains("started pid").is_some()
    });
    let line = text_containing(&h, "started pid");
    assert!(line.ends_with("on node 3"), "{line}");
    let pid: i64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    let job = bed()
        .find(3, pid)
        .unwrap_or_else(|| panic!("pid {pid} not on node 3"));
    assert_eq!(job["cmdline"], "/bin/sleep 4646");
    assert_eq!(job["lock"], true);
    cli(&["signal", "3", &pid.to_string(), "KILL"]);
}

#[test]
fn the_view_menu_opens_procs_and_migmon_with_live_lists() {
    let _g = serial();
    let pid = bed().run_job(2, &[], &["sleep", "4747"]);
    let mut h = harness();
    menu_item(&mut h, "View", "process box (openmosixprocs)");
    let label = format!("pid {pid} on node 2");
    wait(&mut h, 10, "the process box lists the job", |h| {
        h.query_by_label(&label).is_some()
    });
    menu_item(&mut h, "View", "migration monitor (openmosixmigmon)");
    wait(&mut h, 10, "the monitor shows node 2's penguin", |h| {
        h.query_by_label("node 2 penguin").is_some()
    });
    cli(&["signal", "2", &pid.to_string(), "KILL"]);
}

#[test]
fn the_collector_menu_starts_checkpoints_and_stops_the_collector() {
    let _g = serial();
    let mut h = harness();
    h.state_mut()
        .set_cluster_args(vec!["--cluster".into(), bed().cluster_file.clone().into()]);
    let menu = |h: &mut Harness<'static, App>, item: &str, answer: &str| {
        menu_item(h, "Collector", item);
        let answer = answer.to_owned();
        wait(h, 20, &answer.clone(), move |h| {
            h.query_by_label(&answer).is_some()
        });
    };
    menu(&mut h, "start collector", "openmosixcollector started");
    std::thread::sleep(Duration::from_secs(2));
    menu(
        &mut h,
        "write checkpoint",
        "checkpoint written to the history",
    );
    menu(&mut h, "stop collector", "openmosixcollector stopped");
}

/// The state word of node `n`'s lamp (its accessible value), if the lamp is drawn.
fn lamp(h: &Harness<'static, App>, n: u32) -> Option<String> {
    h.query_by_label(&format!("node {n} lamp"))?.value()
}
