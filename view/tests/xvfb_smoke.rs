//! The real binary in a real X server (Xvfb): it starts, shows this machine through a
//! locally spawned agent, and draws something that is not a blank screen.

use std::process::{Command, Stdio};
use std::time::Duration;

use openmosix_testbed::process::{KillOnDrop, Xvfb};
use openmosix_testbed::wait;

#[test]
fn openmosixview_draws_under_xvfb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let x = Xvfb::start("1024x640x24");
    let display = x.display.as_str();
    let mut view = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_openmosixview"))
            .env("DISPLAY", display)
            .env("OPENMOSIX_STATE_DIR", dir.path().join("state"))
            // What the window remembers stays in the test's folder (docs/state.md).
            .env("XDG_STATE_HOME", dir.path().join("xdg-state"))
            .env_remove("OPENMOSIX_CLUSTER")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openmosixview"),
    );
    let shot = dir.path().join("shot.png");
    wait::poll(
        Duration::from_secs(20),
        Duration::from_millis(1000),
        "something drawn",
        || {
            assert!(
                view.0.try_wait().expect("wait").is_none(),
                "openmosixview exited early: {:?}",
                view.0.stderr.take().map(|mut e| {
                    let mut s = String::new();
                    let _ = std::io::Read::read_to_string(&mut e, &mut s);
                    s
                })
            );
            let st = Command::new("import")
                .args(["-display", display, "-window", "root"])
                .arg(&shot)
                .status()
                .expect("import (Debian package imagemagick) must be installed");
            assert!(st.success());
            // Distinct colours on the screen: an empty screen or a bare window has one or
            // two; text, lamps and bars bring hundreds (anti-aliasing).
            let out = Command::new("identify")
                .args(["-format", "%k"])
                .arg(&shot)
                .output()
                .expect("identify");
            let colours: u32 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0);
            if colours > 50 {
                Ok(())
            } else {
                Err(format!("nothing drawn: the screen has {colours} colours"))
            }
        },
    );
    // It keeps its state in a private file there.
    let state = dir
        .path()
        .join("xdg-state/openmosixview/openmosixview.json");
    wait::poll(
        Duration::from_secs(10),
        Duration::from_millis(200),
        "the state file written",
        || match std::fs::metadata(&state) {
            Ok(m) => {
                assert_eq!(
                    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777,
                    0o600
                );
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
    );
}
