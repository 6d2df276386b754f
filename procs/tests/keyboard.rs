//! The process box and the migrator without a mouse, and what screen readers read
//! (egui_kittest over made-up lists): Tab or the arrows reach a pid, Enter opens its
//! migrator with the focus on a node, the arrows choose the node and Enter migrates there;
//! kill, SIGSTOP and the rest by Tab and Enter.

use egui::Key;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_client::migrate::Target;
use openmosix_gui::Action;
use openmosix_hpc::model::Signal;

mod common;
use common::{State, actions, harness};

type H = Harness<'static, State>;

fn press(h: &mut H, key: Key) {
    h.key_press(key);
    h.run_steps(3);
}

/// The label of the widget with the keyboard focus, if any.
fn focused(h: &H) -> Option<String> {
    h.query_by(|n| n.is_focused())
        .and_then(|n| n.accesskit_node().label())
}

/// Presses Tab until the widget labelled `label` has the focus (at most 40 times).
fn tab_to(h: &mut H, label: &str) {
    for _ in 0..40 {
        press(h, Key::Tab);
        if focused(h).as_deref() == Some(label) {
            return;
        }
    }
    panic!("Tab never reached {label}; focus on {:?}", focused(h));
}

fn value(h: &H, label: &str) -> String {
    h.get_by_label(label).value().unwrap_or_default()
}

#[test]
fn pids_lamps_and_nodes_have_names_and_values() {
    let mut h = harness();
    assert_eq!(value(&h, "pid 200 on node 1"), "sleep 4711, sleeping");
    assert_eq!(
        value(&h, "pid 300 on node 1"),
        "/usr/sbin/lockd --hold, sleeping, cannot move: it holds a file lock"
    );
    assert_eq!(
        value(&h, "pid 50 on node 2"),
        "/usr/local/povray/bin/x-pvmpov, running, migrated from node 1"
    );
    h.state_mut().window.open_migrator(1, 200);
    h.run_steps(3);
    assert_eq!(value(&h, "node 1 lamp"), "up");
    let node = |label| {
        h.get_by_role_and_label(Role::Button, label)
            .value()
            .unwrap_or_default()
    };
    assert_eq!(node("node 1"), "10.0.0.1, up, where it runs");
    assert_eq!(node("node 3"), "10.0.0.3, up");
}

#[test]
fn enter_on_a_pid_opens_its_migrator_and_enter_on_a_node_migrates_there() {
    let mut h = harness();
    tab_to(&mut h, "pid 100 on node 1");
    // Down the rows with the arrow keys: 100, then 200.
    press(&mut h, Key::ArrowDown);
    assert_eq!(focused(&h).as_deref(), Some("pid 200 on node 1"));
    press(&mut h, Key::Enter);
    h.get_by_label("migrator: pid 200 on node 1");
    // The focus is on the first other node; the arrow takes it to the next.
    assert_eq!(focused(&h).as_deref(), Some("node 2"));
    press(&mut h, Key::ArrowDown);
    assert_eq!(focused(&h).as_deref(), Some("node 3"));
    assert!(
        !actions(&h)
            .iter()
            .any(|a| matches!(a, Action::Migrate { .. }))
    );
    press(&mut h, Key::Enter);
    assert_eq!(
        actions(&h).last(),
        Some(&Action::Migrate {
            node: 1,
            pid: 200,
            target: Target::Node(3),
            postcopy: false
        })
    );
}

#[test]
fn kill_and_home_by_tab_and_enter() {
    let mut h = harness();
    tab_to(&mut h, "pid 50 on node 2");
    press(&mut h, Key::Enter);
    h.get_by_label("migrator: pid 50 on node 2");
    tab_to(&mut h, "kill");
    press(&mut h, Key::Enter);
    assert_eq!(
        actions(&h).last(),
        Some(&Action::Signal {
            node: 2,
            pids: vec![50],
            signal: Signal::Kill
        })
    );
    // Back with Shift+Tab to "home", then Space (a button takes Enter and Space alike).
    for _ in 0..6 {
        if focused(&h).as_deref() == Some("home") {
            break;
        }
        h.key_press_modifiers(egui::Modifiers::SHIFT, Key::Tab);
        h.run_steps(3);
    }
    assert_eq!(focused(&h).as_deref(), Some("home"));
    press(&mut h, Key::Space);
    assert_eq!(
        actions(&h).last(),
        Some(&Action::Migrate {
            node: 2,
            pid: 50,
            target: Target::Home,
            postcopy: false
        })
    );
}
