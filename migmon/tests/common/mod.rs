//! What this crate's monitor tests share: over made-up lists (a [`StaticSource`]), the
//! state, processes and a harness; against a live testbed, one frame of the program and
//! a wait that names the status line.

#![allow(dead_code, reason = "each test file uses part of it")]

use std::time::Instant;

use egui_kittest::Harness;
use openmosix_gui::{Action, ClusterSource as _, Outcome, StaticSource};
use openmosix_hpc::model::{NodeId, ProcInfo};
use openmosix_testbed::fixtures::{node_view, proc_info};
use openmosix_testbed::gui::{LiveApp, wait_explained};
use openmosixmigmon::MigMon;

/// The monitor over made-up lists, and what it asked of them.
pub struct State {
    pub source: StaticSource,
    pub mon: MigMon,
}

/// A process `pid` at node `at` whose home is `home`; locked with `cantmove`'s reason.
pub fn proc_(pid: i32, at: NodeId, home: NodeId, cmd: &str, cantmove: &str) -> ProcInfo {
    ProcInfo {
        home,
        nmigs: u32::from(at != home),
        lock: !cantmove.is_empty(),
        cantmove: cantmove.to_owned(),
        ..proc_info(pid, at, cmd)
    }
}

/// The monitor watching node 1 with `nodes` up and their `lists`, 900×700, steps short
/// enough for a double-click (egui: two clicks within 0.3 s).
pub fn harness_over(
    nodes: &[NodeId],
    lists: Vec<(NodeId, Vec<ProcInfo>)>,
) -> Harness<'static, State> {
    let source = StaticSource {
        nodes: nodes.iter().map(|&n| node_view(n)).collect(),
        ..StaticSource::default()
    };
    let mut mon = MigMon::new(1);
    for (node, list) in lists {
        mon.on_outcome(
            0,
            &Outcome::Procs {
                node,
                result: Ok(list),
            },
        );
    }
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 700.0))
        .with_step_dt(1.0 / 30.0)
        .with_max_steps(60)
        .build_ui_state(
            |ui, s: &mut State| s.mon.ui(ui, &s.source),
            State { source, mon },
        );
    h.run();
    h
}

/// The migrations the monitor asked for.
pub fn migrations(h: &Harness<'static, State>) -> Vec<Action> {
    h.state()
        .source
        .actions
        .lock()
        .expect("actions")
        .iter()
        .filter(|a| matches!(a, Action::Migrate { .. }))
        .cloned()
        .collect()
}

/// What the live program holds: the testbed's source and the window.
pub type App = LiveApp<MigMon>;

/// One frame of the live program: poll, hand over the outcomes, draw.
pub fn frame(ui: &mut egui::Ui, app: &mut App) {
    app.source.set_repaint(ui.ctx());
    app.window.poll(&app.source, Instant::now());
    for (ticket, outcome) in app.source.outcomes() {
        app.window.on_outcome(ticket, &outcome);
    }
    app.window.ui(ui, &app.source);
}

/// Steps the live UI until `cond` holds, failing after `secs` seconds with the status
/// line.
pub fn wait(
    h: &mut Harness<'static, App>,
    secs: u64,
    what: &str,
    cond: impl FnMut(&Harness<'static, App>) -> bool,
) {
    wait_explained(h, secs, what, cond, |h| {
        format!("status: {}", h.state().window.status())
    });
}

/// The live monitor watching node 2 of a 3-node testbed whose cluster file is `cluster`,
/// once every node is up.
pub fn live_harness(cluster: &std::path::Path) -> Harness<'static, App> {
    let app = LiveApp::start(cluster, MigMon::new(2));
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 760.0))
        .with_step_dt(1.0 / 30.0)
        .with_max_steps(200)
        .build_ui_state(frame, app);
    wait(&mut h, 15, "every node up", |h| h.state().all_up(3));
    h
}
