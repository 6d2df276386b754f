//! A real Wayland compositor of a test's own: weston (Debian package weston) with its
//! headless backend and a CPU renderer ([`renderer`]), its desktop shell on a plain background and no
//! panel, and screenshots through weston's screenshooter (allowed by `--debug`).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use egui::{Color32, Rect, Vec2};

use crate::gui::program::{Screen, WindowProgram};
use crate::gui::shot::{Shot, near};
use crate::process::KillOnDrop;
use crate::wait;

/// The background weston paints where no window is (no panel, no wallpaper).
pub const BACKGROUND: Color32 = Color32::from_rgb(0x20, 0x40, 0x60);
/// The socket's name, in the compositor's own runtime folder (so it meets no other).
const SOCKET: &str = "pt-wayland";

/// Starts `program` with `args` as the only client of a weston of its own and waits
/// until its window is drawn there ([`Weston::wait_for_window`]: at least 500 × 300
/// pixels, text and figures in it); the window's part of the screenshot.
pub fn assert_draws<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Shot {
    let mut weston = Weston::start(1600, 1000);
    let mut window = WindowProgram::start(program, args, Screen::Wayland(&weston));
    let (shot, at) = weston.wait_for_window(&mut window, Vec2::new(500.0, 300.0), 60);
    shot.crop(at)
}

/// Starts `program` with `args` on a weston whose output has scale `scale` and waits
/// until its window is drawn there, at least `min` pixels large; the window's part of
/// the screenshot (its client-side frame included).
pub fn draws_at_scale<S: AsRef<OsStr>>(program: &str, args: &[S], scale: u32, min: Vec2) -> Shot {
    let mut weston = Weston::start_scaled(1600, 1000, scale);
    let mut window = WindowProgram::start(program, args, Screen::Wayland(&weston));
    let (shot, at) = weston.wait_for_window(&mut window, min, 60);
    shot.crop(at)
}

/// Weston's renderer for an output of scale `scale`: the CPU one (pixman) at scale 1,
/// GL (Mesa's llvmpipe, on the CPU too) on a scaled output.
///
/// Debian 12's weston 10 pixman renderer keeps a pointer into a client's shm pool while
/// a buffer from it is shown; a client that grows the pool then (winit's window frame
/// does, when the output's scale arrives) leaves it pointing at unmapped memory, and
/// weston dies of SIGSEGV at its next repaint (in pixman_image_composite32, seen with
/// gdb; 5 of 6 runs). The GL renderer copies the pixels into a texture when a buffer is
/// committed, so it keeps no such pointer.
fn renderer(scale: u32) -> &'static str {
    if scale == 1 {
        "--use-pixman"
    } else {
        "--use-gl"
    }
}

/// A running weston; killed when dropped.
#[derive(Debug)]
pub struct Weston {
    /// Its `XDG_RUNTIME_DIR`: the socket, the log, the screenshots.
    dir: tempfile::TempDir,
    server: KillOnDrop,
}

impl Weston {
    /// Starts weston with one output of `width` × `height` pixels and waits until its
    /// shell has painted the background.
    pub fn start(width: u32, height: u32) -> Weston {
        Weston::start_scaled(width, height, 1)
    }

