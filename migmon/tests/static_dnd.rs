//! The real window (egui_kittest) over fixed data: drag and drop, locks, double-click.

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_client::migrate::Target;
use openmosix_gui::{Action, Outcome, StaticSource};
use openmosix_hpc::model::ProcInfo;
use openmosix_testbed::fixtures::node_view;
use openmosix_testbed::gui::drag;
use openmosixmigmon::MigMon;

mod common;
use common::{State, harness_over, migrations, proc_};

/// Node 1's processes: system ones, a movable one and a locked one.
fn node1() -> Vec<ProcInfo> {
    vec![
        proc_(1, 1, 1, "/sbin/init", "the node's init process"),
        proc_(2, 1, 1, "[kthreadd]", "kernel thread"),
        proc_(50, 1, 1, "sshd: root@notty", ""),
        proc_(
            60,
            1,
            1,
            "openmosix-agent serve",
            "the openMosix agent itself",
        ),
        proc_(100, 1, 1, "sleep 100", ""),
        proc_(101, 1, 1, "sleep 101", "locked (nomig)"),
    ]
}

fn harness() -> Harness<'static, State> {
    harness_over(
        &[1, 2, 3],
        Vec::from([
            (1, node1()),
            (2, vec![proc_(300, 2, 2, "sleep 300", "")]),
            (3, vec![proc_(200, 3, 1, "sleep 200", "")]),
        ]),
    )
}

/// Drags from `from` to `to` and lets the window settle.
fn drag_and_settle(h: &mut Harness<'static, State>, from: egui::Pos2, to: egui::Pos2) {
    drag(h, from, to, 8);
    h.run();
}

fn double_click(h: &mut Harness<'static, State>, what: &str) {
    find(h, what).click();
    h.run_steps(1);
    find(h, what).click();
    h.run();
}

/// The square of `pid` (its label: "pid {pid} on node {n} — …"), if it is drawn.
fn square<'h>(h: &'h Harness<'static, State>, pid: i32) -> Option<egui_kittest::Node<'h>> {
    let prefix = format!("pid {pid} on node ");
    h.query_by(move |n| {
        n.role() == Role::Button && n.label().is_some_and(|l| l.starts_with(&prefix))
    })
}

/// "pid N": that process's square; "node N": that node's penguin.
fn find<'h>(h: &'h Harness<'static, State>, what: &str) -> egui_kittest::Node<'h> {
    match what.strip_prefix("pid ") {
        Some(pid) => square(h, pid.parse().expect("a pid")).expect(what),
        None => {
            let label = format!("{what} penguin");
            h.get_by(move |n| {
                n.role() == Role::Image && n.label().as_deref() == Some(label.as_str())
            })
        }
    }
}

fn center(h: &Harness<'static, State>, what: &str) -> egui::Pos2 {
    find(h, what).rect().center()
}

#[test]
fn only_user_processes_get_squares() {
    let h = harness();
    for pid in [100, 101, 200] {
        assert!(square(&h, pid).is_some(), "pid {pid}");
    }
    // init, kernel threads, sshd, the agent; and node 2's own processes.
    for pid in [1, 2, 50, 60, 300] {
        assert!(square(&h, pid).is_none(), "pid {pid}");
    }
    for n in 1..=3 {
        h.get_by_label(&format!("node {n} penguin"));
    }
    assert_eq!(h.state().mon.square_state(100), Some((1, false)));
    assert_eq!(h.state().mon.square_state(200), Some((3, true)));
}

#[test]
fn dragging_a_square_onto_a_penguin_migrates_it_there() {
    let mut h = harness();
    let (from, to) = (center(&h, "pid 100"), center(&h, "node 3"));
    drag_and_settle(&mut h, from, to);
    assert_eq!(
        migrations(&h),
        vec![Action::Migrate {
            node: 1,
            pid: 100,
            target: Target::Node(3),
            postcopy: false
        }]
    );
    assert!(h.state().mon.status().contains("moving pid 100 to node 3"));
    assert!(h.state().mon.is_moving());
}

#[test]
fn a_drop_outside_any_penguin_does_nothing() {
    let mut h = harness();
    let from = center(&h, "pid 100");
    let to = center(&h, "node 3") + egui::vec2(0.0, -150.0);
    drag_and_settle(&mut h, from, to);
    assert!(migrations(&h).is_empty());
}

#[test]
fn a_locked_process_shows_its_reason_instead_of_moving() {
    let mut h = harness();
    let (from, to) = (center(&h, "pid 101"), center(&h, "node 2"));
    drag_and_settle(&mut h, from, to);
    assert!(migrations(&h).is_empty());
    assert!(
        h.state().mon.status().contains("locked (nomig)"),
        "{}",
        h.state().mon.status()
    );
    h.get_by_label("cannot move: locked (nomig)");
    assert_eq!(h.state().mon.square_state(101), Some((1, false)));
}

#[test]
fn double_clicking_a_guest_sends_it_home() {
    let mut h = harness();
    double_click(&mut h, "pid 200");
    assert_eq!(
        migrations(&h),
        vec![Action::Migrate {
            node: 3,
            pid: 200,
            target: Target::Home,
            postcopy: false
        }]
    );
    // A square of the watched node itself has no home to go to.
    double_click(&mut h, "pid 100");
    assert_eq!(migrations(&h).len(), 1);
}

