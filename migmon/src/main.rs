//! `openmosixmigmon`: the migration monitor on its own.

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use openmosix_gui::desktop::MIGMON;
use openmosix_gui::launch::{self, ClusterArgs, run_window};
use openmosix_gui::{ClusterSource, LiveCluster};
use openmosixmigmon::MigMon;

/// openMosixmigmon: the nodes as penguins in a circle; drag a process onto a penguin to
/// move it there, double-click a migrated one to send it home.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The node to watch (the large penguin); default: the first node.
    #[arg(long, value_name = "N")]
    watch: Option<u32>,
}

struct App {
    source: LiveCluster,
    monitor: MigMon,
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.source.set_repaint(ui.ctx());
        self.monitor.poll(&self.source, Instant::now());
        for (ticket, outcome) in self.source.outcomes() {
            self.monitor.on_outcome(ticket, &outcome);
        }
        egui::CentralPanel::default_margins().show(ui, |ui| self.monitor.ui(ui, &self.source));
    }
}

fn main() -> std::process::ExitCode {
    openmosix_docgen::generate_if_asked::<Args>(MIGMON.id);
    launch::main(MIGMON.id, run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    openmosix_hpc::logging::init("warn");
    let (cluster, source) = args.cluster.live()?;
    let main_node = args
        .watch
        .or_else(|| cluster.nodes.first().map(|n| n.id))
        .unwrap_or(1);
    let app = App {
        source,
        monitor: MigMon::new(main_node),
    };
    run_window(MIGMON, "openMosixmigmon", [1000.0, 760.0], app)
}
