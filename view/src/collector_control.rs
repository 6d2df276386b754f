//! The Collector menu: starts, stops, checkpoints and rotates `openmosixcollector` for the
//! cluster this window shows. The command runs on a thread of its own; its one-line
//! answer comes back to the status line.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::mpsc;

/// What the menu asks of the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorCommand {
    /// `-d`: start it as a daemon.
    Start,
    /// `-k`: stop it.
    Stop,
    /// `-n`: write a checkpoint.
    Checkpoint,
    /// `-r`: save the history and start a new one.
    Rotate,
}

impl CollectorCommand {
    fn flag(self) -> &'static str {
        match self {
            CollectorCommand::Start => "-d",
            CollectorCommand::Stop => "-k",
            CollectorCommand::Checkpoint => "-n",
            CollectorCommand::Rotate => "-r",
        }
    }

    fn done(self) -> &'static str {
        match self {
            CollectorCommand::Start => "openmosixcollector started",
            CollectorCommand::Stop => "openmosixcollector stopped",
            CollectorCommand::Checkpoint => "checkpoint written to the history",
            CollectorCommand::Rotate => "history saved; a new one started",
        }
    }
}

/// Runs collector commands without blocking the UI.
#[derive(Debug)]
pub struct CollectorControl {
    program: PathBuf,
    results: mpsc::Receiver<String>,
    sender: mpsc::Sender<String>,
    /// Commands still running.
    pub running: usize,
}

/// `openmosixcollector` beside this program, else on PATH.
fn collector_program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .skip(1)
                .take(2)
                .map(|d| d.join("openmosixcollector"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("openmosixcollector"))
}

impl Default for CollectorControl {
    fn default() -> Self {
        let (sender, results) = mpsc::channel();
        CollectorControl {
            program: collector_program(),
            results,
            sender,
            running: 0,
        }
    }
}

impl CollectorControl {
    /// Starts `command`; `cluster_args` name the cluster (`--cluster FILE` …).
    pub fn run(
        &mut self,
        command: CollectorCommand,
        cluster_args: &[OsString],
        ctx: &egui::Context,
    ) {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.arg(command.flag());
        if command == CollectorCommand::Start {
            cmd.args(cluster_args);
        }
        cmd.stdin(std::process::Stdio::null());
        let sender = self.sender.clone();
        let ctx = ctx.clone();
        let program = self.program.display().to_string();
        self.running += 1;
        std::thread::spawn(move || {
            let line = match cmd.output() {
                Ok(out) if out.status.success() => command.done().to_owned(),
                Ok(out) => {
                    let err = String::from_utf8_lossy(&out.stderr);
                    let last = err
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("failed");
                    last.trim().to_owned()
                }
                Err(e) => format!("cannot run {program}: {e}"),
            };
            let _ = sender.send(line);
            ctx.request_repaint();
        });
    }

    /// Answers that arrived since the last call.
    pub fn answers(&mut self) -> Vec<String> {
        let got: Vec<String> = self.results.try_iter().collect();
        self.running = self.running.saturating_sub(got.len());
        got
    }
}
