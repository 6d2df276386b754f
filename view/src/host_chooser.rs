//! The host choosers of the advanced-execution dialog (HOWTO 10.4.5 and 10.4.6).
//!
//! [`host_dial`] is the dial with its LCD number: drag around the dial, scroll over it,
//! use the arrow keys when it has focus, or click the small "-"/"+" buttons to step
//! through the node ids present. [`parallel_chooser`] is the pair of spin boxes
//! (first and last node) with the "inverse" switch, and [`parallel_targets`] turns
//! them into the nodes a parallel job starts on.

use std::f32::consts::PI;

use egui::accesskit::Action;
use egui::{Color32, Pos2, Response, Sense, Stroke, Ui, Vec2, WidgetInfo};
use openmosix_gui::widgets;
use openmosix_hpc::model::NodeId;

/// The angle the dial sweeps from the first node to the last (like a Qt `QDial`).
const SWEEP: f32 = 270.0;
/// The angle of the first node, counter-clockwise from the positive x axis.
const START: f32 = 225.0;
/// Scrolled points that make one step.
const SCROLL_STEP: f32 = 24.0;

/// The index of `node` in `ids`, or of the nearest id below it (0 if none).
fn index_of(ids: &[NodeId], node: NodeId) -> usize {
    ids.iter().position(|&id| id == node).unwrap_or_else(|| {
        ids.iter()
            .filter(|&&id| id < node)
            .count()
            .saturating_sub(1)
    })
}

/// `node` moved `delta` places through `ids`, stopping at either end.
pub fn step(ids: &[NodeId], node: NodeId, delta: i64) -> NodeId {
    let Some(last) = ids.len().checked_sub(1) else {
        return node;
    };
    let i = i64::try_from(index_of(ids, node))
        .unwrap_or(0)
        .saturating_add(delta);
    let i = usize::try_from(i.max(0)).unwrap_or(0).min(last);
    ids[i]
}

/// Makes `node` one of `ids` (the first if it is not present); leaves it alone when empty.
pub fn snap(ids: &[NodeId], node: &mut NodeId) {
    if !ids.is_empty() && !ids.contains(node) {
        *node = ids[0];
    }
}

/// The dial's angle (degrees, counter-clockwise from +x) for index `i` of `n`.
fn angle_of(i: usize, n: usize) -> f32 {
    if n <= 1 {
        90.0
    } else {
        START - SWEEP * i as f32 / (n - 1) as f32
    }
}

/// The index of `n` nearest to where `pointer` points from `center`.
fn index_at(center: Pos2, pointer: Pos2, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let d = pointer - center;
    let a = (-d.y).atan2(d.x).to_degrees();
    // Degrees past the first node, clockwise, in 0..360.
    let mut t = (START - a).rem_euclid(360.0);
    if t > SWEEP {
        // In the gap at the bottom: the nearer end.
        t = if t < SWEEP + (360.0 - SWEEP) / 2.0 {
            SWEEP
        } else {
            0.0
        };
    }
    let i = (t / SWEEP * (n - 1) as f32).round();
    (i.max(0.0) as usize).min(n - 1)
}

fn direction(angle: f32) -> Vec2 {
    let r = angle * PI / 180.0;
    Vec2::new(r.cos(), -r.sin())
}

/// The dial alone: a painted knob whose pointer shows which of `ids` `node` is.
///
/// Its accessible name is "host chooser" (role slider, value the node id); it takes
/// drags, clicks, the scroll wheel, the arrow keys and accessibility increments.
fn dial(ui: &mut Ui, node: &mut NodeId, ids: &[NodeId]) -> Response {
    let size = 3.0 * ui.spacing().interact_size.y;
    let (rect, mut response) = ui.allocate_exact_size(Vec2::splat(size), Sense::click_and_drag());
    let before = *node;
    if !ids.is_empty() && ui.is_enabled() {
        dial_input(ui, &response, rect.center(), node, ids);
    }
    if *node != before {
        response.mark_changed();
    }
    if ui.is_rect_visible(rect) {
        paint_dial(ui, &response, rect, *node, ids);
    }
    describe_dial(ui, &response, *node, ids);
    response.on_hover_text("drag, scroll or use the arrow keys to choose the node")
}

