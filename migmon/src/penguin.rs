//! The penguin: the project's own drawing, painted with egui shapes (feet, body, flippers,
//! head, belly, face, eyes and beak) so that it scales with the node it stands for.

use egui::{Color32, Painter, Pos2, Shape, Stroke, Vec2, pos2, vec2};

/// How a penguin looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// The node answers (else the penguin is greyed out).
    pub alive: bool,
    /// Something is being dragged over it: it glows.
    pub highlight: bool,
}

struct Colors {
    body: Color32,
    belly: Color32,
    beak: Color32,
    feet: Color32,
}

fn colors(alive: bool) -> Colors {
    if alive {
        Colors {
            body: Color32::from_rgb(22, 22, 28),
            belly: Color32::from_rgb(250, 250, 244),
            beak: Color32::from_rgb(250, 186, 30),
            feet: Color32::from_rgb(236, 150, 20),
        }
    } else {
        Colors {
            body: Color32::from_gray(120),
            belly: Color32::from_gray(214),
            beak: Color32::from_rgb(180, 165, 130),
            feet: Color32::from_rgb(170, 150, 120),
        }
    }
}

/// Where the drawing goes: the painter, and the penguin's 78 × 100 grid (centred on it)
/// scaled to its size.
struct Grid<'a> {
    painter: &'a Painter,
    center: Pos2,
    /// Points per grid unit.
    u: f32,
}

impl Grid<'_> {
    /// The point at grid coordinates (`x`, `y`).
    fn at(&self, x: f32, y: f32) -> Pos2 {
        self.center + vec2(x * self.u, y * self.u)
    }

    /// A size (or offset) of `x` × `y` grid units.
    fn r(&self, x: f32, y: f32) -> Vec2 {
        Vec2::new(x * self.u, y * self.u)
    }

    /// A filled ellipse as a polygon of as few points as its size on the screen needs
    /// (no point further than about a third of a pixel from the true curve): egui's own
    /// ellipse has at least 32, and a hundred small penguins made of them cost a
    /// software renderer (llvmpipe under Xvfb) several % of a core (docs/benchmarks.md).
    fn ellipse(&self, x: f32, y: f32, rx: f32, ry: f32, color: Color32) {
        let (center, r) = (self.at(x, y), self.r(rx, ry));
        let pixels = r.max_elem() * self.painter.ctx().pixels_per_point();
        let n = ellipse_points(pixels);
        let points = (0..n)
            .map(|k| {
                let t = std::f32::consts::TAU * k as f32 / n as f32;
                center + vec2(r.x * t.cos(), r.y * t.sin())
            })
            .collect();
        self.painter
            .add(Shape::convex_polygon(points, color, Stroke::NONE));
    }
}

/// How many points an ellipse of `radius` pixels needs so that no chord is more than a
/// third of a pixel inside the curve: 8 for the smallest, 64 at most.
fn ellipse_points(radius: f32) -> usize {
    if radius <= 1.0 {
        return 8;
    }
    let step = (1.0 - (0.33 / radius).min(1.0)).acos();
    ((std::f32::consts::PI / step).ceil() as usize).clamp(8, 64)
}

/// Paints a penguin `height` points tall centred on `center`.
pub fn paint(painter: &Painter, center: Pos2, height: f32, look: Look) {
    let grid = Grid {
        painter,
        center,
        u: height / 100.0,
    };
    let c = colors(look.alive);
    if look.highlight {
        painter.circle_filled(
            center,
            height * 0.62,
            Color32::from_rgba_unmultiplied(255, 220, 60, 90),
        );
        painter.circle_stroke(
            center,
            height * 0.62,
            Stroke::new(2.0, Color32::from_rgb(230, 170, 20)),
        );
    }
    body(&grid, &c);
    face(&grid, &c);
    if !look.alive {
        // A node that does not answer: a red cross on its belly.
        let s = Stroke::new((3.0 * grid.u).max(1.5), Color32::from_rgb(210, 40, 40));
        painter.line_segment([grid.at(-11.0, 6.0), grid.at(11.0, 28.0)], s);
        painter.line_segment([grid.at(11.0, 6.0), grid.at(-11.0, 28.0)], s);
    }
}

