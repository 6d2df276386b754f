//! The penguin: the project's own drawing, made of filled shapes (feet, body, flippers,
//! head, belly, face, eyes and beak) so that it scales with the node it stands for; the
//! shapes are filled once into a texture per size (`sprite.rs`) and every frame
//! paints that.

use std::collections::HashMap;

use egui::{
    Color32, ColorImage, Painter, Pos2, Rect, Stroke, TextureHandle, TextureId, TextureOptions,
    Vec2, pos2, vec2,
};

use crate::sprite::{self, Fill};

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

/// The penguin's bounds on its 78 × 100 grid (centred on it), with the shadow below.
const LEFT: f32 = 39.0;
const TOP: f32 = 48.0;
const RIGHT: f32 = 39.0;
const BOTTOM: f32 = 53.0;

/// Where the drawing goes: the shapes of a sprite, in its pixels, from the penguin's grid
/// scaled to its size.
struct Grid {
    /// The penguin's centre in the sprite.
    origin: Pos2,
    /// Pixels per grid unit.
    s: f32,
    fills: Vec<(Fill, Color32)>,
}

impl Grid {
    /// The point at grid coordinates (`x`, `y`).
    fn at(&self, x: f32, y: f32) -> Pos2 {
        self.origin + vec2(x * self.s, y * self.s)
    }

    fn ellipse(&mut self, x: f32, y: f32, rx: f32, ry: f32, color: Color32) {
        let (center, radius) = (self.at(x, y), vec2(rx * self.s, ry * self.s));
        self.fills.push((Fill::Ellipse { center, radius }, color));
    }

    fn circle(&mut self, x: f32, y: f32, r: f32, color: Color32) {
        self.ellipse(x, y, r, r, color);
    }

    fn polygon(&mut self, points: &[(f32, f32)], color: Color32) {
        let points = points.iter().map(|&(x, y)| self.at(x, y)).collect();
        self.fills.push((Fill::Convex(points), color));
    }
}

/// Paints a penguin `height` points tall centred on `center`: the glow when highlighted,
/// then the penguin itself as one textured rectangle (its shapes are filled once per
/// size, colour and pixel density, `sprite.rs`).
pub fn paint(painter: &Painter, center: Pos2, height: f32, look: Look) {
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
    let ppp = painter.ctx().pixels_per_point();
    let sprite = sprite(painter.ctx(), height, look.alive, ppp);
    // On whole pixels, so that the texture is copied, not blurred, onto the screen.
    let min = ((center.to_vec2() * ppp).round() - sprite.origin.to_vec2()) / ppp;
    let rect = Rect::from_min_size(min.to_pos2(), sprite.size / ppp);
    painter.image(
        sprite.texture,
        rect,
        Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
        Color32::WHITE,
    );
}

/// A penguin filled into a texture: its size and where its centre is in it (pixels).
#[derive(Debug, Clone, Copy)]
struct Placed {
    texture: TextureId,
    size: Vec2,
    origin: Pos2,
}

/// The sprites made so far (each with the handle that keeps its texture), by height,
/// liveness and pixel density (bits of the floats); kept in egui's memory, so that they
/// live as long as the window's textures.
type Sprites = HashMap<(u32, bool, u32), (TextureHandle, Placed)>;

