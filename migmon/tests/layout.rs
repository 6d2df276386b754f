//! The geometry of the penguin circle (pure, no UI).

use egui::{Rect, pos2, vec2};
use openmosixmigmon::crowd;
use openmosixmigmon::layout::{
    MAX_SQUARES, NodePlace, SQUARE, arrange, node_places, nodes_radius, process_ring_radius, ring,
    square_places,
};

fn area() -> Rect {
    Rect::from_min_size(pos2(0.0, 40.0), vec2(1000.0, 700.0))
}

#[test]
fn penguins_sit_on_one_circle_at_distinct_places() {
    for n in 1..=12_u32 {
        let ids: Vec<u32> = (1..=n).collect();
        let places = node_places(area(), &ids, 2.min(n));
        assert_eq!(places.len(), ids.len());
        let r = nodes_radius(area());
        for p in &places {
            let d = p.center.distance(area().center());
            assert!((d - r).abs() < 0.01, "node {} at {d}, circle {r}", p.id);
            assert!(area().contains(p.center));
        }
        for (i, a) in places.iter().enumerate() {
            for b in &places[i + 1..] {
                assert!(
                    a.center.distance(b.center) > 1.0,
                    "nodes {} and {} overlap",
                    a.id,
                    b.id
                );
            }
        }
        let mut seen: Vec<u32> = places.iter().map(|p| p.id).collect();
        seen.sort_unstable();
        assert_eq!(seen, ids);
    }
}

#[test]
fn the_main_penguin_is_larger_and_alone() {
    let places = node_places(area(), &[1, 2, 3, 4], 3);
    let main: Vec<_> = places.iter().filter(|p| p.main).collect();
    assert_eq!(main.len(), 1);
    assert_eq!(main[0].id, 3);
    for p in places.iter().filter(|p| !p.main) {
        assert!(main[0].size > p.size * 1.3);
        assert!(main[0].rect().area() > p.rect().area());
    }
    // It sits at the left, where its large process circle has room.
    assert!(places.iter().all(|p| main[0].center.x <= p.center.x));
}

#[test]
fn squares_ring_their_penguin_without_touching_it_or_each_other() {
    let places = node_places(area(), &[1, 2, 3], 1);
    for place in &places {
        for count in [1, 5, 20, MAX_SQUARES, MAX_SQUARES + 30] {
            let squares = square_places(place, count);
            assert_eq!(squares.len(), count.min(MAX_SQUARES));
            let r = process_ring_radius(place.size, count);
            for s in &squares {
                assert!((s.distance(place.center) - r).abs() < 0.01);
                let sq = Rect::from_center_size(*s, vec2(SQUARE, SQUARE));
                assert!(!sq.intersects(place.rect()), "a square covers the penguin");
            }
            for (i, a) in squares.iter().enumerate() {
                for b in &squares[i + 1..] {
                    assert!(a.distance(*b) > SQUARE, "squares touch");
                }
            }
        }
    }
}

#[test]
fn a_ring_is_evenly_spaced() {
    let pts = ring(pos2(0.0, 0.0), 10.0, 4, 0.0);
    let expect = [
        pos2(10.0, 0.0),
        pos2(0.0, 10.0),
        pos2(-10.0, 0.0),
        pos2(0.0, -10.0),
    ];
    for (p, e) in pts.iter().zip(expect) {
        assert!(p.distance(e) < 1e-4, "{p:?} vs {e:?}");
    }
}

/// The canvas at the window's first-start size (the window less its menu and status lines).
fn first_start_canvas() -> Rect {
    Rect::from_min_size(pos2(0.0, 30.0), vec2(1000.0, 560.0))
}

/// What a crowd penguin covers: its penguin and its number under it.
fn covered(p: &NodePlace) -> Rect {
    let r = p.rect();
    if crowd::numbered(p.size) {
        r.union(Rect::from_min_size(
            pos2(p.center.x - 11.0, r.bottom()),
            vec2(22.0, crowd::NUMBER_HEIGHT),
        ))
    } else {
        r
    }
}

