//! The application state and the frame loop.

use std::collections::BTreeMap;

use openmosix_client::{ClientOptions, NodeView};
use openmosix_gui::{Action, ClusterSource, LiveCluster, Outcome, Ticket};
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::{AdminChange, NodeId};

use crate::advanced::AdvancedExecution;
use crate::config_dialog::{ConfigDialog, Target};

/// Which kind of file the File menu opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A cluster file (TOML).
    Cluster,
    /// An openmosix.map.
    Map,
}

/// The "open" window of the File menu: which kind of file, and the dialog.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub kind: FileKind,
    pub dialog: openmosix_gui::path_dialog::PathDialog,
}

/// A speed the user set that the agent has not reported back yet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpeedEdit {
    pub value: u32,
    /// Sent to the agent (else the slider is still being dragged).
    pub sent: bool,
}

/// openMosixview.
pub struct App {
    pub(crate) source: Box<dyn ClusterSource>,
    /// What the title bar and About say the cluster is.
    pub(crate) cluster_name: String,
    pub(crate) speed_edits: BTreeMap<NodeId, SpeedEdit>,
    pub(crate) all_speed: u32,
    pub(crate) dialogs: Vec<ConfigDialog>,
    pub(crate) advanced: AdvancedExecution,
    pub(crate) about_open: bool,
    pub(crate) keys_open: bool,
    pub(crate) open_file: Option<OpenFile>,
    /// Status-bar lines, newest last.
    pub(crate) status: Vec<String>,
    /// The source's standing problem last put on the status bar.
    notice: Option<String>,
    speed_tickets: BTreeMap<Ticket, (NodeId, u32)>,
    /// The snapshot of this frame.
    pub(crate) nodes: Vec<NodeView>,
    /// openMosixprocs (View → process box).
    pub(crate) procs: openmosixprocs::ProcsWindow,
    pub(crate) procs_open: bool,
    /// openMosixmigmon (View → migration monitor).
    pub(crate) migmon: openmosixmigmon::MigMon,
    pub(crate) migmon_open: bool,
    /// openMosixanalyzer and openMosixhistory on the collector's history (Analyzer menu).
    pub(crate) analyzer: Option<openmosixanalyzer::Analyzer>,
    pub(crate) analyzer_open: bool,
    /// The analyzer's overview and range, for when it opens.
    pub(crate) analyzer_state: openmosixanalyzer::AnalyzerState,
    pub(crate) history: Option<openmosixhistory::HistoryBrowser>,
    pub(crate) history_open: bool,
    /// The Collector menu's commands.
    pub(crate) collector: crate::collector_control::CollectorControl,
    /// How the collector is told which cluster: `--cluster FILE`, `--map FILE` or nothing.
    pub(crate) cluster_args: Vec<std::ffi::OsString>,
    /// File → add node….
    pub(crate) add_node: crate::add_node::AddNodeDialog,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("cluster", &self.cluster_name)
            .finish_non_exhaustive()
    }
}

impl App {
    /// An app over a source.
    pub fn new(source: Box<dyn ClusterSource>, cluster_name: impl Into<String>) -> App {
        App {
            source,
            cluster_name: cluster_name.into(),
            speed_edits: BTreeMap::new(),
            all_speed: 1000,
            dialogs: Vec::new(),
            advanced: AdvancedExecution::new(),
            about_open: false,
            keys_open: false,
            open_file: None,
            status: Vec::new(),
            notice: None,
            speed_tickets: BTreeMap::new(),
            nodes: Vec::new(),
            procs: openmosixprocs::ProcsWindow::new(),
            procs_open: false,
            migmon: openmosixmigmon::MigMon::new(1),
            migmon_open: false,
            analyzer: None,
            analyzer_open: false,
            analyzer_state: openmosixanalyzer::AnalyzerState::default(),
            history: None,
            history_open: false,
            collector: crate::collector_control::CollectorControl::default(),
            cluster_args: Vec::new(),
            add_node: crate::add_node::AddNodeDialog::default(),
        }
    }

    /// Opens the analyzer on the collector's live history (Analyzer menu).
    pub fn open_analyzer(&mut self) {
        let state = self.analyzer_state;
        match on_live_history(&mut self.analyzer, "analyze", |db| {
            let mut analyzer = openmosixanalyzer::Analyzer::open(db)?;
            analyzer.restore(state);
            Ok(analyzer)
        }) {
            Ok(()) => self.analyzer_open = true,
            Err(e) => self.say(e),
        }
    }

