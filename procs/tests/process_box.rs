//! The process box, the migrator and the remote-procs window on made-up process lists
//! (no network): the real widgets driven with egui_kittest, the actions read back from
//! a `StaticSource`.

use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_client::migrate::{Migrated, Progress, Target};
use openmosix_gui::{Action, Outcome, Ticket};
use openmosix_hpc::model::{NodeId, Signal};
use openmosix_testbed::gui::{double_click, type_into};
use openmosixprocs::Choice;

mod common;
use common::{State, actions, harness};

fn pids(h: &Harness<'static, State>) -> Vec<i32> {
    h.state().window.rows().iter().map(|r| r.pid).collect()
}

/// Clicks the widget labelled `label` and lets the window act on it.
fn click(h: &mut Harness<'static, State>, label: &str) {
    h.get_by_label(label).click();
    h.run_steps(3);
}

/// Clicks the check box labelled `label` and lets the window act on it.
fn tick(h: &mut Harness<'static, State>, label: &str) {
    h.get_by_role_and_label(Role::CheckBox, label).click();
    h.run_steps(3);
}

/// Clicks `label`: the window must ask to migrate process `pid` of `node` to `target`.
fn click_migrates(
    h: &mut Harness<'static, State>,
    label: &str,
    node: NodeId,
    pid: i32,
    target: Target,
) {
    click(h, label);
    assert_eq!(
        actions(h).last(),
        Some(&Action::Migrate {
            node,
            pid,
            target,
            postcopy: false
        })
    );
}

#[test]
fn poll_asks_every_node_once_a_second() {
    let mut h = harness();
    assert_eq!(
        actions(&h),
        vec![
            Action::Procs { node: 1 },
            Action::Procs { node: 2 },
            Action::Procs { node: 3 }
        ]
    );
    // Not again within the second; an unknown ticket is not the window's, though a list
    // in it (another window asked for it) refreshes the node's list.
    let t0 = Instant::now() + Duration::from_secs(3600);
    let s = h.state_mut();
    s.window.poll(&s.source, t0 + Duration::from_millis(500));
    assert_eq!(actions(&h).len(), 3);
    assert!(!h.state_mut().window.on_outcome(
        99,
        &Outcome::Procs {
            node: 1,
            result: Ok(vec![])
        }
    ));
    assert!(h.state().window.lists()[&1].procs.is_empty());
    let s = h.state_mut();
    s.window.poll(&s.source, t0 + Duration::from_millis(1100));
    assert_eq!(actions(&h).len(), 6);
    for (ticket, node) in [(4, 1), (5, 2), (6, 3)] {
        assert!(h.state_mut().window.on_outcome(
            ticket,
            &Outcome::Procs {
                node,
                result: Ok(vec![])
            }
        ));
    }
    // One node chosen: only that one is asked.
    let s = h.state_mut();
    s.window.choose(Choice::Node(2));
    s.window.poll(&s.source, t0 + Duration::from_millis(1200));
    assert_eq!(actions(&h)[6..], [Action::Procs { node: 2 }]);
}

#[test]
fn rows_filter_and_sort() {
    let mut h = harness();
    assert_eq!(pids(&h), vec![1, 50, 70, 100, 200, 300]);
    h.get_by_label("pid 200 on node 1");
    h.get_by_label("6 of 6 processes");

    type_into(&mut h, "filter", "4711");
    h.run_steps(1);
    assert_eq!(pids(&h), vec![200]);
    assert!(h.query_by_label("pid 100 on node 1").is_none());
    h.get_by_label("1 of 6 processes");
    // By uid and by pid too.
    h.state_mut().window.process_box.filter = "1000".into();
    h.run_steps(3);
    assert_eq!(pids(&h), vec![50, 100, 200]);
    h.state_mut().window.process_box.filter = "70".into();
    h.run_steps(3);
    assert_eq!(pids(&h), vec![70]);
    h.state_mut().window.process_box.filter.clear();
    h.run_steps(3);

    // A click on the sorted column's header reverses it.
    click(&mut h, "pid");
    assert_eq!(pids(&h), vec![300, 200, 100, 70, 50, 1]);
    click(&mut h, "pid");
    assert_eq!(pids(&h), vec![1, 50, 70, 100, 200, 300]);
    // Another column sorts by it, ascending first.
    click(&mut h, "nice");
    assert_eq!(pids(&h)[0], 200);
    assert_eq!(pids(&h)[5], 300);
    click(&mut h, "nice");
    assert_eq!(pids(&h)[0], 300);
}

