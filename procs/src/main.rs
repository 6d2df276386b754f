//! `openmosixprocs`: the process box on its own. With no --cluster or --map it shows
//! this machine, served by a locally started agent.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use clap::Parser;
use openmosix_agent::client::ClientOptions;
use openmosix_agent::map::Cluster;
use openmosix_gui::LiveCluster;
use openmosixprocs::ProcsWindow;

/// openMosixprocs: every process of the cluster, where it runs, and a migrator for each.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A cluster file (TOML: node ids and ssh destinations; docs/cluster-files.md).
    #[arg(long, value_name = "FILE", env = "OPENMOSIX_CLUSTER")]
    cluster: Option<PathBuf>,
    /// An openmosix.map (HOWTO 4.4.2); nodes are reached by ssh at their addresses.
    #[arg(long, value_name = "FILE", conflicts_with = "cluster")]
    map: Option<PathBuf>,
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
    let options = ClientOptions::for_cluster(&cluster);
    let source =
        LiveCluster::start(cluster, &options).context("starting the background runtime")?;
    let app = App {
        source,
        window: ProcsWindow::new(),
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("openMosixprocs")
            .with_inner_size([1100.0, 640.0]),
        ..Default::default()
    };
    eframe::run_native("openMosixprocs", options, Box::new(|_cc| Ok(Box::new(app))))
        .map_err(|e| anyhow!("cannot open the window: {e}"))
}