    /// Opens the history browser on the collector's live history (Analyzer menu).
    pub fn open_history(&mut self) {
        match on_live_history(&mut self.history, "browse", |db| {
            openmosixhistory::HistoryBrowser::open(db)
        }) {
            Ok(()) => self.history_open = true,
            Err(e) => self.say(e),
        }
    }

    /// Names the cluster for the programs this window starts (the collector).
    pub fn set_cluster_args(&mut self, args: Vec<std::ffi::OsString>) {
        self.cluster_args = args;
    }

    /// Opens File → add node…, into the cluster file shown if there is one.
    pub fn open_add_node(&mut self) {
        let file = match self.cluster_args.as_slice() {
            [flag, path] if flag == "--cluster" => Some(std::path::PathBuf::from(path)),
            _ => None,
        };
        self.add_node.open(file.as_deref());
    }

    /// Opens File → open cluster file….
    pub fn open_cluster_window(&mut self, kind: FileKind) {
        self.open_file = Some(OpenFile {
            kind,
            dialog: openmosix_gui::path_dialog::PathDialog::default(),
        });
    }

    /// Opens the process box (View menu).
    pub fn open_procs(&mut self) {
        self.procs_open = true;
    }

    /// Opens the migration monitor watching the first node that is up (View menu).
    pub fn open_migmon(&mut self) {
        if !self.migmon_open
            && let Some(n) = self
                .nodes
                .iter()
                .find(|n| n.state == openmosix_client::LinkState::Up)
        {
            self.migmon.set_main_node(n.id);
        }
        self.migmon_open = true;
    }

    /// An app watching `cluster` through live agents.
    pub fn live(cluster: Cluster, name: impl Into<String>) -> std::io::Result<App> {
        let options = ClientOptions::for_cluster(&cluster);
        let source = LiveCluster::start(cluster, &options)?;
        Ok(App::new(Box::new(source), name))
    }

    /// The snapshot drawn in the last frame.
    pub fn snapshot(&self) -> &[NodeView] {
        &self.nodes
    }

    /// Replaces the cluster (File → open); open dialogs of the old one close.
    pub fn open_cluster(&mut self, kind: FileKind, path: &std::path::Path) -> Result<(), String> {
        let cluster = match kind {
            FileKind::Cluster => Cluster::load(Some(path), None),
            FileKind::Map => Cluster::load(None, Some(path)),
        }
        .map_err(|e| e.to_string())?;
        let options = ClientOptions::for_cluster(&cluster);
        let source = LiveCluster::start(cluster, &options).map_err(|e| e.to_string())?;
        self.source = Box::new(source);
        self.cluster_name = path.display().to_string();
        let flag = match kind {
            FileKind::Cluster => "--cluster",
            FileKind::Map => "--map",
        };
        self.cluster_args = vec![flag.into(), path.as_os_str().to_owned()];
        self.dialogs.clear();
        self.speed_edits.clear();
        self.speed_tickets.clear();
        self.say(format!("opened {}", self.cluster_name));
        Ok(())
    }

    /// Adds a status-bar line.
    pub fn say(&mut self, line: impl Into<String>) {
        self.status.push(line.into());
        if self.status.len() > 50 {
            self.status.remove(0);
        }
    }

    /// Sets a node's speed through its agent.
    pub(crate) fn set_speed(&mut self, node: NodeId, speed: u32) {
        let ticket = self.source.act(Action::Apply {
            node,
            changes: vec![AdminChange::Speed { speed }],
            expel: false,
            bring: false,
        });
        self.speed_tickets.insert(ticket, (node, speed));
        self.speed_edits.insert(
            node,
            SpeedEdit {
                value: speed,
                sent: true,
            },
        );
    }

    /// Opens (or brings back) the configuration dialog of a target.
    pub(crate) fn open_dialog(&mut self, target: Target) {
        if let Some(d) = self.dialogs.iter_mut().find(|d| d.target == target) {
            d.open = true;
            return;
        }
        let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        let dialog = ConfigDialog::open(target, &ids, self.source.as_ref());
        self.dialogs.push(dialog);
    }

