//! What the main window remembers between runs (docs/state.md): the cluster it showed,
//! which windows were open, the process box's sort and filter, the node the migration
//! monitor watched and the analyzer's overview and range. Where the windows were and the
//! theme are kept by [`openmosix_gui::remember::Remembering`] around the [`App`].

use std::ffi::OsString;
use std::path::PathBuf;

use openmosix_gui::launch::ClusterArgs;
use openmosix_gui::remember::Remember;
use openmosix_hpc::model::NodeId;
use openmosixanalyzer::AnalyzerState;
use openmosixprocs::ProcsState;
use serde::{Deserialize, Serialize};

use crate::App;

/// The cluster the window showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterChoice {
    /// A cluster file (absolute path).
    Cluster(String),
    /// An openmosix.map (absolute path).
    Map(String),
    /// The nodes discovered on this interface.
    Discover(String),
}

impl ClusterChoice {
    /// The choice the command-line options `args` (`--cluster FILE`, `--map FILE`,
    /// `--discover IFACE`) make; none for this machine, or a path that is not UTF-8.
    pub fn from_args(args: &[OsString]) -> Option<ClusterChoice> {
        let [flag, value] = args else {
            return None;
        };
        let path = || {
            std::path::absolute(value)
                .ok()
                .and_then(|p| p.to_str().map(str::to_owned))
        };
        match flag.to_str()? {
            "--cluster" => path().map(ClusterChoice::Cluster),
            "--map" => path().map(ClusterChoice::Map),
            "--discover" => value
                .to_str()
                .map(|i| ClusterChoice::Discover(i.to_owned())),
            _ => None,
        }
    }

    /// The window programs' options for it.
    pub fn to_cluster_args(&self) -> ClusterArgs {
        let mut args = ClusterArgs::default();
        match self {
            ClusterChoice::Cluster(p) => args.cluster = Some(PathBuf::from(p)),
            ClusterChoice::Map(p) => args.map = Some(PathBuf::from(p)),
            ClusterChoice::Discover(i) => args.discover = Some(i.clone()),
        }
        args
    }
}

/// Which windows of the main window were open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OpenWindows {
    /// The process box.
    pub procs: bool,
    /// The migration monitor.
    pub migmon: bool,
    /// The analyzer.
    pub analyzer: bool,
    /// The history browser.
    pub history: bool,
}

/// What the main window keeps in its state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewState {
    /// The cluster shown (none: this machine).
    pub cluster: Option<ClusterChoice>,
    /// The windows open.
    pub open: OpenWindows,
    /// The process box's choice, filter, tree and sort.
    pub procs: ProcsState,
    /// The node the migration monitor watched.
    pub migmon_watch: Option<NodeId>,
    /// The analyzer's overview, "refresh" and range.
    pub analyzer: AnalyzerState,
}

impl App {
    /// What to remember, now.
    pub fn remembered(&self) -> ViewState {
        ViewState {
            cluster: ClusterChoice::from_args(&self.cluster_args),
            open: OpenWindows {
                procs: self.procs_open,
                migmon: self.migmon_open,
                analyzer: self.analyzer_open && self.analyzer.is_some(),
                history: self.history_open && self.history.is_some(),
            },
            procs: self.procs.remembered(),
            migmon_watch: Some(self.migmon.main_node()),
            analyzer: self
                .analyzer
                .as_ref()
                .map_or(self.analyzer_state, openmosixanalyzer::Analyzer::remembered),
        }
    }

    /// Puts the window back as remembered: its windows opened again (the analyzer and
    /// the history say on the status line if the history is gone), with their settings.
    /// The cluster is the caller's: it is chosen before the app is made.
    pub fn restore(&mut self, state: ViewState) {
        self.procs.restore(state.procs);
        self.procs_open = state.open.procs;
        if let Some(node) = state.migmon_watch {
            self.migmon.set_main_node(node);
        }
        self.migmon_open = state.open.migmon;
        self.analyzer_state = state.analyzer;
        if state.open.analyzer {
            self.open_analyzer();
        }
        if state.open.history {
            self.open_history();
        }
    }
}

impl Remember for App {
    type State = ViewState;

    fn remembered(&self) -> ViewState {
        App::remembered(self)
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        App::ui(self, ui);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_choices_go_to_options_and_back() {
        for choice in [
            ClusterChoice::Cluster("/c/cluster.toml".into()),
            ClusterChoice::Map("/etc/openmosix.map".into()),
            ClusterChoice::Discover("eth0".into()),
        ] {
            let args = choice.to_cluster_args().to_args().unwrap();
            assert_eq!(ClusterChoice::from_args(&args), Some(choice));
        }
        assert_eq!(ClusterChoice::from_args(&[]), None);
        // A relative path is remembered as an absolute one.
        let args = ["--cluster".into(), "c.toml".into()];
        let Some(ClusterChoice::Cluster(p)) = ClusterChoice::from_args(&args) else {
            panic!("a cluster file");
        };
        assert!(p.starts_with('/') && p.ends_with("/c.toml"), "{p}");
    }
}
