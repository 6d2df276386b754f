//! The drawing of the monitor: penguins, lines, process squares with their tooltips,
//! progress rings and padlocks, the keyboard focus ring, the names screen readers read,
//! and the mouse: a square carried and where it is dropped.

use std::collections::BTreeMap;

use egui::{Color32, Pos2, Rect, Sense, Stroke, Ui, pos2, vec2};
use openmosix_client::LinkState;
use openmosix_gui::widgets;
use openmosix_hpc::model::NodeId;

use crate::circles::{Circle, Square, fraction};
use crate::crowd;
use crate::layout::{self, NodePlace, SQUARE};
use crate::monitor::{BALANCED, Command, GLIDE_SECS, GUEST, Glide, LOCAL, MIGRATED, MigMon, Seen};
use crate::penguin;

impl MigMon {
    /// Draws penguins, lines and squares; returns what the mouse asked for.
    pub(crate) fn canvas(
        &mut self,
        ui: &mut Ui,
        rect: Rect,
        circles: &BTreeMap<NodeId, Circle>,
    ) -> Vec<Command> {
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 6.0, Color32::from_rgb(226, 234, 242));
        legend(&painter, rect);
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        if ids.is_empty() {
            ui.put(
                Rect::from_center_size(rect.center(), vec2(240.0, 20.0)),
                egui::Label::new("no nodes yet"),
            );
            return Vec::new();
        }
        let arrangement = layout::arrange(rect, &ids, self.main);
        let places = arrangement.places;
        if arrangement.unplaced > 0 {
            painter.text(
                rect.right_bottom() + vec2(-8.0, -6.0),
                egui::Align2::RIGHT_BOTTOM,
                format!(
                    "{} nodes do not fit: enlarge the window (their numbers still work as keys)",
                    arrangement.unplaced
                ),
                egui::FontId::proportional(12.0),
                Color32::from_rgb(130, 20, 20),
            );
        }
        let pointer = ui.input(|i| i.pointer.latest_pos());
        if self.dragging.is_some()
            && let Some(p) = pointer
        {
            self.drag_pos = Some(p);
        }
        let drawn = self.square_positions(&places, circles);
        // Lines from the main penguin to its migrated processes.
        if let Some(mp) = places.iter().find(|p| p.main) {
            for (_, pos, green) in &drawn {
                if *green {
                    painter.line_segment(
                        [mp.center, *pos],
                        Stroke::new(1.5, Color32::from_rgba_unmultiplied(40, 150, 60, 150)),
                    );
                }
            }
        }
        // Every penguin first, then their names: the penguins share a texture and the
        // names another, and egui starts a new mesh (a draw call) at every change of texture.
        for place in &places {
            self.paint_penguin(&painter, place, pointer);
        }
        for place in &places {
            self.penguin(ui, &painter, place, circles.get(&place.id));
        }
        let mut commands = Vec::new();
        let mut focused = None;
        for (sq, pos, green) in &drawn {
            let (command, focus) = self.square(ui, &painter, sq, *pos, *green);
            commands.extend(command);
            if focus {
                focused = Some(sq);
            }
        }
        self.keep_focus(focused.map(|s| s.key), &drawn);
        commands.extend(self.keys(ui, focused, &ids));
        self.draw_carried(ui);
        commands.extend(self.drop(ui, &places));
        self.draw_notice(ui, &drawn, &places);
        commands
    }

    /// Every shown square with where it is drawn this frame (gliding when it changed
    /// penguin) and whether it is green.
    fn square_positions(
        &mut self,
        places: &[NodePlace],
        circles: &BTreeMap<NodeId, Circle>,
    ) -> Vec<(Square, Pos2, bool)> {
        let time = self.time;
        let mut drawn = Vec::new();
        for place in places {
            let Some(circle) = circles.get(&place.id) else {
                continue;
            };
            let targets = layout::square_places(place, circle.shown.len());
            for (sq, target) in circle.shown.iter().zip(targets) {
                let pos = self.glide(sq, target, time);
                drawn.push((sq.clone(), pos, sq.green(self.main)));
            }
        }
        self.seen.retain(|_, s| time - s.time < 3.0);
        drawn
    }

    /// Remembers the square that has the focus; egui drops the focus of a widget that
    /// is not drawn for a frame, which a moving process's square is not while its lists
    /// catch up, so the square takes the focus back when it is drawn again.
    fn keep_focus(&mut self, focused: Option<crate::circles::Key>, drawn: &[(Square, Pos2, bool)]) {
        if focused.is_some() {
            self.focus = crate::monitor::KeptFocus {
                key: focused,
                lost: false,
            };
        } else if let Some(key) = self.focus.key
            && !drawn.iter().any(|(s, _, _)| s.key == key)
        {
            self.focus.lost = true;
        }
    }

    /// The square being carried, on top of everything.
    fn draw_carried(&self, ui: &Ui) {
        let (Some(sq), Some(p)) = (&self.dragging, self.drag_pos) else {
            return;
        };
        let top = ui.ctx().layer_painter(egui::LayerId::new(
            egui::Order::Tooltip,
            ui.scope_id().with("migmon-carried"),
        ));
        let r = Rect::from_center_size(p, egui::Vec2::splat(SQUARE + 3.0));
        top.rect_filled(r, 2.0, fill(sq, self.main));
        top.rect_stroke(
            r,
            2.0,
            Stroke::new(1.5, Color32::from_rgb(250, 200, 40)),
            egui::StrokeKind::Outside,
        );
    }

    /// Ends a carry when the mouse lets go: a drop on the penguin under the pointer, if any.
    fn drop(&mut self, ui: &Ui, places: &[NodePlace]) -> Option<Command> {
        let released = ui.input(|i| i.pointer.any_released());
        if !released && ui.input(|i| i.pointer.any_down()) {
            return None;
        }
        let mut command = None;
        if released
            && let (Some(square), Some(p)) = (self.dragging.take(), self.drag_pos)
            && let Some(onto) = places.iter().find(|pl| drop_rect(pl).contains(p))
        {
            command = Some(Command::Drop {
                square,
                onto: onto.id,
            });
        }
        self.dragging = None;
        self.drag_pos = None;
        command
    }

    /// Where square `sq` is drawn this frame, given its place `target`.
    fn glide(&mut self, sq: &Square, target: Pos2, time: f64) -> Pos2 {
        if let Some(seen) = self.seen.get(&sq.key)
            && seen.at != sq.at
        {
            self.glides.insert(
                sq.key,
                Glide {
                    from: seen.pos,
                    start: time,
                },
            );
        }
        let pos = match self.glides.get(&sq.key) {
            Some(g) if time - g.start < GLIDE_SECS => {
                let t = ((time - g.start) / GLIDE_SECS) as f32;
                g.from.lerp(target, layout::ease(t))
            }
            _ => {
                self.glides.remove(&sq.key);
                target
            }
        };
        self.seen.insert(
            sq.key,
            Seen {
                at: sq.at,
                pos,
                time,
            },
        );
        pos
    }

    /// The penguin of `place`, glowing when it is the target or a square is carried over it.
    fn paint_penguin(&self, painter: &egui::Painter, place: &NodePlace, pointer: Option<Pos2>) {
        let alive = self
            .nodes
            .iter()
            .any(|n| n.id == place.id && n.state == LinkState::Up);
        let highlight = self.target == Some(place.id)
            || self.dragging.is_some() && pointer.is_some_and(|p| drop_rect(place).contains(p));
        penguin::paint(
            painter,
            place.center,
            place.size,
            penguin::Look { alive, highlight },
        );
    }

    /// The target ring, the name and address below the penguin, and what the pointer and
    /// screen readers get of it.
    fn penguin(
        &self,
        ui: &Ui,
        painter: &egui::Painter,
        place: &NodePlace,
        circle: Option<&Circle>,
    ) {
        let view = self.nodes.iter().find(|n| n.id == place.id);
        let target = self.target == Some(place.id);
        if target {
            // The keys' target: the focus colour, so that it reads as the keyboard's choice.
            let r = place.size * 0.62 + 3.0;
            painter.circle_stroke(place.center, r, Stroke::new(3.0, widgets::FOCUS));
        }
        let count = circle.map_or(0, |c| c.shown.len());
        let title = format!("node {}", place.id);
        if place.compact {
            number_under(painter, place);
        } else {
            name_under(painter, place, circle, &title, view);
        }
        let resp = ui.interact(
            place.rect(),
            ui.scope_id().with(("migmon-penguin", place.id)),
            Sense::hover(),
        );
        let state = view.map_or("unknown", |n| match n.state {
            LinkState::Up => "up",
            LinkState::Connecting => "connecting",
            LinkState::Down => "down",
        });
        let mut value = format!("{state}, {count} processes shown");
        if place.main {
            value.push_str(", the watched node");
        }
        if target {
            value.push_str(", target");
        }
        let label = format!("{title} penguin");
        widgets::name(ui, &resp, egui::Role::Image, &label, &value);
        let mut tip = format!(
            "{title} ({}): {state}",
            view.map(|n| n.address.as_str()).unwrap_or("?")
        );
        if place.main {
            tip.push_str("\nthe watched node");
        }
        if let Some(more) = circle.map(|c| c.more).filter(|m| *m > 0) {
            tip.push_str(&format!("\n{more} more processes than squares shown"));
        }
        if let Some(e) = self.errors.get(&place.id) {
            tip.push_str(&format!("\nprocess list: {e}"));
        }
        resp.on_hover_text(tip);
    }

    /// One square; what the mouse asked of it, and whether it has the keyboard focus.
    fn square(
        &mut self,
        ui: &Ui,
        painter: &egui::Painter,
        sq: &Square,
        pos: Pos2,
        green: bool,
    ) -> (Option<Command>, bool) {
        let rect = Rect::from_center_size(pos, egui::Vec2::splat(SQUARE));
        let id = ui.scope_id().with(("migmon-square", sq.key));
        let resp = ui.interact(rect, id, Sense::click_and_drag());
        let moving = self.moves.values().find(|m| m.key == sq.key);
        let value = sq.value(green, moving.map(|m| m.progress.as_ref()));
        widgets::name(ui, &resp, egui::Role::Button, &sq.label(), &value);
        let carried = self.dragging.as_ref().is_some_and(|d| d.key == sq.key);
        let color = fill(sq, self.main);
        let color = if carried {
            color.gamma_multiply(0.3)
        } else {
            color
        };
        painter.rect_filled(rect, 1.5, color);
        if resp.hovered() && !carried {
            painter.rect_stroke(
                rect,
                1.5,
                Stroke::new(1.5, Color32::from_rgb(250, 200, 40)),
                egui::StrokeKind::Outside,
            );
        }
        if sq.reason.is_some() {
            penguin::padlock(painter, rect.right_top() + vec2(0.0, -1.0), 8.0);
        }
        if sq.auto_moved {
            // An amber dot in the lower left corner: the balancer put it here.
            painter.circle(
                rect.left_bottom(),
                3.2,
                BALANCED,
                Stroke::new(1.0, Color32::WHITE),
            );
        }
        if let Some(m) = moving {
            progress_ring(painter, pos, fraction(m.progress.as_ref()));
        }
        if self.focus.lost && self.focus.key == Some(sq.key) && ui.memory(|m| m.focused().is_none())
        {
            // Back after a moment without a square (its lists between two nodes).
            resp.request_focus();
            self.focus.lost = false;
        }
        let focus = resp.has_focus();
        if focus {
            widgets::ring(painter, rect.expand(1.5));
        }
        let mut command = None;
        if (resp.drag_started() || resp.dragged()) && self.dragging.is_none() {
            self.dragging = Some(sq.clone());
            self.drag_pos = resp.interact_pointer_pos();
        }
        if resp.double_clicked() && green {
            command = Some(Command::Home { square: sq.clone() });
        }
        resp.on_hover_text(sq.tip(green));
        (command, focus)
    }

    /// The reason a dropped process stayed, in a small box beside its square, on the side
    /// away from its penguin.
    fn draw_notice(&mut self, ui: &Ui, drawn: &[(Square, Pos2, bool)], places: &[NodePlace]) {
        let Some(n) = &self.notice else {
            return;
        };
        let Some((sq, pos, _)) = drawn.iter().find(|(s, _, _)| s.key == n.key) else {
            return;
        };
        if self.time - n.since > 10.0 {
            self.notice = None;
            return;
        }
        let left = places
            .iter()
            .find(|p| p.id == sq.at)
            .is_some_and(|p| pos.x < p.center.x);
        let (pivot, at) = if left {
            (egui::Align2::RIGHT_BOTTOM, *pos + vec2(-6.0, -6.0))
        } else {
            (egui::Align2::LEFT_BOTTOM, *pos + vec2(6.0, -6.0))
        };
        let text = egui::RichText::new(&n.text).color(Color32::from_rgb(130, 20, 20));
        egui::Area::new(ui.scope_id().with("migmon-notice"))
            .order(egui::Order::Foreground)
            .fixed_pos(at)
            .pivot(pivot)
            .interactable(false)
            .show(ui.ctx(), |ui| {
                egui::Frame::new()
                    .fill(Color32::from_rgb(255, 244, 214))
                    .stroke(Stroke::new(1.0, Color32::from_rgb(214, 160, 20)))
                    .corner_radius(3.0)
                    .inner_margin(egui::Margin::symmetric(5, 2))
                    .show(ui, |ui| {
                        ui.add(egui::Label::new(text).selectable(false).extend());
                    });
            });
    }
}

