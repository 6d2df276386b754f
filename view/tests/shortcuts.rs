//! Keyboard shortcuts of the main window: Ctrl+A opens the configuration of all nodes, but
//! not while a text field has the keyboard (there it selects the text). The real window
//! with egui_kittest, on a cluster without nodes (no testbed needed).

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_hpc::map::Cluster;
use openmosix_testbed::gui::{menu_item, type_into};
use openmosixview::App;

const ALL_DIALOG: &str = "openMosix-configuration of all nodes";

fn harness() -> Harness<'static, App> {
    // Discovery on an interface that does not exist: a live app with no node at all.
    let cluster = Cluster::discovered(Some("omxnosuch1"));
    let app = App::live(cluster, "no nodes").expect("app");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 600.0))
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    h.run_steps(3);
    h
}

#[test]
fn ctrl_a_opens_the_configuration_of_all_nodes() {
    let mut h = harness();
    assert!(h.query_by_label(ALL_DIALOG).is_none());
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.run_steps(3);
    assert!(
        h.query_by_label(ALL_DIALOG).is_some(),
        "Ctrl+A opened nothing"
    );
}

#[test]
fn ctrl_a_in_a_text_field_stays_in_the_field() {
    let mut h = harness();
    menu_item(&mut h, "File", "add node…");
    h.run_steps(3);
    type_into(&mut h, "ssh destination", "root@node3");
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.run_steps(3);
    assert!(
        h.query_by_label(ALL_DIALOG).is_none(),
        "Ctrl+A in the destination field opened the configuration of all nodes"
    );
}
