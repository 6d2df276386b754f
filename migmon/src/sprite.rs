//! A small rasteriser for drawings painted many times over: their shapes are filled once
//! into an image (antialiased by 4 × 4 samples a pixel), which egui then paints as one
//! textured rectangle a frame instead of tessellating every shape again. Under Xvfb the
//! window is painted in software (llvmpipe), where hundreds of triangles per penguin on
//! 250 penguins cost more than the rest of the frame (docs/benchmarks.md).

use egui::{Color32, ColorImage, Pos2, Vec2, pos2};

/// One filled shape, in the image's pixels (0, 0 is the top left corner of the first
/// pixel).
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    /// An axis-aligned ellipse (a circle when both radii are equal).
    Ellipse { center: Pos2, radius: Vec2 },
    /// A convex polygon, in either winding.
    Convex(Vec<Pos2>),
    /// A straight stroke with square ends at `a` and `b`, `width` wide.
    Segment { a: Pos2, b: Pos2, width: f32 },
}

impl Fill {
    fn contains(&self, p: Pos2) -> bool {
        match self {
            Fill::Ellipse { center, radius } => {
                let d = (p - *center) / *radius;
                d.length_sq() <= 1.0
            }
            Fill::Convex(points) => {
                let mut sign = 0.0_f32;
                for (i, a) in points.iter().enumerate() {
                    let b = points[(i + 1) % points.len()];
                    let cross = (b - *a).x * (p - *a).y - (b - *a).y * (p - *a).x;
                    if cross != 0.0 {
                        if sign * cross < 0.0 {
                            return false;
                        }
                        sign = cross;
                    }
                }
                true
            }
            Fill::Segment { a, b, width } => {
                let along = *b - *a;
                let len = along.length();
                if len == 0.0 {
                    return false;
                }
                let dir = along / len;
                let t = (p - *a).dot(dir);
                let off = (p - *a).dot(dir.rot90()).abs();
                (0.0..=len).contains(&t) && off <= width / 2.0
            }
        }
    }

    /// The pixels it can touch: x and y ranges, clamped to a `w` × `h` image.
    fn pixels(&self, w: usize, h: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let (min, max) = match self {
            Fill::Ellipse { center, radius } => (*center - *radius, *center + *radius),
            Fill::Convex(points) => points.iter().fold(
                (pos2(f32::MAX, f32::MAX), pos2(f32::MIN, f32::MIN)),
                |(lo, hi), p| (lo.min(*p), hi.max(*p)),
            ),
            Fill::Segment { a, b, width } => {
                let half = Vec2::splat(width / 2.0);
                (a.min(*b) - half, a.max(*b) + half)
            }
        };
        let clamp = |v: f32, n: usize| (v.max(0.0) as usize).min(n);
        (
            clamp(min.x.floor(), w)..clamp(max.x.ceil(), w),
            clamp(min.y.floor(), h)..clamp(max.y.ceil(), h),
        )
    }
}

/// Samples a pixel takes along each axis.
const SAMPLES: usize = 4;

/// A `w` × `h` image of `fills` painted in order over transparency, each with its colour
/// (premultiplied, as egui's); the edges cover their pixels in part, as egui's own
/// antialiasing does, and colours mix as egui mixes them (in gamma space).
pub fn rasterise(w: usize, h: usize, fills: &[(Fill, Color32)]) -> ColorImage {
    // Premultiplied RGBA, 0..=1.
    let mut px = vec![[0.0_f32; 4]; w * h];
    for (fill, color) in fills {
        let src = color.to_array().map(|c| f32::from(c) / 255.0);
        let (xs, ys) = fill.pixels(w, h);
        for y in ys {
            for x in xs.clone() {
                let mut inside = 0;
                for sy in 0..SAMPLES {
                    for sx in 0..SAMPLES {
                        let p = pos2(
                            x as f32 + (sx as f32 + 0.5) / SAMPLES as f32,
                            y as f32 + (sy as f32 + 0.5) / SAMPLES as f32,
                        );
                        inside += usize::from(fill.contains(p));
                    }
                }
                if inside == 0 {
                    continue;
                }
                let cover = inside as f32 / (SAMPLES * SAMPLES) as f32;
                let dst = &mut px[y * w + x];
                let keep = 1.0 - src[3] * cover;
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = s * cover + *d * keep;
                }
            }
        }
    }
    let pixels = px
        .iter()
        .map(|c| {
            let [r, g, b, a] = c.map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8);
            Color32::from_rgba_premultiplied(r, g, b, a)
        })
        .collect();
    ColorImage {
        size: [w, h],
        source_size: Vec2::new(w as f32, h as f32),
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(img: &ColorImage, x: usize, y: usize) -> Color32 {
        img.pixels[y * img.size[0] + x]
    }

    #[test]
    fn shapes_fill_their_inside_only_and_later_ones_cover_earlier_ones() {
        let red = Color32::from_rgb(200, 0, 0);
        let blue = Color32::from_rgb(0, 0, 200);
        let img = rasterise(
            20,
            20,
            &[
                (
                    Fill::Ellipse {
                        center: pos2(10.0, 10.0),
                        radius: Vec2::new(8.0, 4.0),
                    },
                    red,
                ),
                (
                    Fill::Convex(vec![pos2(9.0, 9.0), pos2(11.0, 9.0), pos2(11.0, 11.0)]),
                    blue,
                ),
            ],
        );
        assert_eq!(at(&img, 4, 10), red);
        assert_eq!(at(&img, 10, 2), Color32::TRANSPARENT);
        assert_eq!(at(&img, 0, 0), Color32::TRANSPARENT);
        // Half covered by the triangle's diagonal: between blue and red.
        let edge = at(&img, 9, 9);
        assert!(edge.b() > 0 && edge.r() > 0 && edge.a() == 255, "{edge:?}");
        // An edge pixel of the ellipse alone is partly transparent.
        assert!(
            (1..255).contains(&at(&img, 2, 10).a()),
            "{:?}",
            at(&img, 2, 10)
        );
    }

    #[test]
    fn a_segment_is_as_wide_as_asked() {
        let img = rasterise(
            10,
            10,
            &[(
                Fill::Segment {
                    a: pos2(0.0, 5.0),
                    b: pos2(10.0, 5.0),
                    width: 2.0,
                },
                Color32::WHITE,
            )],
        );
        assert_eq!(at(&img, 5, 4), Color32::WHITE);
        assert_eq!(at(&img, 5, 5), Color32::WHITE);
        assert_eq!(at(&img, 5, 3), Color32::TRANSPARENT);
        assert_eq!(at(&img, 5, 6), Color32::TRANSPARENT);
    }

    #[test]
    fn translucent_fills_mix_with_what_is_below() {
        let img = rasterise(
            4,
            4,
            &[(
                Fill::Convex(vec![
                    pos2(0.0, 0.0),
                    pos2(4.0, 0.0),
                    pos2(4.0, 4.0),
                    pos2(0.0, 4.0),
                ]),
                Color32::from_black_alpha(40),
            )],
        );
        assert_eq!(at(&img, 1, 1), Color32::from_black_alpha(40));
    }
}
