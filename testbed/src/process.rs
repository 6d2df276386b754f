//! Child processes a test starts: killed when the test ends, stopped with SIGTERM; an X
//! server for a real window.

use std::io::Read as _;
use std::io::{BufRead as _, BufReader};
use std::ops::Range;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// Runs `cmd` to its end as [`Command::output`] does, but fails the test, with what the
/// command wrote so far, when it has not ended within `limit`: a command that hangs is
/// a failure that names itself, not a run that CI cuts off an hour later.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Read on threads of their own, so that a full pipe never stalls the child. A
    // process the child left behind may hold a pipe open: once the child is killed,
    // what its stderr said so far is taken without waiting for its end.
    let collect = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let said = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&said);
        let reader = std::thread::spawn(move || {
            let Some(mut p) = pipe else { return };
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = p.read(&mut buf) {
                into.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]);
            }
        });
        (said, reader)
    };
    let taken = |said: &Arc<Mutex<Vec<u8>>>| {
        std::mem::take(&mut *said.lock().unwrap_or_else(PoisonError::into_inner))
    };
    let stdout = collect(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = collect(child.stderr.take().map(|p| Box::new(p) as _));
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            let said = taken(&stderr.0);
            panic!(
                "{cmd:?} did not end within {limit:?}; its stderr:\n{}",
                String::from_utf8_lossy(&said)
            );
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    };
    let _ = stdout.1.join();
    let _ = stderr.1.join();
    Output {
        status,
        stdout: taken(&stdout.0),
        stderr: taken(&stderr.0),
    }
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
        Xvfb::spawn(None, size).unwrap_or_else(|said| panic!("Xvfb said {said:?}"))
    }

    /// [`Xvfb::start`] on the first free display among `displays` (e.g. `70..80`), for
    /// tests that keep to a range of their own.
    pub fn start_in(displays: Range<u32>, size: &str) -> Xvfb {
        let mut said = Vec::new();
        for n in displays.clone() {
            if Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            match Xvfb::spawn(Some(n), size) {
                Ok(x) => return x,
                Err(e) => said.push(format!(":{n}: {e:?}")),
            }
        }
        panic!("no display of {displays:?} is free for Xvfb: {said:?}");
    }

    /// Xvfb on display `n` (any free one for `None`), or what it said instead of a
    /// display number.
    fn spawn(n: Option<u32>, size: &str) -> Result<Xvfb, String> {
        let mut cmd = Command::new("Xvfb");
        if let Some(n) = n {
            cmd.arg(format!(":{n}"));
        }
        let mut server = cmd
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
        if line.trim().parse::<u32>().is_err() {
            return Err(line);
        }
        Ok(Xvfb {
            display: format!(":{}", line.trim()),
            _server: server,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_ends_gives_what_it_wrote() {
        let out = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    #[should_panic(expected = "did not end within 300ms; its stderr:\nstuck")]
    fn a_command_that_hangs_fails_the_test_with_its_stderr() {
        // The child leaves a sleeper holding its pipes: the failure still comes at once.
        output_within(
            Command::new("sh").args(["-c", "echo stuck >&2; sleep 30 & sleep 30"]),
            Duration::from_millis(300),
        );
    }
}
