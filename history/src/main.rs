//! `openmosixhistory [DB] [--at TIME]`: the history browser on its own.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use openmosix_gui::desktop::HISTORY;
use openmosix_gui::launch;
use openmosix_gui::remember::{Remember, Remembering};
use openmosixhistory::{HistoryBrowser, Time, parse_time};

/// openMosixhistory: which process ran on which node, at any time the collector recorded.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The history to read: the collector's live link or a saved file (default: the
    /// collector's default database).
    #[arg(value_name = "DB")]
    db: Option<PathBuf>,
    /// Show this time first: seconds since the epoch or `YYYY-mm-dd HH:MM:SS` (UTC).
    #[arg(long, value_name = "TIME", value_parser = at_time)]
    at: Option<Time>,
}

fn at_time(s: &str) -> Result<Time, String> {
    parse_time(s).ok_or_else(|| {
        format!("not a time: {s:?} (seconds since the epoch or YYYY-mm-dd HH:MM:SS UTC)")
    })
}

struct App {
    browser: HistoryBrowser,
}

impl Remember for App {
    /// Only the window's place and size are kept.
    type State = ();

    fn remembered(&self) {}

    fn ui(&mut self, ui: &mut egui::Ui) {
        egui::CentralPanel::default_margins().show(ui, |ui| self.browser.ui(ui));
    }
}

fn main() -> ExitCode {
    openmosix_docgen::generate_if_asked::<Args>(HISTORY.id);
    launch::main(HISTORY.id, run)
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = args.db.unwrap_or_else(openmosix_store::paths::default_db);
    let mut browser = match HistoryBrowser::open(&db) {
        Ok(b) => b,
        Err(e) => HistoryBrowser::unopened(&db, Some(e)),
    };
    if let Some(t) = args.at {
        browser.set_time(t);
    }
    let opened = launch::remembered_state::<()>(HISTORY);
    let ((), rest) = opened.saved.split();
    launch::run_remembering(
        HISTORY,
        &format!("openMosixhistory — {}", db.display()),
        Remembering::new(App { browser }, opened.file, rest),
    )
}
