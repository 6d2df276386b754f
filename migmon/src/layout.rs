//! Where things sit, as pure geometry: the nodes on a big circle, the process squares on
//! small circles around their penguins; more nodes than the circle holds readably are
//! laid out as a crowd ([`crate::crowd`]). No drawing here, so tests can check it.

use egui::{Pos2, Rect, Vec2, pos2, vec2};
use openmosix_hpc::model::NodeId;

use crate::crowd;

/// Side of a process square, in points.
pub const SQUARE: f32 = 11.0;
/// Distance between the centres of neighbouring squares on a process circle.
pub const SQUARE_SPACING: f32 = 16.0;
/// At most this many squares on one process circle; the rest are counted ("+N more").
pub const MAX_SQUARES: usize = 48;
/// Height of an ordinary penguin.
pub const PENGUIN: f32 = 54.0;
/// Height of the main penguin (the watched node).
pub const MAIN_PENGUIN: f32 = 86.0;

/// A node's place on the big circle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodePlace {
    /// The node.
    pub id: NodeId,
    /// Centre of its penguin.
    pub center: Pos2,
    /// Height of its penguin (its width is about 3/4 of that).
    pub size: f32,
    /// It is the watched node.
    pub main: bool,
    /// A penguin of the crowd: labelled with its number only, in a cell of its own.
    pub compact: bool,
}

impl NodePlace {
    /// The rectangle the penguin is drawn in (and that takes drops).
    pub fn rect(&self) -> Rect {
        Rect::from_center_size(self.center, penguin_size(self.size))
    }
}

/// Width and height of a penguin of height `size`.
pub fn penguin_size(size: f32) -> Vec2 {
    vec2(size * 0.78, size)
}

/// `count` points evenly spaced on the circle of `radius` around `center`, the first at
/// angle `phase` (radians, 0 = right, growing clockwise on screen).
pub fn ring(center: Pos2, radius: f32, count: usize, phase: f32) -> Vec<Pos2> {
    (0..count)
        .map(|i| {
            let a = phase + std::f32::consts::TAU * i as f32 / count as f32;
            center + radius * vec2(a.cos(), a.sin())
        })
        .collect()
}

/// The radius of a process circle of `count` squares around a penguin of height `size`:
/// clear of the penguin, and wide enough that the squares do not touch.
pub fn process_ring_radius(size: f32, count: usize) -> f32 {
    let needed = count.min(MAX_SQUARES) as f32 * SQUARE_SPACING / std::f32::consts::TAU;
    needed.max(size * 0.62 + SQUARE)
}

/// The radius of the big circle that fits in `area` with room for the process circles.
pub fn nodes_radius(area: Rect) -> f32 {
    let margin = PENGUIN * 0.62 + 2.0 * SQUARE + 24.0;
    (area.width().min(area.height()) / 2.0 - margin).max(40.0)
}

/// Room along the big circle each penguin needs for its name and address.
pub const ROOM_ON_CIRCLE: f32 = 84.0;

/// Where every penguin sits in `area`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrangement {
    /// The penguins, the watched one first.
    pub places: Vec<NodePlace>,
    /// Nodes that found no place: the window is too small for so many.
    pub unplaced: usize,
}

/// The penguins of `ids` in `area`: on the big circle ([`node_places`]) while it holds
/// them with room for their names, else as a crowd around the watched one
/// ([`crate::crowd::places`]).
pub fn arrange(area: Rect, ids: &[NodeId], main: NodeId) -> Arrangement {
    if crowded(area, ids.len()) {
        let (places, unplaced) = crate::crowd::places(area, ids, main);
        Arrangement { places, unplaced }
    } else {
        Arrangement {
            places: node_places(area, ids, main),
            unplaced: 0,
        }
    }
}

/// Whether `count` penguins on the big circle of `area` would crowd each other's names.
pub fn crowded(area: Rect, count: usize) -> bool {
    count > 1 && std::f32::consts::TAU * nodes_radius(area) / (count as f32) < ROOM_ON_CIRCLE
}

/// The penguins on the big circle in `area`: `ids` in order, the `main` node first at the
/// left (where its large process circle has the most room), the others clockwise. A
/// `main` that is not among `ids` makes no penguin large.
pub fn node_places(area: Rect, ids: &[NodeId], main: NodeId) -> Vec<NodePlace> {
    let center = area.center();
    let radius = nodes_radius(area);
    let start = ids.iter().position(|&id| id == main).unwrap_or(0);
    let order: Vec<NodeId> = ids[start..].iter().chain(&ids[..start]).copied().collect();
    let points = ring(center, radius, order.len(), std::f32::consts::PI);
    order
        .iter()
        .zip(points)
        .map(|(&id, p)| NodePlace {
            id,
            center: p,
            size: if id == main { MAIN_PENGUIN } else { PENGUIN },
            main: id == main,
            compact: false,
        })
        .collect()
}

/// The centres of `count` squares (at most [`MAX_SQUARES`]) around a penguin; on a crowd
/// penguin, whose neighbours are close, over it ([`crowd::square_places`]).
pub fn square_places(place: &NodePlace, count: usize) -> Vec<Pos2> {
    if place.compact {
        return crowd::square_places(place, count.min(MAX_SQUARES));
    }
    let n = count.min(MAX_SQUARES);
    let r = process_ring_radius(place.size, n);
    ring(place.center, r, n, -std::f32::consts::FRAC_PI_2)
}

/// Where the "+N more" text of a process circle goes: below the circle.
pub fn more_text_place(place: &NodePlace, count: usize) -> Pos2 {
    let r = process_ring_radius(place.size, count);
    pos2(place.center.x, place.center.y + r + SQUARE + 2.0)
}

/// Eases an animation's linear progress `t` (0..=1).
pub fn ease(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}
