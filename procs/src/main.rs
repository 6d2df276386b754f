//! `openmosixprocs`: the process box on its own. With no --cluster or --map it shows
//! this machine, served by a locally started agent.

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use openmosix_gui::LiveCluster;
use openmosix_gui::desktop::PROCS;
use openmosix_gui::launch::{self, ClusterArgs};
use openmosix_gui::remember::{Remember, Remembering};
use openmosixprocs::{ProcsState, ProcsWindow};

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

impl Remember for App {
    type State = ProcsState;

    fn remembered(&self) -> ProcsState {
        self.window.remembered()
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
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
    let opened = launch::remembered_state::<ProcsState>(PROCS);
    let (state, rest) = opened.saved.split();
    let mut window = ProcsWindow::new();
    window.restore(state);
    let app = Remembering::new(App { source, window }, opened.file, rest);
    launch::run_remembering(PROCS, "openMosixprocs", app)
}
