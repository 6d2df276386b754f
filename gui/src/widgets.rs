//! The original's look in egui: status lamps, percentage bars and LCD numbers.

use egui::{Color32, Response, RichText, Sense, Ui, Vec2};
use openmosix_client::{LinkState, NodeView};
use openmosix_hpc::model::NodeStatus;

/// Green: up and accepting guests.
pub const LAMP_UP: Color32 = Color32::from_rgb(40, 200, 60);
/// Red: not answering.
pub const LAMP_DOWN: Color32 = Color32::from_rgb(220, 40, 40);
/// Yellow: opening the connection.
pub const LAMP_CONNECTING: Color32 = Color32::from_rgb(230, 190, 30);
/// Orange: up but blocking guests or out of the pool.
pub const LAMP_BLOCKED: Color32 = Color32::from_rgb(240, 130, 20);

/// The lamp colour of a node and a word for it (the word is the lamp's accessible label).
pub fn lamp_state(node: &NodeView) -> (Color32, &'static str) {
    match (node.state, node.info.as_ref().map(|i| i.status)) {
        (LinkState::Down, _) => (LAMP_DOWN, "down"),
        (LinkState::Connecting, _) => (LAMP_CONNECTING, "connecting"),
        (LinkState::Up, Some(NodeStatus::Blocked)) => (LAMP_BLOCKED, "blocked"),
        (LinkState::Up, Some(NodeStatus::Off)) => (LAMP_BLOCKED, "off"),
        (LinkState::Up, _) => (LAMP_UP, "up"),
    }
}

/// A round lamp named `label` for screen readers (e.g. "node 3 lamp"), its state word
/// (from [`lamp_state`]) as its accessible value, and the state as hover text.
pub fn lamp(ui: &mut Ui, color: Color32, label: &str, state: &str) -> Response {
    let size = ui.spacing().interact_size.y;
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(size), Sense::hover());
    let c = rect.center();
    let r = size * 0.38;
    let painter = ui.painter();
    painter.circle_filled(c, r, color);
    painter.circle_stroke(c, r, egui::Stroke::new(1.0, Color32::from_gray(40)));
    painter.circle_filled(
        c + Vec2::new(-r * 0.35, -r * 0.35),
        r * 0.3,
        Color32::from_white_alpha(90),
    );
    name(ui, &response, egui::Role::Image, label, state);
    response.on_hover_text(label_text(color))
}

fn label_text(color: Color32) -> &'static str {
    match color {
        LAMP_UP => "up",
        LAMP_DOWN => "down: not answering",
        LAMP_CONNECTING => "connecting",
        _ => "blocked or out of the pool",
    }
}

/// A usage bar (load, memory) filled to `fraction` (0..=1) with `text` on it: blue,
/// turning amber above 75 % and red above 90 %.
pub fn bar(ui: &mut Ui, fraction: f32, text: &str, width: f32) -> Response {
    let fill = if fraction > 0.9 {
        Color32::from_rgb(200, 60, 50)
    } else if fraction > 0.75 {
        Color32::from_rgb(210, 150, 40)
    } else {
        Color32::from_rgb(60, 130, 200)
    };
    filled_bar(ui, fraction, text, width, fill)
}

/// A quality bar (load-balancing efficiency) where full is good: green, amber below
/// 60 %, red below 30 %.
pub fn quality_bar(ui: &mut Ui, fraction: f32, text: &str, width: f32) -> Response {
    let fill = if fraction < 0.3 {
        Color32::from_rgb(200, 60, 50)
    } else if fraction < 0.6 {
        Color32::from_rgb(210, 150, 40)
    } else {
        Color32::from_rgb(50, 160, 70)
    };
    filled_bar(ui, fraction, text, width, fill)
}

fn filled_bar(ui: &mut Ui, fraction: f32, text: &str, width: f32, fill: Color32) -> Response {
    ui.add(
        egui::ProgressBar::new(fraction.clamp(0.0, 1.0))
            .desired_width(width)
            .fill(fill)
            .corner_radius(2.0)
            .text(RichText::new(text).color(Color32::WHITE)),
    )
}