#[test]
fn a_dozen_nodes_stay_on_one_circle_and_more_become_a_crowd() {
    let ids: Vec<u32> = (1..=12).collect();
    let a = arrange(first_start_canvas(), &ids, 1);
    assert!(
        a.places.iter().all(|p| !p.compact),
        "12 nodes are on the circle"
    );
    let ids: Vec<u32> = (1..=30).collect();
    let a = arrange(first_start_canvas(), &ids, 1);
    assert!(a.places.iter().filter(|p| !p.main).all(|p| p.compact));
    assert_eq!(a.places.iter().filter(|p| p.main).count(), 1);
}

#[test]
fn a_crowd_of_250_fits_the_first_start_window_apart_and_readable() {
    let area = first_start_canvas();
    let ids: Vec<u32> = (1..=250).collect();
    let a = arrange(area, &ids, 7);
    assert_eq!(a.unplaced, 0);
    assert_eq!(a.places.len(), 250);
    let mut seen: Vec<u32> = a.places.iter().map(|p| p.id).collect();
    seen.sort_unstable();
    assert_eq!(seen, ids);
    let main = a
        .places
        .iter()
        .find(|p| p.main)
        .expect("the watched penguin");
    assert_eq!(main.id, 7);
    // Its whole process circle, with its name under it, is clear of the crowd.
    let room = process_ring_radius(main.size, MAX_SQUARES) + SQUARE;
    let legend = Rect::from_min_size(area.min, crowd::LEGEND);
    let crowd: Vec<&NodePlace> = a.places.iter().filter(|p| !p.main).collect();
    for p in &crowd {
        let c = covered(p);
        assert!(
            area.contains_rect(c),
            "node {} leaves the canvas: {c:?}",
            p.id
        );
        assert!(!c.intersects(legend), "node {} covers the legend", p.id);
        let nearest = c.clamp(main.center);
        assert!(
            nearest.distance(main.center) > room,
            "node {} is in the middle",
            p.id
        );
        // Readable: a penguin at least 22 points tall, its number under it.
        assert!(
            p.size >= 22.0 && crowd::numbered(p.size),
            "node {}: {}",
            p.id,
            p.size
        );
    }
    for (i, p) in crowd.iter().enumerate() {
        for q in &crowd[i + 1..] {
            assert!(
                !covered(p).intersects(covered(q)),
                "nodes {} and {} overlap",
                p.id,
                q.id
            );
        }
    }
    // Numbered in reading order: row by row from the top, each row from the left.
    for pair in crowd.windows(2) {
        let (a, b) = (pair[0].center, pair[1].center);
        assert!(pair[0].id < pair[1].id);
        assert!(
            a.y < b.y || (a.y == b.y && a.x < b.x),
            "node {} at {a:?} comes before node {} at {b:?}",
            pair[0].id,
            pair[1].id
        );
    }
}

#[test]
fn a_window_too_small_for_the_crowd_says_how_many_are_left_out() {
    let area = Rect::from_min_size(pos2(0.0, 0.0), vec2(420.0, 320.0));
    let ids: Vec<u32> = (1..=2000).collect();
    let a = arrange(area, &ids, 1);
    assert!(a.unplaced > 0);
    assert_eq!(a.places.len() + a.unplaced, ids.len());
}

#[test]
fn a_crowd_penguins_squares_sit_on_it_apart() {
    let ids: Vec<u32> = (1..=250).collect();
    let a = arrange(first_start_canvas(), &ids, 1);
    let p = a.places.iter().find(|p| p.id == 137).expect("node 137");
    assert!(p.compact);
    for count in 1..=4 {
        let squares = square_places(p, count);
        assert_eq!(squares.len(), count);
        for s in &squares {
            let sq = Rect::from_center_size(*s, vec2(SQUARE, SQUARE));
            assert!(
                p.rect().expand(2.0).contains_rect(sq),
                "{count}: {sq:?} off {:?}",
                p.rect()
            );
        }
        for (i, a) in squares.iter().enumerate() {
            for b in &squares[i + 1..] {
                assert!((a.x - b.x).abs() > SQUARE || (a.y - b.y).abs() > SQUARE);
            }
        }
    }
}
