//! `openmosixview`: the main window. With no --cluster or --map it shows this machine,
//! served by a locally started agent.

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow};
use clap::Parser;
use openmosix_agent::map::Cluster;

/// openMosixview: every node of a cluster at a glance, with its speed, load and memory,
/// and the openMosix switches a click away.
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

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("openmosixview: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OPENMOSIX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cluster = Cluster::load(args.cluster.as_deref(), args.map.as_deref())?;
    let name = args
        .cluster
        .or(args.map)
        .map_or_else(|| "this machine".to_owned(), |p| p.display().to_string());
    let app = openmosixview::App::live(cluster, name.clone())
        .context("starting the background runtime")?;
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(format!("openMosixview — {name}"))
            .with_inner_size([1000.0, 520.0]),
        ..Default::default()
    };
    eframe::run_native("openMosixview", options, Box::new(|_cc| Ok(Box::new(app))))
        .map_err(|e| anyhow!("cannot open the window: {e}"))
}
