//! The real binary in a real X server (Xvfb): it starts, shows this machine through a
//! locally spawned agent, and draws something that is not a blank screen.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn openmosixview_draws_under_xvfb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let display = format!(":{}", 90 + std::process::id() % 9);
    let _x = Kill(
        Command::new("Xvfb")
            .args([
                display.as_str(),
                "-screen",
                "0",
                "1024x640x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb) must be installed: scripts/install-test-deps.sh"),
    );
    std::thread::sleep(Duration::from_millis(700));
    let mut view = Kill(
        Command::new(env!("CARGO_BIN_EXE_openmosixview"))
            .env("DISPLAY", &display)
            .env("OPENMOSIX_STATE_DIR", dir.path().join("state"))
            .env_remove("OPENMOSIX_CLUSTER")
            .env_remove("WAYLAND_DISPLAY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openmosixview"),
    );
    let shot = dir.path().join("shot.png");
    let deadline = Instant::now() + Duration::from_secs(20);
    let spread = loop {
        std::thread::sleep(Duration::from_millis(1000));
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
            .args(["-display", display.as_str(), "-window", "root"])
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
        if colours > 50 || Instant::now() > deadline {
            break colours;
        }
    };
    assert!(
        spread > 50,
        "nothing drawn: the screen has {spread} colours"
    );
}