/// The name and address below a penguin on the big circle (below its process circle),
/// and how many processes its circle leaves out.
fn name_under(
    painter: &egui::Painter,
    place: &NodePlace,
    circle: Option<&Circle>,
    title: &str,
    view: Option<&openmosix_client::NodeView>,
) {
    let count = circle.map_or(0, |c| c.shown.len());
    let below = layout::more_text_place(place, count);
    let font = if place.main { 15.0 } else { 13.0 };
    painter.text(
        below,
        egui::Align2::CENTER_TOP,
        title,
        egui::FontId::proportional(font),
        Color32::from_gray(20),
    );
    let mut line2 = view.map(|n| n.address.clone()).unwrap_or_default();
    if let Some(more) = circle.map(|c| c.more).filter(|m| *m > 0) {
        line2 = format!("{line2}  +{more} more");
    }
    painter.text(
        below + vec2(0.0, font + 3.0),
        egui::Align2::CENTER_TOP,
        line2,
        egui::FontId::proportional(11.0),
        Color32::from_gray(70),
    );
}

/// A crowd penguin's number, right under it (when its cell has room for one).
fn number_under(painter: &egui::Painter, place: &NodePlace) {
    if !crowd::numbered(place.size) {
        return;
    }
    painter.text(
        pos2(place.center.x, place.rect().bottom()),
        egui::Align2::CENTER_TOP,
        place.id.to_string(),
        egui::FontId::proportional(10.5),
        Color32::from_gray(20),
    );
}