/// Names a widget for screen readers (and tests): its role, accessible label and value.
pub fn name(ui: &Ui, response: &Response, role: egui::Role, label: &str, value: &str) {
    // Through widget_info, which also gives the node its place on screen.
    let enabled = response.enabled();
    response.widget_info(|| egui::WidgetInfo::labeled(role, enabled, label));
    let value = value.to_owned();
    ui.ctx()
        .accesskit_node_builder(response.id, move |b| b.set_value(value));
}

/// A ring around `response`'s widget while it has the keyboard focus, thicker and more
/// visible than egui's own focus look, on every window's custom widgets alike.
pub fn focus_ring(ui: &Ui, response: &Response) {
    if response.has_focus() {
        ring(ui.painter(), response.rect);
    }
}

/// The keyboard focus colour: a strong blue, seen on light and dark backgrounds.
pub const FOCUS: Color32 = Color32::from_rgb(20, 110, 230);

/// Paints the focus ring around `rect`.
pub fn ring(painter: &egui::Painter, rect: egui::Rect) {
    painter.rect_stroke(
        rect.expand(2.0),
        3.0,
        egui::Stroke::new(2.5, FOCUS),
        egui::StrokeKind::Outside,
    );
}

/// A named LCD number ([`lcd`]) whose panel screen readers find as `label` with the
/// number as its value (the number itself stays a label of its own).
pub fn named_lcd(ui: &mut Ui, value: &str, digits: usize, label: &str) -> Response {
    let r = lcd(ui, value, digits);
    let panel = ui.interact(r.rect, ui.scope_id().with(("lcd", label)), Sense::hover());
    name(ui, &panel, egui::Role::Meter, label, value);
    r
}

/// A named usage bar ([`bar`]): `label` for screen readers, `value` as its value.
pub fn named_bar(
    ui: &mut Ui,
    fraction: f32,
    text: &str,
    width: f32,
    label: &str,
    value: &str,
) -> Response {
    let r = bar(ui, fraction, text, width);
    name(ui, &r, egui::Role::ProgressIndicator, label, value);
    r
}

/// An LCD-style number: green digits on a dark panel `digits` wide, right-aligned.
pub fn lcd(ui: &mut Ui, value: &str, digits: usize) -> Response {
    let pad = " ".repeat(digits.saturating_sub(value.chars().count()));
    egui::Frame::new()
        .fill(Color32::from_rgb(16, 28, 16))
        .inner_margin(egui::Margin::symmetric(4, 1))
        .corner_radius(2.0)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing.x = 0.0;
                // The padding is its own label so the number's label is just the number.
                ui.label(RichText::new(pad).monospace().size(15.0));
                ui.label(
                    RichText::new(value)
                        .monospace()
                        .size(15.0)
                        .color(Color32::from_rgb(90, 255, 110)),
                )
            })
            .inner
        })
        .inner
}

/// Green: something went through.
pub const SAID_OK: Color32 = Color32::from_rgb(40, 160, 60);
/// Red: something failed.
pub const SAID_ERROR: Color32 = Color32::from_rgb(210, 50, 40);

/// Result sentences, each green when it went through and red when it failed.
pub fn result_lines<'a>(ui: &mut Ui, lines: impl IntoIterator<Item = &'a (bool, String)>) {
    for (ok, line) in lines {
        let color = if *ok { SAID_OK } else { SAID_ERROR };
        ui.label(RichText::new(line).color(color));
    }
}

/// A spinner with `text` beside it: something is under way.
pub fn busy(ui: &mut Ui, text: impl Into<egui::WidgetText>) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.label(text);
    });
}

/// `label` and a one-line text field `width` wide showing `hint` while empty; the field
/// is named by the label (for screen readers and tests). The field's response.
pub fn labelled_text(
    ui: &mut Ui,
    label: &str,
    text: &mut String,
    hint: &str,
    width: f32,
) -> Response {
    let label = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(text)
            .hint_text(hint)
            .desired_width(width),
    )
    .labelled_by(label.id)
}

/// Shows `window` with a close button and `contents` inside; returns false once the
/// button was clicked. (The caller's own open flag cannot be lent to the window while the
/// contents borrow the caller.)
pub fn closable(
    ctx: &egui::Context,
    window: egui::Window<'_>,
    contents: impl FnOnce(&mut Ui),
) -> bool {
    let mut open = true;
    window.open(&mut open).show(ctx, contents);
    open
}
