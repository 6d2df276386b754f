//! `openmosixview`: the main window. With no --cluster, --map or --discover it shows the
//! cluster it showed last time, else this machine, served by a locally started agent.

use anyhow::Result;
use clap::Parser;
use openmosix_gui::desktop::VIEW;
use openmosix_gui::launch::{self, ClusterArgs};
use openmosix_gui::remember::Remembering;
use openmosixview::ViewState;

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
    let opened = launch::remembered_state::<ViewState>(VIEW);
    let (state, rest) = opened.saved.split();
    let mut notes: Vec<String> = opened.problem.into_iter().collect();
    // The cluster named, else the one shown last time, else this machine.
    let mut cluster = args.cluster;
    let remembered = !cluster.is_given() && state.cluster.is_some();
    if remembered && let Some(last) = &state.cluster {
        cluster = last.to_cluster_args();
    }
    let source = match cluster.live() {
        Ok((_, source)) => source,
        // A cluster file of last time that is gone is no reason not to start.
        Err(e) if remembered => {
            let why = format!(
                "cannot show the cluster of last time, {}: {}; showing this machine",
                cluster.name(),
                openmosix_hpc::errors::sentence(e.as_ref())
            );
            eprintln!("{}: {why}", VIEW.id);
            notes.push(why);
            cluster = ClusterArgs::default();
            cluster.live()?.1
        }
        Err(e) => return Err(e),
    };
    let name = cluster.name();
    let mut app = openmosixview::App::new(Box::new(source), name.clone());
    // The Collector menu starts the collector on the same cluster.
    app.set_cluster_args(cluster.to_args()?);
    app.restore(state);
    for note in notes {
        app.say(note);
    }
    launch::run_remembering(
        VIEW,
        &format!("openMosixview — {name}"),
        Remembering::new(app, opened.file, rest),
    )
}
