//! The rows of the process list, and the sentences and labels that name them.

use egui::{Color32, RichText, Ui};
use openmosix_store::ProcRow;

/// The colour of a migrated process (home node ≠ the node it runs on).
pub const MIGRATED: Color32 = Color32::from_rgb(0, 150, 0);

/// The accessible label of a row of the process list.
pub fn row_label(p: &ProcRow) -> String {
    format!("pid {} on node {}", p.pid, p.node)
}

/// The answer to "where was pid `pid`" given what [`openmosix_store::History::where_was`] found.
pub fn where_sentence(pid: i32, found: &[ProcRow]) -> String {
    if found.is_empty() {
        return format!("pid {pid} was on no node at that time.");
    }
    let places: Vec<String> = found
        .iter()
        .map(|p| {
            if p.home == p.node {
                format!("node {} (at home)", p.node)
            } else if p.pid != pid {
                // Found by its pid on its home node.
                format!(
                    "node {} as pid {} (migrated from node {})",
                    p.node, p.pid, p.home
                )
            } else if p.home_pid != pid {
                format!(
                    "node {} (migrated from node {}, pid {} there)",
                    p.node, p.home, p.home_pid
                )
            } else {
                format!("node {} (migrated from node {})", p.node, p.home)
            }
        })
        .collect();
    let mut text = format!("pid {pid} was on ");
    for (i, place) in places.iter().enumerate() {
        if i > 0 {
            text.push_str(if i + 1 == places.len() { " and " } else { ", " });
        }
        text.push_str(place);
    }
    text.push('.');
    text
}

/// Widths of the pid, node, home and state columns; the command line takes the rest.
pub(crate) const COLUMNS: [f32; 5] = [64.0, 48.0, 48.0, 44.0, 0.0];

/// A cell of `width` (0: the rest of the row), left-aligned.
pub(crate) fn cell(ui: &mut Ui, width: f32, add: impl FnOnce(&mut Ui)) {
    let width = if width > 0.0 {
        width
    } else {
        ui.available_width().max(200.0)
    };
    let height = ui.spacing().interact_size.y;
    ui.allocate_ui_with_layout(
        egui::vec2(width, height),
        egui::Layout::left_to_right(egui::Align::Center),
        |ui| {
            ui.set_min_width(width);
            add(ui);
        },
    );
}

pub(crate) fn row_ui(ui: &mut Ui, p: &ProcRow, height: f32, odd: bool, found: bool) {
    let migrated = p.home != p.node;
    let text = |t: String| {
        let t = RichText::new(t).monospace();
        let t = if migrated { t.color(MIGRATED) } else { t };
        if found { t.strong().underline() } else { t }
    };
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(ui.available_width(), height),
        egui::Sense::hover(),
    );
    if odd || found {
        let fill = if found {
            ui.visuals().selection.bg_fill.gamma_multiply(0.5)
        } else {
            ui.visuals().faint_bg_color
        };
        ui.painter().rect_filled(rect, 0.0, fill);
    }
    let mut row = ui.new_child(
        egui::UiBuilder::new()
            .max_rect(rect)
            .layout(egui::Layout::left_to_right(egui::Align::Center)),
    );
    let ui = &mut row;
    let label = row_label(p);
    cell(ui, COLUMNS[0], |ui| {
        let r = ui.label(text(p.pid.to_string()));
        r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &label));
    });
    cell(ui, COLUMNS[1], |ui| {
        ui.label(text(p.node.to_string()));
    });
    cell(ui, COLUMNS[2], |ui| {
        let home = ui.label(text(p.home.to_string()));
        if migrated {
            home.on_hover_text(format!(
                "migrated: runs on node {}, its home is node {} (pid {} there)",
                p.node, p.home, p.home_pid
            ));
        }
    });
    cell(ui, COLUMNS[3], |ui| {
        ui.label(text(p.state.to_string()));
    });
    cell(ui, COLUMNS[4], |ui| {
        ui.add(egui::Label::new(text(p.cmdline.clone())).truncate());
    });
}
