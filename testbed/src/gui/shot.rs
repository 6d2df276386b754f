//! A screenshot as pixels, to find things in a real window and to tell a drawn window
//! from a blank one. Read with ImageMagick (`convert`, `identify`: Debian package
//! imagemagick).

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use egui::{Color32, Pos2, Rect, pos2};

/// The pixels of a screenshot, 8-bit RGB, row by row.
#[derive(Debug, Clone)]
pub struct Shot {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    rgb: Vec<u8>,
}

impl Shot {
    /// Raw RGB bytes of a `width` × `height` picture.
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Shot {
        assert_eq!(
            rgb.len(),
            width as usize * height as usize * 3,
            "a {width}x{height} picture needs {} RGB bytes",
            width * height * 3
        );
        Shot { width, height, rgb }
    }

    /// Reads a picture file (PNG, …).
    pub fn from_file(path: &Path) -> Shot {
        let size = magick(
            Command::new("identify")
                .args(["-format", "%w %h"])
                .arg(path),
        );
        let size = String::from_utf8_lossy(&size);
        let (w, h) = size
            .trim()
            .split_once(' ')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .unwrap_or_else(|| panic!("identify said {size:?} of {}", path.display()));
        let rgb = magick(
            Command::new("convert")
                .arg(path)
                .args(["-depth", "8", "rgb:-"]),
        );
        Shot::from_rgb(w, h, rgb)
    }

    /// Writes it as a PNG file at `path`.
    pub fn save(&self, path: &Path) {
        let mut child = Command::new("convert")
            .args(["-size", &format!("{}x{}", self.width, self.height)])
            .args(["-depth", "8", "rgb:-"])
            .arg(path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("convert (Debian package imagemagick) must be installed");
        let written = child.stdin.take().expect("stdin").write_all(&self.rgb);
        let status = child.wait().expect("wait for convert");
        assert!(
            written.is_ok() && status.success(),
            "convert could not write {}",
            path.display()
        );
    }

    /// Saves it where a failing test's reader finds it (the temporary folder, named
    /// after `what`); the path.
    pub fn save_evidence(&self, what: &str) -> PathBuf {
        let name: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = std::env::temp_dir().join(format!("{name}.png"));
        self.save(&path);
        path
    }

    /// The colour at `p` (pixel coordinates), or `None` outside the picture.
    pub fn pixel(&self, p: Pos2) -> Option<Color32> {
        let (x, y) = (p.x.floor(), p.y.floor());
        if x < 0.0 || y < 0.0 || x >= self.width as f32 || y >= self.height as f32 {
            return None;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        Some(Color32::from_rgb(
            self.rgb[i],
            self.rgb[i + 1],
            self.rgb[i + 2],
        ))
    }

    /// How many distinct colours it has: one or two for a blank screen or an empty
    /// window, hundreds where text and figures are drawn (anti-aliasing).
    pub fn colours(&self) -> usize {
        self.rgb.chunks_exact(3).collect::<HashSet<_>>().len()
    }

    /// How many distinct colours it has inside `rect`.
    pub fn colours_in(&self, rect: Rect) -> usize {
        self.points(rect)
            .filter_map(|p| self.pixel(p))
            .collect::<HashSet<_>>()
            .len()
    }

    /// The smallest rectangle holding every pixel whose colour passes `test`.
    pub fn bounds(&self, test: impl Fn(Color32) -> bool) -> Option<Rect> {
        let all = Rect::from_min_max(Pos2::ZERO, pos2(self.width as f32, self.height as f32));
        let mut found: Option<Rect> = None;
        for p in self.points(all) {
            if self.pixel(p).is_some_and(&test) {
                let px = Rect::from_min_size(p, egui::Vec2::splat(1.0));
                found = Some(found.map_or(px, |r| r.union(px)));
            }
        }
        found
    }

    /// The part of it inside `rect`.
    pub fn crop(&self, rect: Rect) -> Shot {
        let all = Rect::from_min_size(
            Pos2::ZERO,
            egui::vec2(self.width as f32, self.height as f32),
        );
        let rect = rect.intersect(all);
        let (w, h) = (rect.width() as u32, rect.height() as u32);
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        for p in self.points(rect) {
            let c = self.pixel(p).unwrap_or_default();
            rgb.extend_from_slice(&[c.r(), c.g(), c.b()]);
        }
        Shot::from_rgb(w, h, rgb)
    }

    /// The bounding rectangles of the patches (4-connected) of pixels whose colour
    /// passes `test`: the lamps of a window, say.
    pub fn blobs(&self, test: impl Fn(Color32) -> bool) -> Vec<Rect> {
        let (w, h) = (self.width as usize, self.height as usize);
        let hit: Vec<bool> = self
            .rgb
            .chunks_exact(3)
            .map(|c| test(Color32::from_rgb(c[0], c[1], c[2])))
            .collect();
        let mut seen = vec![false; w * h];
        let mut out = Vec::new();
        for start in 0..w * h {
            if !hit[start] || seen[start] {
                continue;
            }
            seen[start] = true;
            let mut stack = vec![start];
            let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
            while let Some(i) = stack.pop() {
                let (x, y) = (i % w, i / w);
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                let mut next = Vec::with_capacity(4);
                if x > 0 {
                    next.push(i - 1);
                }
                if x + 1 < w {
                    next.push(i + 1);
                }
                if y > 0 {
                    next.push(i - w);
                }
                if y + 1 < h {
                    next.push(i + w);
                }
                for j in next {
                    if hit[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
            out.push(Rect::from_min_max(
                pos2(x0 as f32, y0 as f32),
                pos2(x1 as f32 + 1.0, y1 as f32 + 1.0),
            ));
        }
        out
    }

    /// The pixels of `rect` (their top-left corners), row by row.
    fn points(&self, rect: Rect) -> impl Iterator<Item = Pos2> {
        let (x0, y0) = (rect.min.x.max(0.0) as u32, rect.min.y.max(0.0) as u32);
        let x1 = (rect.max.x.max(0.0) as u32).min(self.width);
        let y1 = (rect.max.y.max(0.0) as u32).min(self.height);
        (y0..y1).flat_map(move |y| (x0..x1).map(move |x| pos2(x as f32, y as f32)))
    }
}

/// Whether `a` and `b` differ by at most `by` in every channel.
pub fn near(a: Color32, b: Color32, by: u8) -> bool {
    a.r().abs_diff(b.r()) <= by && a.g().abs_diff(b.g()) <= by && a.b().abs_diff(b.b()) <= by
}

/// Runs an ImageMagick command; its stdout.
fn magick(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect(
        "ImageMagick (Debian package imagemagick) must be installed: scripts/install-test-deps.sh",
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
