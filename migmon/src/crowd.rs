//! The layout for more nodes than one circle holds readably (from about twenty nodes
//! up at the window's first-start size): the watched node's penguin in the middle with
//! room for its whole process circle, every other penguin smaller, on rings of cells
//! around it, in node order, filling the whole canvas (corners too) but the legend.
//! Pure geometry, like [`crate::layout`].

use egui::{Pos2, Rect, pos2, vec2};
use openmosix_hpc::model::NodeId;

use crate::layout::{MAIN_PENGUIN, MAX_SQUARES, NodePlace, PENGUIN, SQUARE, process_ring_radius};

/// The largest cell a penguin of the crowd gets: an ordinary penguin and its number.
const LARGEST_CELL: f32 = PENGUIN + NUMBER_HEIGHT;
/// Below this a cell has no room for its number (the tooltip and screen readers still
/// name the node).
const NUMBERED_CELL: f32 = 28.0;
/// The smallest cell tried; nodes that do not fit even then are not drawn.
const SMALLEST_CELL: f32 = 14.0;
/// Height of the node number under a crowd penguin.
pub const NUMBER_HEIGHT: f32 = 12.0;
/// Room kept in the canvas's top-left corner for the legend (see `canvas::legend`).
pub const LEGEND: egui::Vec2 = vec2(200.0, 100.0);

/// The penguins of `ids` in `area` with `main` in the middle, and how many nodes found
/// no place (the window is too small for them).
pub fn places(area: Rect, ids: &[NodeId], main: NodeId) -> (Vec<NodePlace>, usize) {
    let others: Vec<NodeId> = ids.iter().copied().filter(|&id| id != main).collect();
    let mut placed = Vec::with_capacity(ids.len());
    if ids.contains(&main) {
        placed.push(NodePlace {
            id: main,
            center: area.center(),
            size: MAIN_PENGUIN,
            main: true,
            compact: false,
        });
    }
    let cell = cell_for(area, others.len());
    // The cells nearest the middle, numbered in reading order (row by row, left to
    // right), so that node 137 is found as a word on a page is.
    let mut slots = slots(area, cell);
    slots.truncate(others.len());
    slots.sort_by_key(|s| (s.row, s.column));
    let size = penguin_height(cell);
    // The penguin sits at the top of its cell, its number under it.
    let lift = if cell >= NUMBERED_CELL {
        NUMBER_HEIGHT / 2.0
    } else {
        0.0
    };
    for (&id, slot) in others.iter().zip(&slots) {
        placed.push(NodePlace {
            id,
            center: slot.center - vec2(0.0, lift),
            size,
            main: false,
            compact: true,
        });
    }
    (placed, others.len().saturating_sub(slots.len()))
}

/// A cell of the grid.
#[derive(Debug, Clone, Copy)]
struct Slot {
    row: i32,
    column: i32,
    center: Pos2,
}

/// The centres of `count` squares on a crowd penguin: rows of them over its body, from
/// its belly out, as many to a row as its width holds (the squares are drawn over it).
pub fn square_places(place: &NodePlace, count: usize) -> Vec<Pos2> {
    let pitch = SQUARE + 2.0;
    let per_row = (((place.rect().width() + 2.0) / pitch).floor() as usize).max(1);
    let rows = count.div_ceil(per_row);
    let top = place.center.y + place.size * 0.12 - (rows as f32 - 1.0) * pitch / 2.0;
    (0..count)
        .map(|i| {
            let (row, column) = (i / per_row, i % per_row);
            let in_row = per_row.min(count - row * per_row);
            let left = place.center.x - (in_row as f32 - 1.0) * pitch / 2.0;
            pos2(left + column as f32 * pitch, top + row as f32 * pitch)
        })
        .collect()
}

/// Whether a crowd penguin of this height has its number under it.
pub fn numbered(size: f32) -> bool {
    size >= penguin_height(NUMBERED_CELL)
}

/// The largest cell (whole points) whose slots hold `count` penguins, or the smallest.
fn cell_for(area: Rect, count: usize) -> f32 {
    let mut cell = LARGEST_CELL;
    while cell > SMALLEST_CELL && slots(area, cell).len() < count {
        cell -= 1.0;
    }
    cell
}

/// The height of a penguin in a cell: the cell less its number, never larger than an
/// ordinary penguin; whole points, so that few sprite sizes are made.
fn penguin_height(cell: f32) -> f32 {
    let room = if cell >= NUMBERED_CELL {
        cell - NUMBER_HEIGHT
    } else {
        cell
    };
    (room * 0.92).floor().min(PENGUIN)
}

/// The room the watched penguin keeps: its largest process circle, its name and address
/// below it. Fixed, so that the rings do not move when its processes come and go.
fn middle_radius() -> f32 {
    process_ring_radius(MAIN_PENGUIN, MAX_SQUARES) + SQUARE + 34.0
}

/// The cells of height `cell` (and a penguin's width) of a grid centred on the middle,
/// nearest the middle first (ring by ring, rings a cell apart, each from the left going
/// clockwise, so that a crowd smaller than the grid sits evenly round the middle); only
/// cells wholly inside `area`, clear of the watched penguin's room and of the legend.
/// Grid cells never overlap, so neither do the penguins and numbers in them.
fn slots(area: Rect, cell: f32) -> Vec<Slot> {
    let size = vec2(cell_width(cell), cell);
    let center = area.center();
    let inside = area.shrink(2.0);
    let legend = Rect::from_min_size(area.min, LEGEND);
    let middle = middle_radius();
    let columns = (area.width() / size.x / 2.0).ceil() as i32;
    let rows = (area.height() / size.y / 2.0).ceil() as i32;
    let mut out: Vec<(i32, f32, Slot)> = Vec::new();
    for row in -rows..=rows {
        for column in -columns..=columns {
            let p = center + vec2(column as f32 * size.x, row as f32 * size.y);
            let r = Rect::from_center_size(p, size);
            let d = p - center;
            // The cell's nearest point to the middle must be outside the middle's room.
            let nearest = r.clamp(center) - center;
            if !inside.contains_rect(r) || r.intersects(legend) || nearest.length() < middle {
                continue;
            }
            let ring = ((d.length() - middle) / cell).floor() as i32;
            let angle = (d.y.atan2(d.x) - std::f32::consts::PI).rem_euclid(std::f32::consts::TAU);
            let center = pos2(p.x, p.y);
            out.push((
                ring,
                angle,
                Slot {
                    row,
                    column,
                    center,
                },
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    out.into_iter().map(|(_, _, slot)| slot).collect()
}

/// The width of a cell of height `cell`: its penguin, a little space, and room for a
/// three-digit number.
fn cell_width(cell: f32) -> f32 {
    (penguin_height(cell) * 0.78 + 6.0).max(if cell >= NUMBERED_CELL { 26.0 } else { 0.0 })
}
