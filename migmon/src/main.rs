//! `openmosixmigmon`: the migration monitor on its own.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use clap::Parser;
use openmosix_agent::client::ClientOptions;
use openmosix_agent::map::Cluster;
use openmosix_gui::{ClusterSource, LiveCluster};
use openmosixmigmon::MigMon;

/// openMosixmigmon: the nodes as penguins in a circle; drag a process onto a penguin to
/// move it there, double-click a migrated one to send it home.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A cluster file (TOML: node ids and ssh destinations; docs/cluster-files.md).
    #[arg(long, value_name = "FILE", env = "OPENMOSIX_CLUSTER")]
    cluster: Option<PathBuf>,
    /// An openmosix.map (HOWTO 4.4.2); nodes are reached by ssh at their addresses.
    #[arg(long, value_name = "FILE", conflicts_with = "cluster")]
    map: Option<PathBuf>,
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

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OPENMOSIX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cluster = Cluster::load(args.cluster.as_deref(), args.map.as_deref())?;
    let main_node = args
        .watch
        .or_else(|| cluster.nodes.first().map(|n| n.id))
        .unwrap_or(1);
    let options = ClientOptions::for_cluster(&cluster);
    let source =
        LiveCluster::start(cluster, &options).context("starting the background runtime")?;
    let app = App {
        source,
        monitor: MigMon::new(main_node),
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("openMosixmigmon")
            .with_inner_size([1000.0, 760.0]),
        ..Default::default()
    };
    eframe::run_native(
        "openMosixmigmon",
        options,
        Box::new(|_cc| Ok(Box::new(app))),
    )
    .map_err(|e| anyhow!("cannot open the window: {e}"))
}