/// Moves `node` (one of the non-empty `ids`) as the pointer, the wheel, the keys or an
/// accessibility request on the dial of `response` (centred at `center`) ask.
fn dial_input(ui: &mut Ui, response: &Response, center: Pos2, node: &mut NodeId, ids: &[NodeId]) {
    if (response.dragged() || response.clicked())
        && let Some(p) = response.interact_pointer_pos()
        && (p - center).length() > 2.0
    {
        *node = ids[index_at(center, p, ids.len())];
    }
    let mut delta = 0i64;
    if response.hovered() {
        delta += scroll_steps(ui, response.id);
    }
    if response.has_focus() {
        delta += key_steps(ui);
    }
    delta += ui.input(|i| {
        i.num_accesskit_action_requests(response.id, Action::Increment) as i64
            - i.num_accesskit_action_requests(response.id, Action::Decrement) as i64
    });
    if delta != 0 {
        *node = step(ids, *node, delta);
    }
    if let Some(v) = set_value_request(ui, response.id)
        && let Some(&id) = ids
            .iter()
            .min_by_key(|&&id| (f64::from(id) - v).abs() as u64)
    {
        *node = id;
    }
}

/// Whole steps scrolled over the widget `id`; the rest of a step waits for more scrolling.
fn scroll_steps(ui: &mut Ui, id: egui::Id) -> i64 {
    let scrolled = ui.input_mut(|i| {
        let d = i.smooth_scroll_delta.y + i.smooth_scroll_delta.x;
        i.smooth_scroll_delta = Vec2::ZERO;
        d
    });
    let steps = ui.data_mut(|d| {
        let acc = d.get_temp_mut_or_default::<f32>(id);
        *acc += scrolled;
        let steps = (*acc / SCROLL_STEP).trunc();
        *acc -= steps * SCROLL_STEP;
        steps
    });
    steps as i64
}

/// Steps asked with the arrow keys: up and right forward, down and left back.
fn key_steps(ui: &mut Ui) -> i64 {
    ui.input_mut(|i| {
        let up = i.count_and_consume_key(egui::Modifiers::NONE, egui::Key::ArrowUp)
            + i.count_and_consume_key(egui::Modifiers::NONE, egui::Key::ArrowRight);
        let down = i.count_and_consume_key(egui::Modifiers::NONE, egui::Key::ArrowDown)
            + i.count_and_consume_key(egui::Modifiers::NONE, egui::Key::ArrowLeft);
        up as i64 - down as i64
    })
}

/// Paints the knob of `response` into `rect`: a tick per node, the chosen one longer,
/// and the pointer.
fn paint_dial(ui: &Ui, response: &Response, rect: egui::Rect, node: NodeId, ids: &[NodeId]) {
    let center = rect.center();
    let radius = rect.width() * 0.5 - 2.0;
    let n = ids.len();
    let visuals = ui.style().interact(response);
    let painter = ui.painter();
    painter.circle(center, radius, visuals.bg_fill, visuals.bg_stroke);
    let chosen = index_of(ids, node);
    for i in 0..n {
        let dir = direction(angle_of(i, n));
        let inner = if i == chosen { 0.62 } else { 0.78 };
        painter.line_segment(
            [center + dir * radius * inner, center + dir * radius * 0.92],
            Stroke::new(1.0, visuals.fg_stroke.color.gamma_multiply(0.6)),
        );
    }
    if n > 0 {
        let dir = direction(angle_of(chosen, n));
        painter.line_segment(
            [center, center + dir * radius * 0.7],
            Stroke::new(2.5, Color32::from_rgb(220, 60, 40)),
        );
    }
    painter.circle_filled(center, radius * 0.16, visuals.fg_stroke.color);
    if response.has_focus() {
        painter.circle_stroke(center, radius + 1.5, ui.visuals().selection.stroke);
    }
}

/// Tells accessibility what the dial is: a slider named "host chooser" over the ids,
/// and which steps it can take.
fn describe_dial(ui: &Ui, response: &Response, node: NodeId, ids: &[NodeId]) {
    let enabled = ui.is_enabled() && !ids.is_empty();
    let value = f64::from(node);
    response.widget_info(|| WidgetInfo::slider(enabled, value, "host chooser"));
    let (min, max) = (
        ids.first().copied().unwrap_or(0),
        ids.last().copied().unwrap_or(0),
    );
    ui.ctx().accesskit_node_builder(response.id, |b| {
        b.set_min_numeric_value(f64::from(min));
        b.set_max_numeric_value(f64::from(max));
        b.add_action(Action::SetValue);
        if node < max {
            b.add_action(Action::Increment);
        }
        if min < node {
            b.add_action(Action::Decrement);
        }
    });
}

/// The numeric value of the last accessibility "set value" request for `id`, if any.
fn set_value_request(ui: &Ui, id: egui::Id) -> Option<f64> {
    ui.input(|input| {
        input
            .accesskit_action_requests(id, Action::SetValue)
            .filter_map(|r| match r.data {
                Some(egui::accesskit::ActionData::NumericValue(v)) => Some(v),
                _ => None,
            })
            .last()
    })
}

