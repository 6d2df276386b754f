//! The advanced-execution window (HOWTO 10.4.3–10.4.6) with egui_kittest against a
//! `StaticSource`: the actions it asks for, not a cluster.

use egui::accesskit::{Role, Toggled};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_client::NodeView;
use openmosix_gui::{Action, Outcome, StaticSource};
use openmosix_hpc::bytes::BytesOrText;
use openmosix_hpc::model::{NodeId, RunOptions};
use openmosix_hpc::protocol::Started;
use openmosix_testbed::fixtures::{node_info, node_view};
use openmosixview::advanced::AdvancedExecution;

struct State {
    win: AdvancedExecution,
    src: StaticSource,
    nodes: Vec<NodeView>,
}

fn node(id: NodeId) -> NodeView {
    NodeView {
        info: Some(node_info(id)),
        ..node_view(id)
    }
}

fn harness_with(ids: &[NodeId]) -> Harness<'static, State> {
    let nodes: Vec<NodeView> = ids.iter().copied().map(node).collect();
    let state = State {
        win: AdvancedExecution::new(),
        src: StaticSource {
            nodes: nodes.clone(),
            ..StaticSource::default()
        },
        nodes,
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(700.0, 600.0))
        .build_ui_state(|ui, s: &mut State| s.win.ui(ui, &s.src, &s.nodes), state);
    h.run();
    h
}

fn harness() -> Harness<'static, State> {
    harness_with(&[1, 2, 3])
}

fn type_into(h: &mut Harness<'static, State>, field: &str, text: &str) {
    h.get_by_role_and_label(Role::TextInput, field).click();
    h.run();
    h.get_by_role_and_label(Role::TextInput, field)
        .type_text(text);
    h.run();
}

fn check(h: &mut Harness<'static, State>, label: &str) {
    h.get_by_role_and_label(Role::CheckBox, label).click();
    h.run();
}

/// Presses the mouse at `pos` and lets go there, two frames later.
fn press_at(h: &mut Harness<'static, State>, pos: egui::Pos2) {
    h.drag_at(pos);
    h.run_steps(2);
    h.drop_at(pos);
    h.run();
}

fn checked(h: &Harness<'static, State>, label: &str) -> bool {
    h.get_by_role_and_label(Role::CheckBox, label)
        .accesskit_node()
        .toggled()
        == Some(Toggled::True)
}

fn dial_value(h: &Harness<'static, State>) -> Option<f64> {
    h.get_by_role_and_label(Role::Slider, "host chooser")
        .accesskit_node()
        .numeric_value()
}

/// Clicks "execute"; the window then shows a spinner (repainting), so step, don't settle.
fn execute(h: &mut Harness<'static, State>) {
    h.get_by_label("execute").click();
    h.run_steps(3);
}

fn actions(h: &Harness<'static, State>) -> Vec<Action> {
    h.state().src.actions.lock().expect("actions").clone()
}

fn argv(words: &[&str]) -> Vec<BytesOrText> {
    words.iter().map(|&w| BytesOrText::from(w)).collect()
}

