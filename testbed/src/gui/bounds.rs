//! Layout bounds read from the AccessKit tree egui writes: every named widget lies inside
//! the window, and no two of them cover each other (HiDPI, issue #18). The same checks
//! run at any `pixels_per_point`; the bounds are in points.

use egui::accesskit::{Action, Role};
use egui::{Pos2, Rect, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::NodeT as _;

/// Overlaps thinner than this (points) are rounding, not covering.
const SLACK: f32 = 0.5;

/// One named widget on screen.
#[derive(Debug, Clone)]
pub struct Placed {
    /// What a screen reader says.
    pub label: String,
    /// Its role.
    pub role: Role,
    /// Where it is (points).
    pub rect: Rect,
    /// Whether it takes clicks or the keyboard.
    pub interactive: bool,
    /// Its id and its ancestors' (to skip parent/child pairs).
    path: Vec<u64>,
    /// The floating window, menu or popup it is (or is in; none: the window's panels).
    layer: Option<u64>,
}

impl Placed {
    fn contains_node(&self, other: &Placed) -> bool {
        other.path.len() > self.path.len() && other.path.starts_with(&self.path)
    }

    /// A widget and what it contains, or one widget told twice: a named panel over its
    /// number (the same rect), a combo box inside its labelled line (the same name).
    fn related(&self, other: &Placed) -> bool {
        let same_rect = (self.rect.min - other.rect.min).length() < SLACK
            && (self.rect.max - other.rect.max).length() < SLACK;
        let grown = self.rect.expand(SLACK);
        let other_grown = other.rect.expand(SLACK);
        let same_name = self.label == other.label
            && (grown.contains_rect(other.rect) || other_grown.contains_rect(self.rect));
        same_rect || same_name || self.contains_node(other) || other.contains_node(self)
    }
}

fn is_layer(role: Role) -> bool {
    matches!(
        role,
        Role::Window | Role::Dialog | Role::Menu | Role::Tooltip | Role::ListBox
    )
}

/// Every named widget with bounds, in tree order.
pub fn placed<S>(h: &Harness<'_, S>) -> Vec<Placed> {
    let mut out = Vec::new();
    for node in h.root().children_recursive() {
        let ak = node.accesskit_node();
        // Text runs are a label's own parts; a window's resize grips straddle its edge
        // and corners by design.
        if ak.is_hidden() || matches!(ak.role(), Role::TextRun | Role::Splitter) {
            continue;
        }
        let Some(b) = ak.raw_bounds() else {
            continue;
        };
        let label = ak.label().or_else(|| ak.value()).unwrap_or_default();
        if label.trim().is_empty() {
            continue;
        }
        let mut path = Vec::new();
        let mut layer = None;
        let mut at = Some(ak);
        while let Some(n) = at {
            let id = n.id();
            let id = hash(&id);
            if layer.is_none() && is_layer(n.role()) {
                layer = Some(id);
            }
            path.push(id);
            at = n.parent();
        }
        path.reverse();
        let rect = Rect::from_min_max(
            Pos2::new(b.x0 as f32, b.y0 as f32),
            Pos2::new(b.x1 as f32, b.y1 as f32),
        );
        if rect.width() <= 0.0 || rect.height() <= 0.0 {
            continue;
        }
        out.push(Placed {
            label,
            role: ak.role(),
            rect,
            interactive: ak.data().supports_action(Action::Click)
                || ak.data().supports_action(Action::Focus),
            path,
            layer,
        });
    }
    out
}

fn hash<T: std::hash::Hash>(t: &T) -> u64 {
    use std::hash::Hasher as _;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// What is wrong with the layout of `h`'s window (empty: nothing): named widgets
/// outside the window (`screen`, points), and pairs of named widgets — labels, buttons,
/// fields — that cover each other, other than a widget and what it contains, one widget
/// under two names, and things in different floating windows or menus.
pub fn layout_problems(widgets: &[Placed], screen: Rect) -> Vec<String> {
    let mut problems = Vec::new();
    let inside = screen.expand(SLACK);
    for w in widgets {
        if !inside.contains_rect(w.rect) {
            problems.push(format!(
                "{:?} {:?} at {:?} is not inside the window {:?}",
                w.role, w.label, w.rect, screen
            ));
        }
    }
    for (i, a) in widgets.iter().enumerate() {
        for b in &widgets[i + 1..] {
            if a.layer != b.layer || a.related(b) {
                continue;
            }
            let both = a.rect.intersect(b.rect);
            if both.width() > SLACK && both.height() > SLACK {
                problems.push(format!(
                    "{:?} {:?} at {:?} and {:?} {:?} at {:?} overlap",
                    a.role, a.label, a.rect, b.role, b.label, b.rect
                ));
            }
        }
    }
    problems
}

/// Fails, listing every problem, unless the window of `h` (size `size` in points, at
/// the harness's scale) is laid out cleanly: see [`layout_problems`]. Needs at least
/// `min_widgets` named widgets, so that an empty window does not pass.
/// With `OPENMOSIX_LAYOUT_DUMP` set, it prints every widget it checks.
pub fn assert_layout_fits<S>(h: &Harness<'_, S>, size: Vec2, min_widgets: usize) {
    let widgets = placed(h);
    if std::env::var_os("OPENMOSIX_LAYOUT_DUMP").is_some() {
        for w in &widgets {
            println!("{:?} {:?} {:?}", w.role, w.label, w.rect);
        }
    }
    assert!(
        widgets.len() >= min_widgets,
        "only {} named widgets: {:?}",
        widgets.len(),
        widgets.iter().map(|w| &w.label).collect::<Vec<_>>()
    );
    let problems = layout_problems(&widgets, Rect::from_min_size(Pos2::ZERO, size));
    assert!(
        problems.is_empty(),
        "{} layout problems at {} pixels a point:\n{}",
        problems.len(),
        h.ctx.pixels_per_point(),
        problems.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(label: &str, rect: Rect, path: &[u64]) -> Placed {
        Placed {
            label: label.into(),
            role: Role::Button,
            rect,
            interactive: true,
            path: path.to_vec(),
            layer: None,
        }
    }

    fn r(x: f32, y: f32, wd: f32, ht: f32) -> Rect {
        Rect::from_min_size(Pos2::new(x, y), Vec2::new(wd, ht))
    }

    #[test]
    fn overlapping_siblings_and_widgets_outside_are_found() {
        let screen = r(0.0, 0.0, 100.0, 100.0);
        let ok = [
            w("a", r(0.0, 0.0, 10.0, 10.0), &[1, 2]),
            w("b", r(10.0, 0.0, 10.0, 10.0), &[1, 3]),
        ];
        assert!(layout_problems(&ok, screen).is_empty());
        let over = [
            w("a", r(0.0, 0.0, 10.0, 10.0), &[1, 2]),
            w("b", r(5.0, 5.0, 10.0, 10.0), &[1, 3]),
        ];
        assert_eq!(layout_problems(&over, screen).len(), 1);
        let out = [w("a", r(95.0, 0.0, 10.0, 10.0), &[1, 2])];
        assert_eq!(layout_problems(&out, screen).len(), 1);
        // A widget and what it contains may overlap.
        let nested = [
            w("a", r(0.0, 0.0, 50.0, 50.0), &[1, 2]),
            w("b", r(5.0, 5.0, 10.0, 10.0), &[1, 2, 4]),
        ];
        assert!(layout_problems(&nested, screen).is_empty());
        // One widget told twice; but two widgets of one name side by side do overlap.
        let twice = [
            w("a", r(0.0, 0.0, 50.0, 20.0), &[1, 2]),
            w("a", r(0.0, 0.0, 30.0, 20.0), &[1, 3]),
        ];
        assert!(layout_problems(&twice, screen).is_empty());
        let shifted = [
            w("a", r(0.0, 0.0, 30.0, 20.0), &[1, 2]),
            w("a", r(20.0, 0.0, 30.0, 20.0), &[1, 3]),
        ];
        assert_eq!(layout_problems(&shifted, screen).len(), 1);
    }
}
