//! `openmosixprocs`: the process box on its own. With no --cluster or --map it shows
//! this machine, served by a locally started agent.

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use openmosix_gui::LiveCluster;
use openmosix_gui::desktop::PROCS;
use openmosix_gui::launch::{self, ClusterArgs, run_window};
use openmosixprocs::ProcsWindow;

/// openMosixprocs: every process of the cluster, where it runs, and a migrator for each.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    cluster: ClusterArgs,
}

struct App {
    source: LiveCluster,
    window: ProcsWindow,
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.window.root_ui(ui, &self.source, Instant::now());
    }
}

fn main() -> std::process::ExitCode {
    openmosix_docgen::generate_if_asked::<Args>(PROCS.id);
    launch::main(PROCS.id, run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    openmosix_hpc::logging::init("warn");
    let (_, source) = args.cluster.live()?;
    let app = App {
        source,
        window: ProcsWindow::new(),
    };
    run_window(PROCS, "openMosixprocs", [1100.0, 640.0], app)
}
