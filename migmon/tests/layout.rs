//! The geometry of the penguin circle (pure, no UI).

use egui::{Rect, pos2, vec2};
use openmosixmigmon::layout::{
    MAX_SQUARES, SQUARE, node_places, nodes_radius, process_ring_radius, ring, square_places,
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