    /// Takes in what the source has for us; runs every frame.
    fn logic(&mut self) {
        self.nodes = self.source.nodes();
        let notice = self.source.notice();
        if notice != self.notice {
            if let Some(line) = &notice {
                self.say(line.clone());
            }
            self.notice = notice;
        }
        for answer in self.collector.answers() {
            self.say(answer);
        }
        let now = std::time::Instant::now();
        if self.procs_open {
            self.procs.logic(self.source.as_ref());
            self.procs.poll(self.source.as_ref(), now);
        }
        if self.migmon_open {
            self.migmon.poll(self.source.as_ref(), now);
        }
        for (ticket, outcome) in self.source.outcomes() {
            self.on_outcome(ticket, &outcome);
        }
        // A sent speed is shown until the agent reports it.
        let nodes = &self.nodes;
        self.speed_edits.retain(|id, edit| {
            !edit.sent
                || nodes
                    .iter()
                    .find(|n| n.id == *id)
                    .and_then(|n| n.info.as_ref())
                    .is_none_or(|i| i.speed != edit.value)
        });
        self.dialogs.retain(|d| d.open);
    }

    /// Hands an outcome to whoever asked for it: a speed change, the advanced execution,
    /// the process box and the monitor, or a configuration dialog.
    fn on_outcome(&mut self, ticket: Ticket, outcome: &Outcome) {
        if let Some((node, speed)) = self.speed_tickets.remove(&ticket) {
            match outcome {
                Outcome::Admin { result: Ok(_), .. } => {
                    let addr = self.address(node);
                    self.say(format!("set speed to {speed} on {addr}"));
                }
                Outcome::Admin { result: Err(e), .. } => {
                    self.speed_edits.remove(&node);
                    self.say(format!("node {node}: speed not set: {e}"));
                }
                _ => {}
            }
            return;
        }
        if self.advanced.on_outcome(ticket, outcome) {
            return;
        }
        // Both windows read process lists, also those the other asked for.
        let for_procs = self.procs.on_outcome(ticket, outcome);
        let for_migmon = self.migmon.on_outcome(ticket, outcome);
        if for_procs || for_migmon {
            return;
        }
        for d in &mut self.dialogs {
            if d.on_outcome(ticket, outcome) {
                break;
            }
        }
    }

    pub(crate) fn address(&self, node: NodeId) -> String {
        self.nodes
            .iter()
            .find(|n| n.id == node)
            .map_or_else(|| format!("node {node}"), |n| n.address.clone())
    }

    /// Draws the whole application into `ui` (the window's root).
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.source.set_repaint(ui.ctx());
        self.logic();
        crate::menu::keys(self, ui.ctx());
        egui::Panel::top("menu").show(ui, |ui| crate::menu::menu_bar(self, ui));
        egui::Panel::bottom("status").show(ui, |ui| {
            ui.horizontal(|ui| {
                let line = self
                    .status
                    .last()
                    .cloned()
                    .unwrap_or_else(|| "ready".into());
                ui.label(line);
            });
        });
        egui::CentralPanel::default_margins().show(ui, |ui| {
            crate::rows::summary(self, ui);
            ui.separator();
            if crate::first_run::only_this_machine(&self.nodes) {
                crate::first_run::hint(self, ui);
                ui.separator();
            }
            crate::rows::table(self, ui);
        });
        let ctx = ui.ctx().clone();
        let mut dialogs = std::mem::take(&mut self.dialogs);
        for d in &mut dialogs {
            d.show(&ctx, self.source.as_ref());
        }
        dialogs.append(&mut self.dialogs);
        self.dialogs = dialogs;
        let nodes = self.nodes.clone();
        self.advanced.show(&ctx, self.source.as_ref(), &nodes);
        self.procs
            .show(&ctx, &mut self.procs_open, self.source.as_ref());
        self.migmon
            .show(&ctx, &mut self.migmon_open, self.source.as_ref());
        crate::menu::windows(self, &ctx);
        // A node was added: show the cluster file it went into.
        if let Some(path) = self.add_node.show(&ctx)
            && let Err(e) = self.open_cluster(FileKind::Cluster, &path)
        {
            self.say(format!("cannot reopen {}: {e}", path.display()));
        }
        openmosix_gui::framelog::record(&ctx, &self.nodes);
    }
}

/// Fills `window` (the analyzer's or the history browser's), if it is empty, with one
/// opened by `open` on the collector's live history; why not in words (what the window
/// would have done: `doing`).
fn on_live_history<T>(
    window: &mut Option<T>,
    doing: &str,
    open: impl FnOnce(&std::path::Path) -> Result<T, String>,
) -> Result<(), String> {
    if window.is_none() {
        let db = openmosix_store::paths::default_db();
        let opened = open(&db).map_err(|e| {
            format!(
                "no history to {doing} at {}: {e} (start the collector first)",
                db.display()
            )
        })?;
        *window = Some(opened);
    }
    Ok(())
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        App::ui(self, ui);
    }
}
