//! Child processes a test starts: killed when the test ends, stopped with SIGTERM.

use std::process::{Child, Command, ExitStatus};
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