#[test]
fn the_tree_indents_children_under_parents() {
    let mut h = harness();
    h.state_mut().window.choose(Choice::Node(1));
    h.run_steps(3);
    h.get_by_role_and_label(Role::CheckBox, "tree").click();
    h.run_steps(3);
    let rows = h.state().window.rows();
    let order: Vec<(i32, usize)> = rows.iter().map(|r| (r.pid, r.depth)).collect();
    assert_eq!(order, vec![(1, 0), (100, 1), (200, 2), (300, 1)]);
    assert!(h.query_all_by_label("└").count() >= 3);
}

#[test]
fn guests_are_green_and_locked_processes_say_why() {
    let mut h = harness();
    let rows = h.state().window.rows();
    let guest = rows.iter().find(|r| r.pid == 50).expect("guest row");
    assert!(guest.migrated && guest.node == 2 && guest.home == 1);
    assert!(rows.iter().filter(|r| r.migrated).count() == 1);
    h.get_by_label("migrated from node 1");

    let locked = rows.iter().find(|r| r.pid == 300).expect("locked row");
    assert_eq!(locked.locked.as_deref(), Some("it holds a file lock"));
    assert_eq!(h.query_all_by_label("locked").count(), 1);
    // Its tooltip gives the reason.
    h.get_by_label("locked").hover();
    for _ in 0..60 {
        h.step();
        if h.query_by_label("cannot move: it holds a file lock")
            .is_some()
        {
            return;
        }
    }
    panic!("no tooltip with the reason");
}

#[test]
fn a_double_click_opens_the_migrator_whose_buttons_act() {
    let mut h = harness();
    double_click(&mut h, "pid 100 on node 1");
    assert_eq!(h.state().window.migrators().len(), 1);
    h.get_by_label("migrator: pid 100 on node 1");
    h.get_by_label("S (sleeping)");
    let n = actions(&h).len();

    // The whole tree gets STOP and CONT; kill goes to the process alone.
    tick(&mut h, "whole tree");
    click(&mut h, "SIGSTOP");
    click(&mut h, "SIGCONT");
    tick(&mut h, "whole tree");
    click(&mut h, "kill");
    h.get_by_role_and_label(Role::Slider, "nice")
        .set_value_accesskit(10.0);
    h.run_steps(3);
    click(&mut h, "apply nice");
    assert_eq!(
        actions(&h)[n..],
        [
            Action::Signal {
                node: 1,
                pids: vec![100, 200],
                signal: Signal::Stop
            },
            Action::Signal {
                node: 1,
                pids: vec![100, 200],
                signal: Signal::Cont
            },
            Action::Signal {
                node: 1,
                pids: vec![100],
                signal: Signal::Kill
            },
            Action::Renice {
                node: 1,
                pid: 100,
                nice: 10
            },
        ]
    );
    // Their outcomes are shown.
    let t = (n + 1) as Ticket;
    assert!(h.state_mut().window.on_outcome(
        t,
        &Outcome::Done {
            node: 1,
            result: Ok("sent STOP to 2 process(es) on node 1".into())
        }
    ));
    assert!(h.state_mut().window.on_outcome(
        t + 3,
        &Outcome::Done {
            node: 1,
            result: Err("renice: permission denied".into())
        }
    ));
    h.run_steps(3);
    h.get_by_label("sent STOP to 2 process(es) on node 1");
    h.get_by_label("renice: permission denied");

    // Home and best.
    click_migrates(&mut h, "best", 1, 100, Target::Best);
    let ticket = actions(&h).len() as Ticket;
    assert!(h.state_mut().window.on_outcome(
        ticket,
        &Outcome::Migrated {
            result: Err("process 100 stays on node 1: no node is better".into())
        }
    ));
    h.run_steps(3);
    h.get_by_label("process 100 stays on node 1: no node is better");
    click_migrates(&mut h, "home", 1, 100, Target::Home);
}

