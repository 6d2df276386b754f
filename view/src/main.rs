//! `openmosixview`: the main window. With no --cluster or --map it shows this machine,
//! served by a locally started agent.

use anyhow::Result;
use clap::Parser;
use openmosix_gui::desktop::VIEW;
use openmosix_gui::launch::{self, ClusterArgs, run_window};

/// openMosixview: every node of a cluster at a glance, with its speed, load and memory,
/// and the openMosix switches a click away.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    cluster: ClusterArgs,
}

fn main() -> std::process::ExitCode {
    openmosix_docgen::generate_if_asked::<Args>(VIEW.id);
    launch::main(VIEW.id, run)
}

fn run() -> Result<()> {
    let args = Args::parse();
    openmosix_hpc::logging::init("warn");
    let (_, source) = args.cluster.live()?;
    let name = args.cluster.name();
    let mut app = openmosixview::App::new(Box::new(source), name.clone());
    // The Collector menu starts the collector on the same cluster.
    app.set_cluster_args(args.cluster.to_args()?);
    run_window(
        VIEW,
        &format!("openMosixview — {name}"),
        [1000.0, 520.0],
        app,
    )
}
