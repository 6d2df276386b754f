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

/// Paints a penguin `height` points tall centred on `center`.
pub fn paint(painter: &Painter, center: Pos2, height: f32, look: Look) {
    // The drawing is made on a 78 × 100 grid centred on the penguin.
    let u = height / 100.0;
    let at = |x: f32, y: f32| center + vec2(x * u, y * u);
    let r = |x: f32, y: f32| Vec2::new(x * u, y * u);
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
    // Shadow on the ground.
    painter.add(Shape::ellipse_filled(
        at(0.0, 48.0),
        r(34.0, 5.0),
        Color32::from_black_alpha(40),
    ));
    // Feet.
    for side in [-1.0, 1.0] {
        painter.add(Shape::ellipse_filled(
            at(side * 15.0, 45.0),
            r(14.0, 5.5),
            c.feet,
        ));
    }
    // Flippers, hanging out from the body.
    for side in [-1.0_f32, 1.0] {
        let pts = [
            at(side * 24.0, -6.0),
            at(side * 36.0, 14.0),
            at(side * 39.0, 30.0),
            at(side * 33.0, 31.0),
            at(side * 22.0, 18.0),
        ];
        let mut pts = pts.to_vec();
        if side > 0.0 {
            pts.reverse();
        }
        painter.add(Shape::convex_polygon(pts, c.body, Stroke::NONE));
    }
    // Body and head.
    painter.add(Shape::ellipse_filled(at(0.0, 12.0), r(30.0, 36.0), c.body));
    painter.circle_filled(at(0.0, -27.0), 21.0 * u, c.body);
    // Belly.
    painter.add(Shape::ellipse_filled(at(0.0, 17.0), r(21.0, 28.0), c.belly));
    // Face: two white patches around the eyes.
    for side in [-1.0, 1.0] {
        painter.add(Shape::ellipse_filled(
            at(side * 7.5, -29.0),
            r(7.5, 10.0),
            c.belly,
        ));
    }
    // Eyes: pupils looking slightly inwards, with a glint.
    for side in [-1.0, 1.0] {
        let eye = at(side * 6.5, -30.0);
        painter.circle_filled(eye, 3.6 * u, c.body);
        painter.circle_filled(eye + r(-1.0, -1.2), 1.2 * u, Color32::WHITE);
    }
    // Beak: upper and lower halves.
    painter.add(Shape::convex_polygon(
        vec![
            at(-10.0, -20.0),
            at(0.0, -24.0),
            at(10.0, -20.0),
            at(0.0, -15.0),
        ],
        c.beak,
        Stroke::NONE,
    ));
    painter.add(Shape::convex_polygon(
        vec![at(-8.0, -19.0), at(8.0, -19.0), at(0.0, -12.0)],
        c.feet,
        Stroke::NONE,
    ));
    if !look.alive {
        // A node that does not answer: a red cross on its belly.
        let s = Stroke::new((3.0 * u).max(1.5), Color32::from_rgb(210, 40, 40));
        painter.line_segment([at(-11.0, 6.0), at(11.0, 28.0)], s);
        painter.line_segment([at(11.0, 6.0), at(-11.0, 28.0)], s);
    }
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
