//! The monitor without a mouse, and what screen readers read (egui_kittest over fixed
//! data): Tab and the arrows focus a square, a node's number or PageDown choose the target
//! penguin, Enter sends the process there, H sends it home; every penguin and square has
//! an accessible name and value.

use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_client::migrate::Target;
use openmosix_gui::{Action, Outcome};

mod common;
use common::{State, harness_over, migrations, proc_};

type H = Harness<'static, State>;

/// Watching node 1: pid 100 (movable) and 101 (locked) on node 1, pid 200 of node 1 on
/// node 3; nodes 1, 2, 3 and 12 (for a two-digit node number).
fn harness() -> H {
    harness_over(
        &[1, 2, 3, 12],
        Vec::from([
            (
                1,
                vec![
                    proc_(100, 1, 1, "sleep 100", ""),
                    proc_(101, 1, 1, "sleep 101", "locked (nomig)"),
                ],
            ),
            (3, vec![proc_(200, 3, 1, "sleep 200", "")]),
        ]),
    )
}

fn press(h: &mut H, key: Key) {
    h.key_press(key);
    h.run_steps(2);
}

/// The label of the widget with the keyboard focus, if any.
fn focused(h: &H) -> Option<String> {
    h.query_by(|n| n.is_focused())
        .and_then(|n| n.accesskit_node().label())
}

/// Presses Tab until the square of `pid` has the focus (at most 12 times).
fn tab_to(h: &mut H, pid: i32) {
    let prefix = format!("pid {pid} on node ");
    for _ in 0..12 {
        press(h, Key::Tab);
        if focused(h).is_some_and(|l| l.starts_with(&prefix)) {
            return;
        }
    }
    panic!("Tab never reached pid {pid}; focus on {:?}", focused(h));
}

fn value(h: &H, label: &str) -> String {
    h.get_by_label(label).value().unwrap_or_default()
}

#[test]
fn penguins_and_squares_have_names_and_values() {
    let h = harness();
    let p1 = value(&h, "node 1 penguin");
    assert_eq!(p1, "up, 2 processes shown, the watched node");
    assert_eq!(value(&h, "node 2 penguin"), "up, 0 processes shown");
    assert_eq!(value(&h, "node 3 penguin"), "up, 1 processes shown");
    assert_eq!(value(&h, "pid 100 on node 1 — drag to move"), "sleep 100");
    assert_eq!(
        value(&h, "pid 101 on node 1 — cannot move"),
        "sleep 101, cannot move: locked (nomig)"
    );
    assert_eq!(
        value(&h, "pid 200 on node 3 — drag to move"),
        "sleep 200, migrated from node 1"
    );
}

#[test]
fn tab_a_number_and_enter_send_a_process_to_that_node() {
    let mut h = harness();
    tab_to(&mut h, 100);
    assert!(migrations(&h).is_empty());
    press(&mut h, Key::Num3);
    assert_eq!(h.state().mon.target(), Some(3));
    assert!(value(&h, "node 3 penguin").ends_with(", target"));
    h.get_by_label("target: node 3");
    press(&mut h, Key::Enter);
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
    let moving = value(&h, "pid 100 on node 1 — drag to move");
    assert_eq!(moving, "sleep 100, moving: starting");
}

#[test]
fn two_digits_typed_together_name_a_two_digit_node() {
    let mut h = harness();
    tab_to(&mut h, 100);
    press(&mut h, Key::Num1);
    assert_eq!(h.state().mon.target(), Some(1));
    press(&mut h, Key::Num2);
    assert_eq!(h.state().mon.target(), Some(12));
    // A digit no node has says so and keeps the target.
    press(&mut h, Key::Num9);
    press(&mut h, Key::Num9);
    assert_eq!(h.state().mon.target(), Some(12));
    assert!(h.state().mon.status().contains("no node 9"));
    press(&mut h, Key::Enter);
    let sent = migrations(&h);
    assert_eq!(sent.len(), 1);
    assert!(matches!(
        sent[0],
        Action::Migrate {
            target: Target::Node(12),
            ..
        }
    ));
}

