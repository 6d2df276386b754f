//! The main window on a cluster that takes its nodes from discovery, when the listener
//! cannot start: the status bar says why (the real window, egui_kittest; no testbed).

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_hpc::map::Cluster;
use openmosix_testbed::gui::{text_containing, wait_explained};
use openmosixview::App;

#[test]
fn discovery_that_cannot_listen_is_on_the_status_bar() {
    let cluster = Cluster::discovered(Some("omxnosuch0"));
    let app = App::live(cluster, "discovery on omxnosuch0").expect("app");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 500.0))
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    let wanted = "discovery on omxnosuch0: there is no network interface \"omxnosuch0\"";
    wait_explained(
        &mut h,
        10,
        &format!("the status bar saying: {wanted}"),
        |h| {
            h.query_by_label_contains("discovery on omxnosuch0")
                .is_some()
        },
        |h| {
            let labels: Vec<String> = h
                .query_all_by(|n| n.label().is_some())
                .filter_map(|n| n.accesskit_node().label())
                .collect();
            format!("labels: {labels:?}")
        },
    );
    let line = text_containing(&h, "discovery on omxnosuch0");
    assert!(line.starts_with(wanted), "{line}");
    assert!(h.state().snapshot().is_empty(), "no node without discovery");
}
