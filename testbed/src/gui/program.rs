//! A window program of the suite started for a test, on an X server or a Wayland
//! compositor, with folders of its own: what an earlier run remembered (window places,
//! theme, filters) cannot move what the test points at.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::gui::wayland::Weston;
use crate::process::KillOnDrop;

/// Where a window program shows its window.
#[derive(Debug, Clone, Copy)]
pub enum Screen<'a> {
    /// An X server's display (`:N`), at one pixel a point.
    X11(&'a str),
    /// A Wayland compositor.
    Wayland(&'a Weston),
}

/// A running window program; killed when dropped.
#[derive(Debug)]
pub struct WindowProgram {
    name: String,
    child: KillOnDrop,
    dir: tempfile::TempDir,
}

impl WindowProgram {
    /// Starts `program` (a path) with `args` on `screen`, with its own HOME, XDG folders
    /// and agent state folder, no cluster from the environment, stderr kept.
    pub fn start<S: AsRef<OsStr>>(program: &str, args: &[S], screen: Screen<'_>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr = fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .env("OPENMOSIX_STATE_DIR", dir.path().join("agent"))
            .env_remove("OPENMOSIX_CLUSTER")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        match screen {
            Screen::X11(display) => {
                cmd.env("DISPLAY", display)
                    .env("WINIT_X11_SCALE_FACTOR", "1")
                    .env_remove("WAYLAND_DISPLAY")
                    .env_remove("WAYLAND_SOCKET");
            }
            Screen::Wayland(weston) => {
                weston.client(&mut cmd);
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let name = Path::new(program)
            .file_name()
            .map_or_else(|| program.to_owned(), |n| n.to_string_lossy().into_owned());
        WindowProgram {
            name,
            child: KillOnDrop(child),
            dir,
        }
    }

    /// Fails, with what the program said on stderr, when it has ended.
    pub fn check_running(&mut self) {
        if let Some(status) = self.child.0.try_wait().expect("wait") {
            panic!("{} ended ({status}): {}", self.name, self.stderr());
        }
    }

    /// What the program wrote on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }
}