    /// [`Weston::start`] with an output of scale `scale` (HiDPI): `width` × `height`
    /// are points, the output (and its screenshots) has `scale` times as many pixels
    /// each way, and clients are asked to draw at that scale.
    pub fn start_scaled(width: u32, height: u32, scale: u32) -> Weston {
        let dir = tempfile::tempdir().expect("tempdir");
        // Wayland wants its runtime folder private.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        let ini = dir.path().join("weston.ini");
        let argb = u32::from_be_bytes([0xff, BACKGROUND.r(), BACKGROUND.g(), BACKGROUND.b()]);
        fs::write(
            &ini,
            format!(
                "[core]\nidle-time=0\n\n[shell]\nbackground-color=0x{argb:08x}\n\
                 panel-position=none\nlocking=false\nstartup-animation=none\n"
            ),
        )
        .expect("weston.ini");
        let server = Command::new("weston")
            .arg("--backend=headless-backend.so")
            .arg(renderer(scale))
            .arg(format!("--width={width}"))
            .arg(format!("--height={height}"))
            .arg(format!("--scale={scale}"))
            .arg(format!("--socket={SOCKET}"))
            .arg(format!("--config={}", ini.display()))
            .arg(format!("--log={}", dir.path().join("weston.log").display()))
            // The screenshooter protocol is offered only to a compositor under --debug.
            .arg("--debug")
            .env("XDG_RUNTIME_DIR", dir.path())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "weston (Debian package weston) must be installed: scripts/install-test-deps.sh",
            );
        let mut weston = Weston {
            dir,
            server: KillOnDrop(server),
        };
        wait::poll(
            Duration::from_secs(20),
            Duration::from_millis(200),
            "weston's shell to paint its background",
            || {
                weston.check_running();
                if !weston.socket().exists() {
                    return Err("no socket yet".to_owned());
                }
                let shot = weston.try_shot()?;
                let centre = egui::pos2(shot.width as f32 / 2.0, shot.height as f32 / 2.0);
                match shot.pixel(centre) {
                    Some(c) if near(c, BACKGROUND, 2) => Ok(()),
                    other => Err(format!("the screen's centre is {other:?}")),
                }
            },
        );
        weston
    }

    /// The socket's name, for `WAYLAND_DISPLAY`.
    pub fn display(&self) -> &str {
        SOCKET
    }

    /// Its runtime folder, for `XDG_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> &Path {
        self.dir.path()
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join(SOCKET)
    }

    /// Sets `cmd` up as a client of this compositor: `WAYLAND_DISPLAY` and
    /// `XDG_RUNTIME_DIR` name it, and no `DISPLAY` offers X11 instead.
    pub fn client<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("WAYLAND_DISPLAY", SOCKET)
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_SOCKET")
    }

    /// The whole output as it is now.
    pub fn shot(&self) -> Shot {
        self.try_shot().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Saves the whole output as a PNG file at `path`.
    pub fn save(&self, path: &Path) {
        let (file, _) = self.shoot().unwrap_or_else(|e| panic!("{e}"));
        fs::copy(&file, path).expect("copy the screenshot");
    }

    fn try_shot(&self) -> Result<Shot, String> {
        let (file, folder) = self.shoot()?;
        let shot = Shot::from_file(&file);
        let _ = fs::remove_dir_all(folder);
        Ok(shot)
    }

    /// Runs weston-screenshooter (it writes into its working folder); the file and the
    /// folder made for it.
    fn shoot(&self) -> Result<(PathBuf, PathBuf), String> {
        let folder = tempfile::Builder::new()
            .prefix("shot")
            .tempdir_in(self.dir.path())
            .expect("a folder for the screenshot")
            .keep();
        let mut cmd = Command::new("weston-screenshooter");
        let out = self
            .client(&mut cmd)
            .current_dir(&folder)
            .output()
            .expect("weston-screenshooter (Debian package weston) must be installed");
        let file = fs::read_dir(&folder)
            .expect("the screenshot folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "png"));
        match file {
            Some(f) if out.status.success() => Ok((f, folder)),
            _ => Err(format!(
                "weston-screenshooter made no picture ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }

    /// Fails, with weston's log, when weston has ended.
    pub fn check_running(&mut self) {
        if let Some(status) = self.server.0.try_wait().expect("wait") {
            panic!("weston ended ({status}): {}", self.log());
        }
    }

    /// Waits up to `secs` seconds until a window of at least `min` pixels shows on the
    /// output, drawn (more than 50 colours in it: text, figures); the screenshot and the
    /// window's place on it. Fails with the program's stderr when it ends, or with what
    /// the output showed instead.
    pub fn wait_for_window(
        &mut self,
        program: &mut WindowProgram,
        min: Vec2,
        secs: u64,
    ) -> (Shot, Rect) {
        wait::poll(
            Duration::from_secs(secs),
            Duration::from_millis(500),
            &format!("a drawn window of at least {min:?} on weston"),
            || {
                self.check_running();
                program.check_running();
                let shot = self.try_shot()?;
                let Some(window) = shot.bounds(|c| !near(c, BACKGROUND, 2)) else {
                    return Err("only the background".to_owned());
                };
                let colours = shot.colours_in(window);
                if window.width() >= min.x && window.height() >= min.y && colours > 50 {
                    Ok((shot, window))
                } else {
                    Err(format!("{window:?} with {colours} colours"))
                }
            },
        )
    }

    /// What weston logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("weston.log")).unwrap_or_default()
    }
}