#[test]
fn a_finished_migration_moves_the_square_and_turns_it_green() {
    let mut h = harness();
    let (from, to) = (center(&h, "pid 100"), center(&h, "node 2"));
    drag_and_settle(&mut h, from, to);
    assert_eq!(migrations(&h).len(), 1);
    let ticket = h.state().source.actions.lock().expect("actions").len() as u64;
    let mon = &mut h.state_mut().mon;
    assert!(mon.on_outcome(
        ticket,
        &Outcome::Progress {
            progress: openmosix_client::migrate::Progress::Freeze
        }
    ));
    assert!(mon.status().contains("dumping"), "{}", mon.status());
    let done = openmosix_client::migrate::Migrated {
        from: 1,
        to: 2,
        old_pid: 100,
        new_pid: 100,
        freeze_ms: 12,
        total_ms: 40,
        handover_ms: 0,
        dump_ms: 0,
        image_via: None,
        bytes: 4096,
        mode: "disk".into(),
        route: openmosix_client::migrate::Route::Relayed,
        relayed_because: None,
        target_images: None,
        rounds: 0,
        home: (1, 100),
    };
    assert!(mon.on_outcome(ticket, &Outcome::Migrated { result: Ok(done) }));
    assert!(mon.status().starts_with("moved pid 100 to node 2"));
    assert_eq!(mon.square_state(100), Some((2, true)));
    h.run();
    assert!(square(&h, 100).is_some());
    // A process list asked before the migration ended is stale and changes nothing.
    let mon = &mut h.state_mut().mon;
    mon.on_outcome(
        0,
        &Outcome::Procs {
            node: 1,
            result: Ok(vec![proc_(100, 1, 1, "sleep 100", "")]),
        },
    );
    assert_eq!(mon.square_state(100), Some((2, true)));
}

#[test]
fn poll_asks_every_node_that_is_up_once_a_second() {
    let mut h = harness();
    let t0 = std::time::Instant::now();
    let State { source, mon } = h.state_mut();
    mon.poll(source, t0);
    mon.poll(source, t0 + std::time::Duration::from_millis(500));
    let asked = |s: &StaticSource| {
        s.actions
            .lock()
            .expect("actions")
            .iter()
            .filter(|a| matches!(a, Action::Procs { .. }))
            .count()
    };
    assert_eq!(asked(source), 3);
    // Unanswered lists are not asked again.
    mon.poll(source, t0 + std::time::Duration::from_millis(1100));
    assert_eq!(asked(source), 3);
    for t in 1..=3 {
        mon.on_outcome(
            t,
            &Outcome::Procs {
                node: u32::try_from(t).unwrap(),
                result: Ok(Vec::new()),
            },
        );
    }
    mon.poll(source, t0 + std::time::Duration::from_millis(2200));
    assert_eq!(asked(source), 6);
}

#[test]
fn a_full_circle_shows_48_squares_and_counts_the_rest() {
    let source = StaticSource {
        nodes: vec![node_view(1), node_view(2)],
        ..StaticSource::default()
    };
    let mut mon = MigMon::new(1);
    let list = (1000..1060)
        .map(|pid| proc_(pid, 1, 1, &format!("sleep {pid}"), ""))
        .collect();
    mon.on_outcome(
        0,
        &Outcome::Procs {
            node: 1,
            result: Ok(list),
        },
    );
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        .build_ui_state(
            |ui, s: &mut State| s.mon.ui(ui, &s.source),
            State { source, mon },
        );
    h.run();
    let shown = (1000..1060)
        .filter(|pid| square(&h, *pid).is_some())
        .count();
    assert_eq!(shown, 48);
    // The lowest pids are shown.
    assert!(square(&h, 1047).is_some());
    assert!(square(&h, 1048).is_none());
    h.get_by_label_contains("60 processes on node 1");
}

#[test]
fn processes_moved_by_the_balancer_are_marked() {
    let mut h = harness();
    // Node 3 reports pid 200 (home node 1) as moved there by the balancer, and a job of
    // node 1 that the balancer may move.
    let mut moved = proc_(200, 3, 1, "sleep 200", "");
    moved.candidate = true;
    moved.auto_moved = true;
    let mut job = proc_(102, 1, 1, "busy job", "");
    job.candidate = true;
    let mut home = node1();
    home.push(job);
    for (node, list) in [(3, vec![moved]), (1, home)] {
        h.state_mut().mon.on_outcome(
            0,
            &Outcome::Procs {
                node,
                result: Ok(list),
            },
        );
    }
    h.run();
    h.get_by_label_contains("1 migrated away (1 moved by the load balancer)");
    // The tooltips say so.
    h.hover_at(center(&h, "pid 200"));
    h.run_steps(40);
    h.get_by_label_contains("moved here by the load balancer");
    h.hover_at(center(&h, "pid 102"));
    h.run_steps(40);
    h.get_by_label_contains("the load balancer may move it");
    // A locked process never says it may be moved.
    h.hover_at(center(&h, "pid 101"));
    h.run_steps(40);
    assert!(h.query_by_label_contains("may move it").is_none());
}

/// 120 nodes: a crowd. A square dropped on small penguin 77 migrates there, and node 77's
/// own processes of node 1 sit on it.
#[test]
fn in_a_crowd_a_square_dropped_on_a_small_penguin_migrates_there() {
    let nodes: Vec<u32> = (1..=120).collect();
    let mut h = harness_over(
        &nodes,
        Vec::from([(1, node1()), (77, vec![proc_(700, 77, 1, "sleep 700", "")])]),
    );
    let penguin = find(&h, "node 77").rect();
    assert!(
        penguin.height() < 54.0,
        "a crowd penguin is smaller: {penguin:?}"
    );
    assert!(
        penguin.contains(center(&h, "pid 700")),
        "node 77's guest from node 1 sits on it"
    );
    let (from, to) = (center(&h, "pid 100"), penguin.center());
    drag_and_settle(&mut h, from, to);
    assert_eq!(
        migrations(&h),
        vec![Action::Migrate {
            node: 1,
            pid: 100,
            target: Target::Node(77),
            postcopy: false
        }]
    );
}