/// The area of a penguin that takes drops: the penguin and a little around it (a crowd
/// penguin's neighbours are closer, so less).
fn drop_rect(place: &NodePlace) -> Rect {
    place.rect().expand(if place.compact { 2.0 } else { 8.0 })
}

fn fill(sq: &Square, main: NodeId) -> Color32 {
    if sq.green(main) {
        MIGRATED
    } else if sq.home != main {
        GUEST
    } else {
        LOCAL
    }
}

/// An arc around a moving square, filled to `fraction`.
fn progress_ring(painter: &egui::Painter, center: Pos2, fraction: f32) {
    let r = SQUARE * 0.95;
    painter.circle_stroke(center, r, Stroke::new(2.5, Color32::from_white_alpha(160)));
    let steps = 32;
    let points: Vec<Pos2> = (0..=steps)
        .map(|i| {
            let a = -std::f32::consts::FRAC_PI_2
                + std::f32::consts::TAU * fraction * i as f32 / steps as f32;
            center + r * vec2(a.cos(), a.sin())
        })
        .collect();
    painter.add(egui::Shape::line(
        points,
        Stroke::new(2.5, Color32::from_rgb(240, 140, 20)),
    ));
}

/// What the colours, the padlock and the amber dot mean, in the canvas's top-left corner.
fn legend(painter: &egui::Painter, rect: Rect) {
    let entries = [
        (Some(LOCAL), "process of the watched node"),
        (Some(MIGRATED), "migrated away from it"),
        (Some(GUEST), "guest from another node"),
        (None, "cannot move"),
        (Some(BALANCED), "moved by the load balancer"),
    ];
    for (i, (color, text)) in entries.into_iter().enumerate() {
        let y = rect.top() + 14.0 + 17.0 * i as f32;
        let c = egui::pos2(rect.left() + 16.0, y);
        match color {
            Some(BALANCED) => {
                painter.circle(c, 3.2, BALANCED, Stroke::new(1.0, Color32::WHITE));
            }
            Some(color) => {
                painter.rect_filled(
                    Rect::from_center_size(c, egui::Vec2::splat(SQUARE)),
                    1.5,
                    color,
                );
            }
            None => penguin::padlock(painter, c, 8.0),
        }
        painter.text(
            c + vec2(12.0, 0.0),
            egui::Align2::LEFT_CENTER,
            text,
            egui::FontId::proportional(12.0),
            Color32::from_gray(40),
        );
    }
}