/// The shadow, feet, flippers, body, head and belly.
fn body(grid: &Grid<'_>, c: &Colors) {
    // Shadow on the ground.
    grid.ellipse(0.0, 48.0, 34.0, 5.0, Color32::from_black_alpha(40));
    for side in [-1.0, 1.0] {
        grid.ellipse(side * 15.0, 45.0, 14.0, 5.5, c.feet);
    }
    // Flippers, hanging out from the body.
    for side in [-1.0_f32, 1.0] {
        let pts = [
            grid.at(side * 24.0, -6.0),
            grid.at(side * 36.0, 14.0),
            grid.at(side * 39.0, 30.0),
            grid.at(side * 33.0, 31.0),
            grid.at(side * 22.0, 18.0),
        ];
        let mut pts = pts.to_vec();
        if side > 0.0 {
            pts.reverse();
        }
        grid.painter
            .add(Shape::convex_polygon(pts, c.body, Stroke::NONE));
    }
    grid.ellipse(0.0, 12.0, 30.0, 36.0, c.body);
    grid.painter
        .circle_filled(grid.at(0.0, -27.0), 21.0 * grid.u, c.body);
    grid.ellipse(0.0, 17.0, 21.0, 28.0, c.belly);
}

/// The white patches around the eyes, the eyes and the beak.
fn face(grid: &Grid<'_>, c: &Colors) {
    for side in [-1.0, 1.0] {
        grid.ellipse(side * 7.5, -29.0, 7.5, 10.0, c.belly);
    }
    // Eyes: pupils looking slightly inwards, with a glint.
    for side in [-1.0, 1.0] {
        let eye = grid.at(side * 6.5, -30.0);
        grid.painter.circle_filled(eye, 3.6 * grid.u, c.body);
        grid.painter
            .circle_filled(eye + grid.r(-1.0, -1.2), 1.2 * grid.u, Color32::WHITE);
    }
    // Beak: upper and lower halves.
    grid.painter.add(Shape::convex_polygon(
        vec![
            grid.at(-10.0, -20.0),
            grid.at(0.0, -24.0),
            grid.at(10.0, -20.0),
            grid.at(0.0, -15.0),
        ],
        c.beak,
        Stroke::NONE,
    ));
    grid.painter.add(Shape::convex_polygon(
        vec![
            grid.at(-8.0, -19.0),
            grid.at(8.0, -19.0),
            grid.at(0.0, -12.0),
        ],
        c.feet,
        Stroke::NONE,
    ));
}

/// The small padlock drawn on a process that cannot move, its body centred on `center`.
pub fn padlock(painter: &Painter, center: Pos2, size: f32) {
    let gold = Color32::from_rgb(214, 160, 20);
    let body = egui::Rect::from_center_size(center, vec2(size, size * 0.75));
    painter.circle_stroke(
        pos2(center.x, body.top()),
        size * 0.3,
        Stroke::new((size * 0.16).max(1.0), Color32::from_rgb(90, 70, 20)),
    );
    painter.rect_filled(body, 1.0, gold);
    painter.rect_stroke(
        body,
        1.0,
        Stroke::new(1.0, Color32::from_rgb(90, 70, 20)),
        egui::StrokeKind::Inside,
    );
}

#[cfg(test)]
mod tests {
    use super::ellipse_points;

    #[test]
    fn small_ellipses_take_few_points_and_large_ones_enough() {
        assert_eq!(ellipse_points(0.5), 8);
        assert_eq!(ellipse_points(3.0), 8);
        assert!((10..=20).contains(&ellipse_points(15.0)));
        assert_eq!(ellipse_points(10_000.0), 64);
        // No chord strays more than a third of a pixel from the curve.
        for r in [2.0_f32, 5.0, 20.0, 60.0, 150.0] {
            let n = ellipse_points(r) as f32;
            let sagitta = r * (1.0 - (std::f32::consts::PI / n).cos());
            assert!(sagitta <= 0.34 || n >= 64.0, "radius {r}: {sagitta}");
        }
    }
}