#[test]
fn run_on_the_chosen_node_with_split_arguments() {
    let mut h = harness();
    type_into(&mut h, "program", "/bin/sleep");
    type_into(&mut h, "arguments", r#"30 "a b""#);
    check(&mut h, "run on");
    check(&mut h, "no migration");
    assert_eq!(dial_value(&h), Some(1.0));
    h.get_by_label("next node").click();
    h.run();
    h.get_by_label("next node").click();
    h.run();
    assert_eq!(dial_value(&h), Some(3.0));
    h.get_by_label("3");
    let lcd = h.get_by_label("host chooser LCD").value();
    assert_eq!(lcd.as_deref(), Some("3"));
    execute(&mut h);
    assert_eq!(
        actions(&h),
        vec![Action::Run {
            node: 3,
            argv: argv(&["/bin/sleep", "30", "a b"]),
            options: RunOptions {
                nomig: true,
                runon: Some(3),
                ..RunOptions::default()
            },
        }]
    );
    h.get_by_label("starting on node 3…");

    // The outcome of the window's ticket becomes a result line; others are not its own.
    let ok = Outcome::Started {
        node: 3,
        result: Ok(Started { pid: 42, node: 3 }),
    };
    assert!(!h.state_mut().win.on_outcome(99, &ok));
    assert!(h.state_mut().win.on_outcome(1, &ok));
    h.run();
    h.get_by_label("started pid 42 on node 3");
    assert!(h.query_by_label("starting on node 3…").is_none());
}

#[test]
fn parallel_inverse_starts_from_last_to_first() {
    let mut h = harness();
    type_into(&mut h, "program", "/bin/true");
    check(&mut h, "run on");
    check(&mut h, "parallel");
    assert!(!checked(&h, "run on"), "parallel unchecks run on");
    h.get_by_role_and_label(Role::SpinButton, "first node")
        .set_value_accesskit(1.0);
    h.run();
    h.get_by_role_and_label(Role::SpinButton, "last node")
        .set_value_accesskit(3.0);
    h.run();
    check(&mut h, "inverse");
    execute(&mut h);
    let acts = actions(&h);
    let nodes: Vec<NodeId> = acts.iter().map(Action::node).collect();
    assert_eq!(nodes, vec![3, 2, 1]);
    for a in &acts {
        let Action::Run {
            argv: a, options, ..
        } = a
        else {
            panic!("not a run: {a:?}");
        };
        assert_eq!(a, &argv(&["/bin/true"]));
        assert_eq!(options, &RunOptions::default(), "not locked to the node");
    }

    // One fails, one starts: both are reported.
    let win = &mut h.state_mut().win;
    assert!(win.on_outcome(
        2,
        &Outcome::Started {
            node: 2,
            result: Err("no such file".into()),
        }
    ));
    assert!(win.on_outcome(
        1,
        &Outcome::Started {
            node: 3,
            result: Ok(Started { pid: 7, node: 3 }),
        }
    ));
    h.run_steps(3);
    h.get_by_label("node 2: no such file");
    h.get_by_label("started pid 7 on node 3");
    h.get_by_label("starting on node 1…");
}

#[test]
fn spin_boxes_are_clamped_to_the_ids_present() {
    let mut h = harness();
    check(&mut h, "parallel");
    h.get_by_role_and_label(Role::SpinButton, "last node")
        .set_value_accesskit(9.0);
    h.run();
    let last = h.get_by_role_and_label(Role::SpinButton, "last node");
    assert_eq!(last.accesskit_node().numeric_value(), Some(3.0));
}

#[test]
fn exclusive_options_uncheck_each_other() {
    let mut h = harness();
    check(&mut h, "parallel");
    check(&mut h, "run on");
    assert!(!checked(&h, "parallel"));
    check(&mut h, "cpu job");
    check(&mut h, "io job");
    assert!(!checked(&h, "cpu job") && checked(&h, "io job"));
    check(&mut h, "no decay");
    check(&mut h, "slow decay");
    assert!(!checked(&h, "no decay") && checked(&h, "slow decay"));
    check(&mut h, "fast decay");
    assert!(!checked(&h, "slow decay") && checked(&h, "fast decay"));
    check(&mut h, "no migration");
    check(&mut h, "run home");
    assert!(checked(&h, "no migration") && checked(&h, "run home"));
}

#[test]
fn an_unclosed_quote_starts_nothing() {
    let mut h = harness();
    type_into(&mut h, "program", "/bin/echo");
    type_into(&mut h, "arguments", r#"one "two"#);
    execute(&mut h);
    assert!(actions(&h).is_empty());
    h.get_by_label("arguments: missing closing quote");
}

#[test]
fn no_program_starts_nothing() {
    let mut h = harness();
    execute(&mut h);
    assert!(actions(&h).is_empty());
    h.get_by_label("choose a program first");
}

#[test]
fn the_dial_takes_drags_keys_and_accessibility_steps() {
    let mut h = harness();
    let rect = h.get_by_role_and_label(Role::Slider, "host chooser").rect();
    // Straight above the centre is the middle of the sweep: node 2 of 1..3.
    press_at(&mut h, rect.center() - egui::vec2(0.0, rect.height() * 0.4));
    assert_eq!(dial_value(&h), Some(2.0));
    // Bottom right (end of the sweep): the last node.
    press_at(
        &mut h,
        rect.center() + egui::vec2(rect.width() * 0.3, rect.height() * 0.3),
    );
    assert_eq!(dial_value(&h), Some(3.0));
    h.get_by_role_and_label(Role::Slider, "host chooser")
        .decrement_accesskit();
    h.run();
    assert_eq!(dial_value(&h), Some(2.0));
    h.get_by_role_and_label(Role::Slider, "host chooser")
        .focus();
    h.run();
    h.key_press(egui::Key::ArrowLeft);
    h.run();
    assert_eq!(dial_value(&h), Some(1.0));
    h.get_by_label("previous node");

    // The scroll wheel over the dial steps it: up is the next node, stopping at the last.
    // (The hover shows a tooltip, which animates: step rather than settle.)
    h.hover_at(rect.center());
    h.run_steps(8);
    for _ in 0..3 {
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, 40.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        });
        h.run_steps(8);
    }
    assert_eq!(dial_value(&h), Some(3.0));
}

#[test]
fn no_nodes_disables_execute() {
    let mut h = harness_with(&[]);
    assert!(
        !h.query_all_by_label("no nodes")
            .collect::<Vec<_>>()
            .is_empty()
    );
    type_into(&mut h, "program", "/bin/true");
    h.get_by_label("execute").click();
    h.run();
    assert!(actions(&h).is_empty());
    assert!(h.get_by_label("execute").accesskit_node().is_disabled());
}
