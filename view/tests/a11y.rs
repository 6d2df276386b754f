//! What screen readers read in the main window (egui_kittest over made-up figures, no
//! network): every lamp, bar, slider and LCD is found by its name with its value.

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_client::{LinkState, NodeView};
use openmosix_gui::StaticSource;
use openmosix_hpc::model::NodeStatus;
use openmosix_testbed::fixtures::{node_info, node_view};
use openmosixview::App;

/// Node 1 idle; node 2 down; node 3 busy (load 75 on 2 CPUs), blocked, speed 2500,
/// a quarter of its memory free.
fn nodes() -> Vec<NodeView> {
    let one = NodeView {
        info: Some(node_info(1)),
        ..node_view(1)
    };
    let two = NodeView {
        state: LinkState::Down,
        reason: Some("connection refused".into()),
        ..node_view(2)
    };
    let mut info = node_info(3);
    info.load = 75.0;
    info.speed = 2500;
    info.status = NodeStatus::Blocked;
    info.mem = 512 << 20;
    let three = NodeView {
        info: Some(info),
        ..node_view(3)
    };
    vec![one, two, three]
}

fn harness() -> Harness<'static, App> {
    let source = StaticSource {
        nodes: nodes(),
        ..StaticSource::default()
    };
    let app = App::new(Box::new(source), "made up");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 500.0))
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    h.run_steps(3);
    h
}

fn value(h: &Harness<'static, App>, label: &str) -> String {
    h.get_by_label(label)
        .value()
        .unwrap_or_else(|| panic!("{label} has no value"))
}

#[test]
fn lamps_say_the_state_of_their_node() {
    let h = harness();
    assert_eq!(value(&h, "node 1 lamp"), "up");
    assert_eq!(value(&h, "node 2 lamp"), "down");
    assert_eq!(value(&h, "node 3 lamp"), "blocked");
}

#[test]
fn bars_sliders_and_lcds_carry_their_figures() {
    let h = harness();
    assert_eq!(value(&h, "node 1 load"), "0");
    assert_eq!(value(&h, "node 3 load"), "75");
    assert_eq!(value(&h, "node 1 memory"), "50 % used");
    assert_eq!(value(&h, "node 3 memory"), "75 % used");
    let slider = h.get_by_role_and_label(Role::Slider, "node 3 speed");
    assert_eq!(slider.value().as_deref(), Some("2500"));
    assert_eq!(value(&h, "node 3 speed LCD"), "2500");
    assert_eq!(value(&h, "node 1 speed LCD"), "1000");
    // A node that is down has no figures to show.
    assert!(h.query_by_label("node 2 load").is_none());
    assert!(h.query_by_label("node 2 speed").is_none());
    // The summary line: (0 + 75) / 4 CPUs of the nodes that are up. (Its headings carry
    // the same words: the bars are the progress indicators.)
    let bar = |label| {
        h.get_by_role_and_label(Role::ProgressIndicator, label)
            .value()
            .unwrap_or_default()
    };
    assert_eq!(bar("overall load"), "19 %");
    assert_eq!(bar("overall used mem"), "62 %");
    assert!(bar("load-balancing efficiency").ends_with(" %"));
    h.get_by_role_and_label(Role::Slider, "all nodes speed");
    h.get_by_label("all nodes speed LCD");
}
