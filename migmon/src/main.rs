//! `openmosixmigmon`: the migration monitor on its own.

use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use openmosix_gui::LiveCluster;
use openmosix_gui::desktop::MIGMON;
use openmosix_gui::launch::{self, ClusterArgs};
use openmosix_gui::remember::{Remember, Remembering};
use openmosix_hpc::model::NodeId;
use openmosixmigmon::MigMon;

/// openMosixmigmon: the nodes as penguins in a circle; drag a process onto a penguin to
/// move it there, double-click a migrated one to send it home.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The node to watch (the large penguin); default: the one watched last time, else
    /// the first node.
    #[arg(long, value_name = "N")]
    watch: Option<u32>,
}

struct App {
    source: LiveCluster,
    monitor: MigMon,
}

/// What the monitor remembers between runs (docs/state.md).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct State {
    /// The node watched.
    watch: Option<NodeId>,
}

impl Remember for App {
    type State = State;

    fn remembered(&self) -> State {
        State {
            watch: Some(self.monitor.main_node()),
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        self.monitor.root_ui(ui, &self.source, Instant::now());
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
    // Frames only for what the monitor draws (an idle cluster changes nothing of it).
    source.wake_only_for(openmosixmigmon::Unchanged::default());
    let opened = launch::remembered_state::<State>(MIGMON);
    let (state, rest) = opened.saved.split();
    // The node watched last time, if it is still in the cluster (or it is discovered).
    let remembered = state
        .watch
        .filter(|id| cluster.discovery.is_some() || cluster.nodes.iter().any(|n| n.id == *id));
    let main_node = args
        .watch
        .or(remembered)
        .or_else(|| cluster.nodes.first().map(|n| n.id))
        .unwrap_or(1);
    let app = App {
        source,
        monitor: MigMon::new(main_node),
    };
    let app = Remembering::new(app, opened.file, rest);
    launch::run_remembering(MIGMON, "openMosixmigmon", app)
}