#[test]
fn page_down_walks_the_penguins_and_escape_forgets_the_target() {
    let mut h = harness();
    tab_to(&mut h, 100);
    // From the penguin the process sits by: node 1 → 2 → 3, and back.
    press(&mut h, Key::PageDown);
    assert_eq!(h.state().mon.target(), Some(2));
    press(&mut h, Key::PageDown);
    assert_eq!(h.state().mon.target(), Some(3));
    press(&mut h, Key::PageUp);
    assert_eq!(h.state().mon.target(), Some(2));
    press(&mut h, Key::Escape);
    assert_eq!(h.state().mon.target(), None);
    assert!(focused(&h).is_none());
    assert!(migrations(&h).is_empty());
}

#[test]
fn enter_without_a_target_asks_for_one() {
    let mut h = harness();
    tab_to(&mut h, 100);
    press(&mut h, Key::Enter);
    assert!(migrations(&h).is_empty());
    assert!(
        h.state().mon.status().contains("choose a node first"),
        "{}",
        h.state().mon.status()
    );
}

#[test]
fn arrows_move_the_focus_between_squares() {
    let mut h = harness();
    tab_to(&mut h, 100);
    let mut seen = vec![focused(&h)];
    // (Up from the top squares goes on to the "watch node" chooser above the canvas.)
    for key in [Key::ArrowRight, Key::ArrowDown, Key::ArrowLeft] {
        press(&mut h, key);
        let now = focused(&h);
        assert!(
            now.as_deref().is_some_and(|l| l.starts_with("pid ")),
            "{key:?} left the squares: {now:?}"
        );
        seen.push(now);
    }
    seen.dedup();
    assert!(seen.len() > 1, "the arrows never moved the focus: {seen:?}");
}

#[test]
fn a_locked_process_sent_by_keys_says_why() {
    let mut h = harness();
    tab_to(&mut h, 101);
    press(&mut h, Key::Num2);
    press(&mut h, Key::Enter);
    assert!(migrations(&h).is_empty());
    assert!(h.state().mon.status().contains("locked (nomig)"));
    h.get_by_label("cannot move: locked (nomig)");
}

#[test]
fn h_sends_a_migrated_process_home_and_not_one_at_home() {
    let mut h = harness();
    tab_to(&mut h, 100);
    press(&mut h, Key::H);
    assert!(migrations(&h).is_empty());
    assert!(h.state().mon.status().contains("at home already"));
    tab_to(&mut h, 200);
    press(&mut h, Key::H);
    assert_eq!(
        migrations(&h),
        vec![Action::Migrate {
            node: 3,
            pid: 200,
            target: Target::Home,
            postcopy: false
        }]
    );
}

#[test]
fn the_focus_comes_back_to_a_square_that_was_out_of_sight_for_a_moment() {
    let mut h = harness();
    tab_to(&mut h, 100);
    // A list without it (a migration under way), then with it again.
    let lists = [
        vec![proc_(101, 1, 1, "sleep 101", "locked (nomig)")],
        vec![
            proc_(100, 1, 1, "sleep 100", ""),
            proc_(101, 1, 1, "sleep 101", "locked (nomig)"),
        ],
    ];
    for (i, list) in lists.into_iter().enumerate() {
        h.state_mut().mon.on_outcome(
            0,
            &Outcome::Procs {
                node: 1,
                result: Ok(list),
            },
        );
        h.run_steps(3);
        if i == 0 {
            assert!(focused(&h).is_none(), "{:?}", focused(&h));
        }
    }
    assert_eq!(
        focused(&h).as_deref(),
        Some("pid 100 on node 1 — drag to move")
    );
    // Escape lets go for good.
    press(&mut h, Key::Escape);
    h.state_mut().mon.on_outcome(
        0,
        &Outcome::Procs {
            node: 1,
            result: Ok(vec![]),
        },
    );
    h.run_steps(3);
    h.state_mut().mon.on_outcome(
        0,
        &Outcome::Procs {
            node: 1,
            result: Ok(vec![proc_(100, 1, 1, "sleep 100", "")]),
        },
    );
    h.run_steps(3);
    assert!(focused(&h).is_none());
}
