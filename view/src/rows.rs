//! Drawing the main window's body: the cluster summary and one row per node.

use egui::{RichText, Ui};
use openmosix_client::{LinkState, NodeView};
use openmosix_gui::widgets::{self, lamp, lamp_state, named_bar, named_lcd, quality_bar};
use openmosix_hpc::model::NodeId;

use crate::app::{App, SpeedEdit};
use crate::config_dialog::Target;
use crate::summary::{human_bytes, load_percent, mem_used_fraction, summarize};

/// Speed slider range (PIII/1GHz = 1000).
const SPEED_MAX: u32 = 20_000;
const ROW_HEIGHT: f32 = 26.0;

/// The top line: efficiency, overall load and memory, all memory, all CPUs.
pub fn summary(app: &mut App, ui: &mut Ui) {
    let s = summarize(&app.nodes);
    egui::Grid::new("summary")
        .num_columns(6)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            ui.label("cluster-nodes");
            ui.label("load-balancing efficiency");
            ui.label("overall load");
            ui.label("overall used mem");
            ui.label("all mem");
            ui.label("all cpu");
            ui.end_row();
            ui.label(format!("{} of {} up", s.up, s.nodes));
            let efficiency = format!("{:.0} %", s.efficiency);
            let r = quality_bar(ui, s.efficiency / 100.0, &efficiency, 150.0);
            let role = egui::Role::ProgressIndicator;
            widgets::name(ui, &r, role, "load-balancing efficiency", &efficiency);
            r.on_hover_text("100 % = every node carries the same load per CPU (docs/figures.md)");
            let load = format!("{:.0} %", s.load_percent);
            named_bar(
                ui,
                s.load_percent / 100.0,
                &load,
                120.0,
                "overall load",
                &load,
            );
            let used = if s.mem_total == 0 {
                0.0
            } else {
                s.mem_used as f32 / s.mem_total as f32
            };
            let used_text = format!("{:.0} %", used * 100.0);
            let label = "overall used mem";
            named_bar(ui, used, &used_text, 120.0, label, &used_text);
            ui.label(human_bytes(s.mem_total));
            ui.label(s.cpus.to_string());
            ui.end_row();
        });
}

/// The "all nodes" row and a row per node; rows scroll and only visible ones are drawn.
pub fn table(app: &mut App, ui: &mut Ui) {
    ui.horizontal(|ui| {
        ui.add_space(ui.spacing().interact_size.y + 40.0);
        if ui
            .add_sized([140.0, 20.0], egui::Button::new("all nodes"))
            .clicked()
        {
            app.open_dialog(Target::All);
        }
        let mut v = app.all_speed;
        let r = ui.add(
            egui::Slider::new(&mut v, 1..=SPEED_MAX)
                .logarithmic(true)
                .show_value(false),
        );
        widgets::name(
            ui,
            &r,
            egui::Role::Slider,
            "all nodes speed",
            &v.to_string(),
        );
        app.all_speed = v;
        named_lcd(ui, &v.to_string(), 5, "all nodes speed LCD");
        if r.drag_stopped() || (r.changed() && !r.dragged()) {
            let ids: Vec<_> = app
                .nodes
                .iter()
                .filter(|n| n.state == LinkState::Up)
                .map(|n| n.id)
                .collect();
            for id in ids {
                app.set_speed(id, v);
            }
        }
        ui.label("set the speed of every node");
    });
    ui.separator();
    let nodes = app.nodes.clone();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show_rows(ui, ROW_HEIGHT, nodes.len(), |ui, range| {
            for node in &nodes[range] {
                row(app, ui, node);
            }
        });
}

fn row(app: &mut App, ui: &mut Ui, node: &NodeView) {
    ui.horizontal(|ui| {
        ui.set_height(ROW_HEIGHT - 4.0);
        let (color, word) = lamp_state(node);
        let lamp_resp = lamp(ui, color, &format!("node {} lamp", node.id), word);
        if let Some(reason) = &node.reason {
            lamp_resp.on_hover_text(reason.as_str());
        }
        ui.add_sized(
            [28.0, 18.0],
            egui::Label::new(RichText::new(node.id.to_string()).strong()),
        );
        let address = ui.add_sized([140.0, 20.0], egui::Button::new(&node.address));
        let address = match app.source.via(node.id) {
            Some(gateway) => address.on_hover_text(format!("via gateway node {gateway}")),
            None => address,
        };
        if address.clicked() {
            app.open_dialog(Target::Node(node.id));
        }
        let up = node.state == LinkState::Up;
        let Some(info) = node.info.as_ref() else {
            ui.label(
                node.reason
                    .as_deref()
                    .unwrap_or("waiting for the first figures…"),
            );
            return;
        };
        speed(app, ui, node.id, info.speed, up);
        let load = load_percent(info);
        let id = node.id;
        let text = format!("{load:.0} %");
        let value = info.load.to_string();
        named_bar(
            ui,
            load / 100.0,
            &text,
            110.0,
            &format!("node {id} load"),
            &value,
        )
        .on_hover_text(format!("openMosix load {}", info.load));
        let mem = mem_used_fraction(info);
        let text = format!("{:.0} %", mem * 100.0);
        let value = format!("{text} used");
        named_bar(ui, mem, &text, 110.0, &format!("node {id} memory"), &value);
        ui.add_sized([80.0, 18.0], egui::Label::new(human_bytes(info.mem)))
            .on_hover_text("available memory");
        ui.label(format!("{} cpu", info.cpus));
    });
}

/// The speed slider of `node` (the agent's `reported` speed, or the user's edit not yet
/// reported back) with its LCD number; a change is sent when the drag ends.
fn speed(app: &mut App, ui: &mut Ui, node: NodeId, reported: u32, up: bool) {
    let mut v = app.speed_edits.get(&node).map_or(reported, |e| e.value);
    let r = ui.add_enabled(
        up,
        egui::Slider::new(&mut v, 1..=SPEED_MAX.max(reported))
            .logarithmic(true)
            .show_value(false),
    );
    widgets::name(
        ui,
        &r,
        egui::Role::Slider,
        &format!("node {node} speed"),
        &v.to_string(),
    );
    if r.changed() {
        app.speed_edits.insert(
            node,
            SpeedEdit {
                value: v,
                sent: false,
            },
        );
    }
    if r.drag_stopped() || (r.changed() && !r.dragged()) {
        app.set_speed(node, v);
    }
    named_lcd(ui, &v.to_string(), 5, &format!("node {node} speed LCD"));
}
