//! A real window on an X server (Xvfb), driven with real X pointer and key events
//! (xdotool: Debian package xdotool) and looked at with screenshots (ImageMagick's
//! `import`). Nothing here reaches into the program: what it gets is what a user's mouse
//! and keyboard would send.

use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

use egui::{Pos2, Vec2, vec2};

use crate::gui::shot::Shot;

/// How long a window program may take to map its window.
const MAP_TIMEOUT_SECS: u32 = 30;
/// The pause between two pointer moves of a drag: egui sees each move in a frame of its
/// own, as a hand's drag.
const MOVE_PAUSE: Duration = Duration::from_millis(40);

/// The pause between two looks at a window that is awaited.
const LOOK_PAUSE: Duration = Duration::from_millis(300);

/// A mapped top-level window of a program, by its X window id.
#[derive(Debug, Clone)]
pub struct XWindow {
    /// The X display (`:N`).
    pub display: String,
    /// The window id, as xdotool prints it.
    pub id: String,
    /// Its size in pixels.
    pub size: Vec2,
}

impl XWindow {
    /// Waits until a visible window whose title contains `title` is mapped on
    /// `display` (`xdotool search --sync`), takes its size and gives it the keyboard.
    pub fn find(display: &str, title: &str) -> XWindow {
        let out = xdotool(
            display,
            &["search", "--sync", "--onlyvisible", "--name", title],
            Some(MAP_TIMEOUT_SECS),
        );
        assert_ne!(
            out.status.code(),
            Some(127),
            "xdotool (Debian package xdotool) must be installed: scripts/install-test-deps.sh"
        );
        let found = String::from_utf8_lossy(&out.stdout);
        let Some(id) = found.lines().next().map(str::to_owned) else {
            panic!("no window named {title:?} was mapped on {display} within {MAP_TIMEOUT_SECS} s");
        };
        let mut window = XWindow {
            display: display.to_owned(),
            id,
            size: Vec2::ZERO,
        };
        let geometry = window.xdotool(&["getwindowgeometry", "--shell", &window.id]);
        let value = |key: &str| -> f32 {
            geometry
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in xdotool's geometry: {geometry}"))
        };
        window.size = vec2(value("WIDTH"), value("HEIGHT"));
        // What a window manager does for a new window: without the focus, egui drops
        // the focus of its text fields and the keys go nowhere.
        window.xdotool(&["windowfocus", "--sync", &window.id]);
        window
    }

    /// Runs xdotool with `args` on this display; its stdout. Fails saying what xdotool said.
    pub fn xdotool(&self, args: &[&str]) -> String {
        let out = xdotool(&self.display, args, None);
        assert!(
            out.status.success(),
            "xdotool {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Moves the pointer to `p` (pixels from the window's top-left corner).
    pub fn move_to(&self, p: Pos2) {
        let (x, y) = (p.x.round().to_string(), p.y.round().to_string());
        self.xdotool(&["mousemove", "--sync", "--window", &self.id, &x, &y]);
    }

    /// Presses the left button where the pointer is.
    pub fn press(&self) {
        self.xdotool(&["mousedown", "1"]);
    }

    /// Lets the left button go where the pointer is.
    pub fn release(&self) {
        self.xdotool(&["mouseup", "1"]);
    }

    /// Clicks the left button at `p`.
    pub fn click(&self, p: Pos2) {
        self.move_to(p);
        sleep(MOVE_PAUSE);
        self.xdotool(&["click", "1"]);
    }

    /// Two clicks at `p`, 80 ms apart: a double click to egui (and to a desktop).
    pub fn double_click(&self, p: Pos2) {
        self.move_to(p);
        sleep(MOVE_PAUSE);
        self.xdotool(&["click", "--repeat", "2", "--delay", "80", "1"]);
    }

    /// Presses at `from`, moves to `to` in `moves` steps with a pause after each, and
    /// lets go there: a drag as a hand makes it (egui misses a jump straight to the end).
    pub fn drag(&self, from: Pos2, to: Pos2, moves: u32) {
        self.move_to(from);
        sleep(MOVE_PAUSE);
        self.press();
        sleep(MOVE_PAUSE);
        for i in 1..=moves {
            self.move_to(from.lerp(to, i as f32 / moves as f32));
            sleep(MOVE_PAUSE);
        }
        // Hovering over the target a moment, as a hand does before it lets go.
        sleep(MOVE_PAUSE * 3);
        self.release();
    }

    /// Types `text` with the keyboard into whatever has the focus.
    pub fn type_text(&self, text: &str) {
        self.xdotool(&["type", "--delay", "60", text]);
    }

    /// The window as it is on the screen now.
    pub fn shot(&self) -> Shot {
        let out = Command::new("import")
            .args(["-display", &self.display, "-window", &self.id])
            .args(["-depth", "8", "rgb:-"])
            .output()
            .expect("import (Debian package imagemagick) must be installed: scripts/install-test-deps.sh");
        assert!(
            out.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Shot::from_rgb(self.size.x as u32, self.size.y as u32, out.stdout)
    }

    /// Looks at the window until `cond` of its screenshot gives a value, for at most
    /// `secs` seconds; then fails naming `what`, the last `Err` and where the last
    /// screenshot was saved.
    pub fn wait_for<T>(
        &self,
        secs: u64,
        what: &str,
        mut cond: impl FnMut(&Shot) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let shot = self.shot();
            match cond(&shot) {
                Ok(v) => return v,
                Err(seen) if Instant::now() >= deadline => {
                    let path = shot.save_evidence(what);
                    panic!(
                        "not within {secs} s: {what} ({seen}); the window: {}",
                        path.display()
                    );
                }
                Err(_) => sleep(LOOK_PAUSE),
            }
        }
    }
}

/// The whole screen of `display`, of `size` pixels (as the X server was started), as it
/// is now: the root window with every window on it.
pub fn screen_shot(display: &str, size: Vec2) -> Shot {
    let out = Command::new("import")
        .args(["-display", display, "-window", "root"])
        .args(["-depth", "8", "rgb:-"])
        .output()
        .expect(
            "import (Debian package imagemagick) must be installed: scripts/install-test-deps.sh",
        );
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Shot::from_rgb(size.x as u32, size.y as u32, out.stdout)
}

/// xdotool `args` on `display`, within `secs` seconds when given (`timeout` ends it).
fn xdotool(display: &str, args: &[&str], secs: Option<u32>) -> Output {
    let mut cmd = match secs {
        Some(s) => {
            let mut c = Command::new("timeout");
            c.arg(s.to_string()).arg("xdotool");
            c
        }
        None => Command::new("xdotool"),
    };
    cmd.args(args)
        .env("DISPLAY", display)
        .output()
        .expect("xdotool (Debian package xdotool) must be installed: scripts/install-test-deps.sh")
}