/// The host chooser (HOWTO 10.4.5): a dial over the node ids present in `ids` (in order),
/// an LCD number with the chosen id, and "-"/"+" buttons (accessible names
/// "previous node" and "next node") that step it.
///
/// `node` is first snapped to one of `ids`. With no ids it shows "no nodes" and
/// returns that label. The response is the dial's, marked changed when the node changed.
pub fn host_dial(ui: &mut Ui, node: &mut NodeId, ids: &[NodeId]) -> Response {
    if ids.is_empty() {
        return ui.label("no nodes");
    }
    snap(ids, node);
    let before = *node;
    let inner = ui.horizontal(|ui| {
        let mut response = dial(ui, node, ids);
        ui.vertical(|ui| {
            widgets::named_lcd(ui, &node.to_string(), 3, "host chooser LCD");
            ui.horizontal(|ui| {
                let first = ids.first().is_some_and(|&id| id == *node);
                let last = ids.last().is_some_and(|&id| id == *node);
                if ui
                    .add_enabled(!first, egui::Button::new("-").small())
                    .accessible_name("previous node")
                    .on_hover_text("previous node")
                    .clicked()
                {
                    *node = step(ids, *node, -1);
                }
                if ui
                    .add_enabled(!last, egui::Button::new("+").small())
                    .accessible_name("next node")
                    .on_hover_text("next node")
                    .clicked()
                {
                    *node = step(ids, *node, 1);
                }
            });
        });
        if *node != before {
            response.mark_changed();
        }
        response
    });
    inner.inner
}

/// The parallel host chooser (HOWTO 10.4.6): spin boxes "first node" and "last node"
/// (clamped to the smallest and largest id present) and an "inverse" checkbox.
///
/// With no ids it shows "no nodes". Returns whether anything changed.
pub fn parallel_chooser(
    ui: &mut Ui,
    first: &mut NodeId,
    last: &mut NodeId,
    inverse: &mut bool,
    ids: &[NodeId],
) -> bool {
    let (Some(&min), Some(&max)) = (ids.first(), ids.last()) else {
        ui.label("no nodes");
        return false;
    };
    let mut changed = false;
    ui.horizontal(|ui| {
        for (value, name) in [(&mut *first, "first node"), (&mut *last, "last node")] {
            *value = (*value).clamp(min, max);
            let label = ui.label(name);
            changed |= ui
                .add(egui::DragValue::new(value).range(min..=max).speed(0.1))
                .labelled_by(label.id)
                .changed();
        }
        changed |= ui
            .checkbox(inverse, "inverse")
            .on_hover_text("start on the nodes from last to first")
            .changed();
    });
    changed
}

/// The nodes a parallel job starts on: every id of `ids` in `first..=last`, in order,
/// or from last to first when `inverse`.
pub fn parallel_targets(ids: &[NodeId], first: NodeId, last: NodeId, inverse: bool) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|id| (first..=last).contains(id))
        .collect();
    out.sort_unstable();
    out.dedup();
    if inverse {
        out.reverse();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_stop_at_the_ends() {
        let ids = [1, 2, 5];
        assert_eq!(step(&ids, 1, 1), 2);
        assert_eq!(step(&ids, 2, 1), 5);
        assert_eq!(step(&ids, 5, 1), 5);
        assert_eq!(step(&ids, 1, -1), 1);
        assert_eq!(step(&ids, 5, -7), 1);
        assert_eq!(step(&[], 4, 1), 4);
    }

    #[test]
    fn angles_round_trip() {
        let c = Pos2::new(50.0, 50.0);
        for n in 1..8 {
            for i in 0..n {
                let p = c + direction(angle_of(i, n)) * 20.0;
                assert_eq!(index_at(c, p, n), i, "{i} of {n}");
            }
        }
        // Straight down is in the gap: left half goes to the first, right half to the last.
        assert_eq!(index_at(c, c + Vec2::new(-1.0, 20.0), 4), 0);
        assert_eq!(index_at(c, c + Vec2::new(1.0, 20.0), 4), 3);
    }

    #[test]
    fn parallel_targets_in_range_and_inverse() {
        let ids = [1, 2, 3, 5];
        assert_eq!(parallel_targets(&ids, 2, 5, false), vec![2, 3, 5]);
        assert_eq!(parallel_targets(&ids, 1, 3, true), vec![3, 2, 1]);
        assert!(parallel_targets(&ids, 4, 4, false).is_empty());
    }
}
