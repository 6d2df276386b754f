//! Child processes a test starts: killed when the test ends, stopped with SIGTERM; an X
//! server for a real window.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::wait;

/// A child process that is killed (and reaped) when this guard goes, even when the
/// test fails half-way.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `child` SIGTERM and waits for it to end; panics saying that `what` ignored
/// SIGTERM when it still runs after `timeout`. The caller judges the exit status.
pub fn terminate(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("cannot run kill");
    assert!(term.success());
    wait::poll(
        timeout,
        Duration::from_millis(50),
        &format!("{what} to end after SIGTERM"),
        || child.try_wait().expect("wait").ok_or(""),
    )
}

/// A virtual X server (Xvfb) of its own: it picks a free display and says which.
#[derive(Debug)]
pub struct Xvfb {
    /// `:N`, for `DISPLAY`.
    pub display: String,
    _server: KillOnDrop,
}

impl Xvfb {
    /// Starts Xvfb with one screen of `size` (e.g. `1100x600x24`), no TCP, and waits
    /// until it names its display.
    pub fn start(size: &str) -> Xvfb {
        let mut server = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", size, "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb) must be installed: scripts/install-test-deps.sh");
        let stdout = server.stdout.take().expect("Xvfb stdout");
        let server = KillOnDrop(server);
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("Xvfb's display number");
        assert!(line.trim().parse::<u32>().is_ok(), "Xvfb said {line:?}");
        Xvfb {
            display: format!(":{}", line.trim()),
            _server: server,
        }
    }
}