#[test]
fn a_migration_shows_its_phases_and_the_window_follows_the_process() {
    let mut h = harness();
    double_click(&mut h, "pid 200 on node 1");
    h.get_by_label("migrator: pid 200 on node 1");
    double_click(&mut h, "node 3");
    let ticket = actions(&h).len() as Ticket;
    assert_eq!(
        actions(&h).last(),
        Some(&Action::Migrate {
            node: 1,
            pid: 200,
            target: Target::Node(3),
            postcopy: false
        })
    );
    for progress in [
        Progress::Checking,
        Progress::Freeze,
        Progress::Transfer {
            sent: 512 * 1024,
            total: 1024 * 1024,
            rate: 0,
        },
    ] {
        assert!(
            h.state_mut()
                .window
                .on_outcome(ticket, &Outcome::Progress { progress })
        );
        h.run_steps(3);
    }
    h.get_by_label("moving the image: 512 KiB of 1 MiB");
    h.get_by_label("phases: check → freeze → transfer");
    let moving = h.state().window.migrators()[0]
        .moving()
        .expect("moving")
        .fraction;
    assert!((moving - 0.6).abs() < 0.01, "{moving}");
    assert!(h.state_mut().window.on_outcome(
        ticket,
        &Outcome::Migrated {
            result: Ok(Migrated {
                from: 1,
                to: 3,
                old_pid: 200,
                new_pid: 900,
                freeze_ms: 12,
                total_ms: 80,
                handover_ms: 0,
                dump_ms: 0,
                image_via: None,
                bytes: 1024 * 1024,
                mode: "disk".into(),
                route: openmosix_client::migrate::Route::Relayed,
                relayed_because: None,
                target_images: None,
                rounds: 0,
                home: (1, 200),
            })
        }
    ));
    h.run_steps(3);
    h.get_by_label("moved to node 3 as pid 900 (frozen 12 ms)");
    h.get_by_label("migrator: pid 900 on node 3");
    // The window follows it: signals now go to node 3, pid 900.
    click(&mut h, "SIGSTOP");
    assert_eq!(
        actions(&h).last(),
        Some(&Action::Signal {
            node: 3,
            pids: vec![900],
            signal: Signal::Stop
        })
    );
}

#[test]
fn remote_procs_lists_the_guests_and_sends_them_away() {
    let mut h = harness();
    h.state_mut().window.choose(Choice::Node(2));
    h.run_steps(3);
    click(&mut h, "manage procs from remote");
    let remote = h.state().window.remote().expect("remote window");
    assert_eq!(remote.node, 2);
    h.get_by_label("from openMosix-node: 1 (pid 1809 there)");
    h.get_by_label("utime=181");
    h.get_by_label("state=R");
    // The local daemon is no guest.
    assert!(h.query_by_label("pid 70").is_none());
    click_migrates(&mut h, "goto home node", 2, 50, Target::Home);
    click_migrates(&mut h, "goto best node", 2, 50, Target::Best);
}

#[test]
fn the_migrators_post_copy_box_makes_the_move_post_copy() {
    let mut h = harness();
    double_click(&mut h, "pid 200 on node 1");
    tick(&mut h, "post-copy");
    double_click(&mut h, "node 2");
    assert_eq!(
        actions(&h).last(),
        Some(&Action::Migrate {
            node: 1,
            pid: 200,
            target: Target::Node(2),
            postcopy: true
        })
    );
}
