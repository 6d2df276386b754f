//! The made-up cluster of the process box's kittest tests (no network), shared by the
//! test files of this crate: node 1 with init, a shell, a sleeper and a locked process,
//! node 2 with a guest and a daemon, node 3 empty; the window's harness, which answers
//! its list requests with these lists.

#![allow(dead_code, reason = "each test file uses part of it")]

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use openmosix_gui::{Action, Outcome, StaticSource, Ticket};
use openmosix_hpc::model::{NodeId, ProcInfo};
use openmosix_testbed::fixtures::{node_view, proc_info};
use openmosixprocs::ProcsWindow;

pub struct State {
    pub source: StaticSource,
    pub window: ProcsWindow,
}

pub fn proc(node: NodeId, pid: i32, ppid: i32, uid: u32, cmd: &str) -> ProcInfo {
    ProcInfo {
        ppid,
        uid,
        utime: 181,
        vsize: 3_633_152,
        rss: 1_793_000,
        ..proc_info(pid, node, cmd)
    }
}

/// Node 1: init, a shell with a child `sleep 4711`, a process holding a file lock.
/// Node 2: a guest from node 1 (povray) and a local daemon. Node 3: nothing.
pub fn lists() -> Vec<(NodeId, Vec<ProcInfo>)> {
    let mut locked = proc(1, 300, 1, 0, "/usr/sbin/lockd --hold");
    locked.cantmove = "it holds a file lock".into();
    locked.nice = 5;
    let mut sleeper = proc(1, 200, 100, 1000, "sleep 4711");
    sleeper.nice = -3;
    let mut guest = proc(2, 50, 1, 1000, "/usr/local/povray/bin/x-pvmpov");
    guest.home = 1;
    guest.home_pid = 1809;
    guest.nmigs = 1;
    guest.state = 'R';
    vec![
        (
            1,
            vec![
                proc(1, 1, 0, 0, "/sbin/init"),
                proc(1, 100, 1, 1000, "-bash"),
                sleeper,
                locked,
            ],
        ),
        (2, vec![guest, proc(2, 70, 1, 0, "/usr/sbin/sshd -D")]),
        (3, vec![]),
    ]
}

pub fn harness() -> Harness<'static, State> {
    let state = State {
        source: StaticSource {
            nodes: vec![node_view(1), node_view(2), node_view(3)],
            ..StaticSource::default()
        },
        window: ProcsWindow::new(),
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        // Short steps: every input event is a step, and a double click must fit in 0.3 s.
        .with_step_dt(0.02)
        .build_ui_state(
            |ui, s: &mut State| {
                s.window.logic(&s.source);
                egui::CentralPanel::default_margins().show(ui, |ui| s.window.ui(ui));
                let ctx = ui.ctx().clone();
                s.window.windows(&ctx, &s.source);
            },
            state,
        );
    h.run_steps(3);
    feed(&mut h);
    h
}

pub fn actions(h: &Harness<'static, State>) -> Vec<Action> {
    h.state()
        .source
        .actions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Polls once and answers every list request with the made-up lists.
pub fn feed(h: &mut Harness<'static, State>) {
    let before = actions(h).len();
    let now = Instant::now() + Duration::from_secs(3600);
    {
        let s = h.state_mut();
        s.window.poll(&s.source, now);
    }
    let all = lists();
    for (i, action) in actions(h).into_iter().enumerate().skip(before) {
        let Action::Procs { node } = action else {
            continue;
        };
        let procs = all
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, p)| p.clone())
            .unwrap_or_default();
        let ticket = (i + 1) as Ticket;
        let taken = h.state_mut().window.on_outcome(
            ticket,
            &Outcome::Procs {
                node,
                result: Ok(procs),
            },
        );
        assert!(taken, "the list of node {node} was not taken");
    }
    h.run_steps(3);
}
