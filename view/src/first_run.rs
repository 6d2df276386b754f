//! The first run: with no cluster file, openmosixview shows this machine alone (through a
//! locally started agent), and says in the window how to add nodes.

use egui::{RichText, Ui};
use openmosix_client::NodeView;

use crate::app::{App, FileKind};

/// The hint's first line, which tests find it by.
pub const HINT: &str = "Only this machine is shown.";

/// Whether the window shows this machine alone (the local agent, no other node).
pub fn only_this_machine(nodes: &[NodeView]) -> bool {
    matches!(nodes, [node] if node.address == "localhost")
}

/// How to add nodes: File → add node…, a cluster file, or discovery; the first two are
/// links that open their windows (the default fonts have no arrow: the text has none).
pub fn hint(app: &mut App, ui: &mut Ui) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new(HINT).strong());
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().item_spacing.x = 4.0;
            ui.label("To add nodes, use the File menu:");
            if ui.link("add node…").clicked() {
                app.open_add_node();
            }
            ui.label("(a node by its ssh destination; it goes into a cluster file) or");
            if ui.link("open cluster file…").clicked() {
                app.open_cluster_window(FileKind::Cluster);
            }
            ui.label("Or start with");
            ui.add(
                egui::Label::new(RichText::new("openmosixview --discover IFACE").code())
                    .wrap_mode(egui::TextWrapMode::Extend),
            );
            ui.label("to show the nodes that announce themselves on that network.");
        });
    });
}