/// The penguin of `height` points at `ppp` pixels per point, made on first use.
fn sprite(ctx: &egui::Context, height: f32, alive: bool, ppp: f32) -> Placed {
    let key = (height.to_bits(), alive, ppp.to_bits());
    let id = egui::Id::unique("migmon-penguin-sprites");
    let made = ctx.data_mut(|d| {
        let sprites = d.get_temp_mut_or_default::<Sprites>(id);
        sprites.get(&key).map(|(_, placed)| *placed)
    });
    if let Some(placed) = made {
        return placed;
    }
    let (image, origin) = image(height, alive, ppp);
    let size = vec2(image.size[0] as f32, image.size[1] as f32);
    let handle = ctx.load_texture(
        format!("penguin {height} {alive} {ppp}"),
        image,
        TextureOptions::LINEAR,
    );
    let placed = Placed {
        texture: handle.id(),
        size,
        origin,
    };
    ctx.data_mut(|d| {
        let sprites = d.get_temp_mut_or_default::<Sprites>(id);
        // Sizes and densities are few (two heights, a display or two); a window dragged
        // across many densities must not keep every one.
        if sprites.len() >= 16 {
            sprites.clear();
        }
        sprites.insert(key, (handle, placed));
    });
    placed
}

/// The penguin `height` points tall at `ppp` pixels per point filled into an image, and
/// where its centre is in it.
fn image(height: f32, alive: bool, ppp: f32) -> (ColorImage, Pos2) {
    let s = height * ppp / 100.0;
    // A pixel of margin around the bounds, for the antialiased edges.
    let origin = pos2((LEFT * s).ceil() + 1.0, (TOP * s).ceil() + 1.0);
    let w = origin.x as usize + (RIGHT * s).ceil() as usize + 1;
    let h = origin.y as usize + (BOTTOM * s).ceil() as usize + 1;
    let mut grid = Grid {
        origin,
        s,
        fills: Vec::new(),
    };
    let c = colors(alive);
    body(&mut grid, &c);
    face(&mut grid, &c);
    if !alive {
        // A node that does not answer: a red cross on its belly.
        let width = (3.0 * s).max(1.5 * ppp);
        let red = Color32::from_rgb(210, 40, 40);
        for (a, b) in [((-11.0, 6.0), (11.0, 28.0)), ((11.0, 6.0), (-11.0, 28.0))] {
            let (a, b) = (grid.at(a.0, a.1), grid.at(b.0, b.1));
            grid.fills.push((Fill::Segment { a, b, width }, red));
        }
    }
    (sprite::rasterise(w, h, &grid.fills), origin)
}

/// The shadow, feet, flippers, body, head and belly.
fn body(grid: &mut Grid, c: &Colors) {
    // Shadow on the ground.
    grid.ellipse(0.0, 48.0, 34.0, 5.0, Color32::from_black_alpha(40));
    for side in [-1.0, 1.0] {
        grid.ellipse(side * 15.0, 45.0, 14.0, 5.5, c.feet);
    }
    // Flippers, hanging out from the body.
    for side in [-1.0_f32, 1.0] {
        let pts = [
            (side * 24.0, -6.0),
            (side * 36.0, 14.0),
            (side * 39.0, 30.0),
            (side * 33.0, 31.0),
            (side * 22.0, 18.0),
        ];
        grid.polygon(&pts, c.body);
    }
    grid.ellipse(0.0, 12.0, 30.0, 36.0, c.body);
    grid.circle(0.0, -27.0, 21.0, c.body);
    grid.ellipse(0.0, 17.0, 21.0, 28.0, c.belly);
}

/// The white patches around the eyes, the eyes and the beak.
fn face(grid: &mut Grid, c: &Colors) {
    for side in [-1.0, 1.0] {
        grid.ellipse(side * 7.5, -29.0, 7.5, 10.0, c.belly);
    }
    // Eyes: pupils looking slightly inwards, with a glint.
    for side in [-1.0, 1.0] {
        let (x, y) = (side * 6.5, -30.0);
        grid.circle(x, y, 3.6, c.body);
        grid.circle(x - 1.0, y - 1.2, 1.2, Color32::WHITE);
    }
    // Beak: upper and lower halves.
    grid.polygon(
        &[(-10.0, -20.0), (0.0, -24.0), (10.0, -20.0), (0.0, -15.0)],
        c.beak,
    );
    grid.polygon(&[(-8.0, -19.0), (8.0, -19.0), (0.0, -12.0)], c.feet);
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
