//! `openmosixanalyzer [DB]`: the load and memory history of the cluster (HOWTO 10.7).

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Parser;
use openmosix_gui::desktop::ANALYZER;
use openmosix_gui::launch;
use openmosix_gui::remember::{Remember, Remembering};
use openmosixanalyzer::AnalyzerState;

/// openMosixanalyzer: the load and memory history of the cluster, from the database
/// openmosixcollector writes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The history to open (the collector's live link or a saved history-….db).
    #[arg(value_name = "DB", conflicts_with = "db")]
    file: Option<PathBuf>,
    /// The same as DB [default: the collector's: /var/lib/openmosix/collector/history.db
    /// for root, $XDG_STATE_HOME/openmosix/collector/history.db for other users].
    #[arg(long, value_name = "PATH", env = "OPENMOSIX_COLLECTOR_DB")]
    db: Option<PathBuf>,
    /// Read the collector's metrics from this Prometheus server (http://host:port)
    /// instead of a history file: load, memory, checkpoints and events.
    #[arg(long, value_name = "URL", conflicts_with = "file")]
    prometheus: Option<String>,
    /// Turn "refresh" on (follow the live database); else as it was last time.
    #[arg(long)]
    refresh: bool,
    /// Start with the memory overview (else the one shown last time).
    #[arg(long)]
    memory: bool,
}

/// The eframe wrapper.
#[derive(Debug)]
struct App(openmosixanalyzer::Analyzer);

impl Remember for App {
    type State = AnalyzerState;

    fn remembered(&self) -> AnalyzerState {
        self.0.remembered()
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        self.0.ui(ui);
    }
}

fn main() -> std::process::ExitCode {
    openmosix_docgen::generate_if_asked::<Args>(ANALYZER.id);
    launch::main(ANALYZER.id, run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    let (mut analyzer, title) = match &args.prometheus {
        Some(url) => {
            let a = openmosixanalyzer::Analyzer::open_prometheus(url).map_err(|e| anyhow!(e))?;
            let title = format!("openMosixanalyzer — Prometheus {url}");
            (a, title)
        }
        None => {
            let path = args
                .file
                .or(args.db)
                .unwrap_or_else(openmosix_store::paths::default_db);
            let a = openmosixanalyzer::Analyzer::open(&path).map_err(|e| anyhow!(e))?;
            (a, format!("openMosixanalyzer — {}", path.display()))
        }
    };
    let opened = launch::remembered_state::<AnalyzerState>(ANALYZER);
    let (state, rest) = opened.saved.split();
    analyzer.restore(state);
    if args.refresh {
        analyzer.set_refresh(true);
    }
    if args.memory {
        analyzer.set_overview(openmosixanalyzer::Overview::Memory);
    }
    launch::run_remembering(
        ANALYZER,
        &title,
        Remembering::new(App(analyzer), opened.file, rest),
    )
}
