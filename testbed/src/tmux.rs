//! A real terminal for tests of terminal programs (`openmosix mon`): a tmux server of the
//! test's own (its own socket), a shell in a window of a fixed size, keys typed with
//! `send-keys` and the screen read with `capture-pane`. Needs tmux
//! (scripts/install-test-deps.sh installs it).

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::{describe, wait};

/// A tmux server with one window running a shell; the server is killed when this goes.
#[derive(Debug)]
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts a tmux server on socket `socket` (one left by an earlier run is killed)
    /// with one `cols`×`rows` window running `sh` with the prompt `$ ` and `TERM` set to
    /// `term` inside. Panics when tmux cannot start.
    pub fn start(socket: &str, cols: u16, rows: u16, term: &str) -> Tmux {
        let t = Tmux {
            socket: socket.to_owned(),
        };
        let _ = t.tmux(&["kill-server"]);
        let (cols, rows) = (cols.to_string(), rows.to_string());
        t.ok(&[
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &cols,
            "-y",
            &rows,
            "env",
            "PS1=$ ",
            &format!("TERM={term}"),
            "sh",
        ]);
        t.ok(&["set-option", "-g", "status", "off"]);
        t.ok(&["resize-window", "-t", "main", "-x", &cols, "-y", &rows]);
        t.wait_for_prompt(Duration::from_secs(5));
        t
    }

    /// Waits until the shell prompts again (the screen's last line that is not blank is
    /// `$`: the program before it has ended) and returns the screen.
    pub fn wait_for_prompt(&self, timeout: Duration) -> String {
        self.wait_for(timeout, "the shell's prompt", |s| {
            s.lines().rev().find(|l| !l.trim().is_empty()) == Some("$")
        })
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run tmux (scripts/install-test-deps.sh installs it)")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.tmux(args);
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("tmux {args:?}"), &out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally followed by Enter.
    pub fn type_line(&self, text: &str) {
        self.ok(&["send-keys", "-t", "main", "-l", text]);
        self.keys(&["Enter"]);
    }

    /// Sends tmux key names (`q`, `Up`, `PageDown`, `C-c`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.ok(&args);
    }

    /// The screen's text now, one line per row (trailing blanks trimmed by tmux).
    pub fn screen(&self) -> String {
        self.ok(&["capture-pane", "-p", "-t", "main"])
    }

    /// Waits until the screen satisfies `cond` and returns it; panics with the last
    /// screen when it does not within `timeout`.
    pub fn wait_for(&self, timeout: Duration, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = wait::within(timeout, || {
            last = self.screen();
            cond(&last)
        });
        assert!(
            found.is_some(),
            "no {what} on the screen within {timeout:?}:\n{last}"
        );
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}
