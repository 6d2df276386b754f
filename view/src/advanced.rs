//! The advanced-execution dialog (HOWTO 10.4.3–10.4.6): choose a program and its
//! arguments, how it starts (table 10-1) and where (the host chooser, or the parallel
//! host chooser), then "execute".
//!
//! The arguments line is split into words the way a shell would (quotes, backslashes)
//! but never handed to a shell: the agent runs `[program, words…]` as it is. Each start
//! is an [`Action::Run`]; its [`Outcome::Started`] comes back later through
//! [`AdvancedExecution::on_outcome`] and adds a result line.

use std::collections::VecDeque;

use egui::{Color32, RichText};
use openmosix_client::NodeView;
use openmosix_gui::{Action, ClusterSource, Outcome, Ticket, widgets};
use openmosix_hpc::bytes::BytesOrText;
use openmosix_hpc::model::{NodeId, RunOptions};

use crate::host_chooser;

/// How many result lines stay visible.
const KEPT_RESULTS: usize = 20;
/// How many pending starts are listed one by one.
const LISTED_PENDING: usize = 5;

/// The start options of HOWTO table 10-1, as the checkboxes show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Switches {
    nomig: bool,
    runhome: bool,
    runon: bool,
    cpujob: bool,
    iojob: bool,
    nodecay: bool,
    slowdecay: bool,
    fastdecay: bool,
    parallel: bool,
}

impl Switches {
    /// The options for a start on `node`: locked there only with "run on".
    fn options(&self, node: NodeId) -> RunOptions {
        RunOptions {
            nomig: self.nomig,
            runhome: self.runhome,
            runon: self.runon.then_some(node),
            cpujob: self.cpujob,
            iojob: self.iojob,
            nodecay: self.nodecay,
            slowdecay: self.slowdecay,
            fastdecay: self.fastdecay,
        }
    }

    /// The checkboxes, two columns, keeping the exclusive ones exclusive.
    fn ui(&mut self, ui: &mut egui::Ui) {
        ui.vertical(|ui| {
            ui.checkbox(&mut self.nomig, "no migration")
                .on_hover_text("start a local job which won't migrate");
            ui.checkbox(&mut self.runhome, "run home")
                .on_hover_text("start a local job");
            let hint = "start a job on the node chosen with the host chooser";
            if turned_on(ui, &mut self.runon, "run on", hint) {
                self.parallel = false;
            }
            if turned_on(
                ui,
                &mut self.cpujob,
                "cpu job",
                "start a computation intensive job",
            ) {
                self.iojob = false;
            }
            if turned_on(ui, &mut self.iojob, "io job", "start an io intensive job") {
                self.cpujob = false;
            }
            if turned_on(
                ui,
                &mut self.nodecay,
                "no decay",
                "start a job with no decay",
            ) {
                (self.slowdecay, self.fastdecay) = (false, false);
            }
            if turned_on(
                ui,
                &mut self.slowdecay,
                "slow decay",
                "start a job with slow decay",
            ) {
                (self.nodecay, self.fastdecay) = (false, false);
            }
            if turned_on(
                ui,
                &mut self.fastdecay,
                "fast decay",
                "start a job with fast decay",
            ) {
                (self.nodecay, self.slowdecay) = (false, false);
            }
            let hint = "start the job on every node from the first to the last";
            if turned_on(ui, &mut self.parallel, "parallel", hint) {
                self.runon = false;
            }
        });
    }
}

/// A checkbox `text` with `hint`; whether the user turned it on in this frame (then the
/// switches it excludes go off).
fn turned_on(ui: &mut egui::Ui, on: &mut bool, text: &str, hint: &str) -> bool {
    ui.checkbox(on, text).on_hover_text(hint).changed() && *on
}

/// The advanced-execution window and its state.
#[derive(Debug)]
pub struct AdvancedExecution {
    open: bool,
    program: String,
    arguments: String,
    switches: Switches,
    /// The host chooser's node (0 until the first snapshot).
    node: NodeId,
    first: NodeId,
    last: NodeId,
    inverse: bool,
    /// A problem with the last "execute", in words.
    message: Option<String>,
    /// Starts asked for and not yet answered: ticket and node.
    pending: Vec<(Ticket, NodeId)>,
    /// What came of the starts, oldest first.
    results: VecDeque<String>,
}

impl Default for AdvancedExecution {
    fn default() -> Self {
        Self::new()
    }
}

impl AdvancedExecution {
    /// A closed window with nothing chosen.
    pub fn new() -> Self {
        AdvancedExecution {
            open: false,
            program: String::new(),
            arguments: String::new(),
            switches: Switches::default(),
            node: 0,
            first: 0,
            last: NodeId::MAX,
            inverse: false,
            message: None,
            pending: Vec::new(),
            results: VecDeque::new(),
        }
    }

    /// Opens the window.
    pub fn open(&mut self) {
        self.open = true;
    }

    /// Draws the window if open. `nodes` = current snapshot (ids for the choosers).
    pub fn show(&mut self, ctx: &egui::Context, source: &dyn ClusterSource, nodes: &[NodeView]) {
        if !self.open {
            return;
        }
        let window = egui::Window::new("advanced execution")
            .id(egui::Id::unique("advanced-execution"))
            .default_pos([160.0, 80.0])
            .resizable(false);
        let open = widgets::closable(ctx, window, |ui| self.ui(ui, source, nodes));
        self.open &= open;
    }

    /// Offers an outcome; returns true if it was one of this window's tickets (then it
    /// records "started pid P on node N" or "node N: error").
    pub fn on_outcome(&mut self, ticket: Ticket, outcome: &Outcome) -> bool {
        let Some(at) = self.pending.iter().position(|&(t, _)| t == ticket) else {
            return false;
        };
        let (_, asked) = self.pending.remove(at);
        let line = match outcome {
            Outcome::Started { result: Ok(s), .. } => {
                format!("started pid {} on node {}", s.pid, s.node)
            }
            Outcome::Started {
                node,
                result: Err(e),
            } => format!("node {node}: {e}"),
            _ => {
                format!("unexpected answer (asked on node {asked})")
            }
        };
        self.push_result(line);
        true
    }

    fn push_result(&mut self, line: String) {
        self.results.push_back(line);
        while self.results.len() > KEPT_RESULTS {
            self.results.pop_front();
        }
    }

    /// `[program, words…]`, or what is wrong with them in words.
    fn argv(&self) -> Result<Vec<BytesOrText>, String> {
        let program = self.program.trim();
        if program.is_empty() {
            return Err("choose a program first".into());
        }
        let words = shell_words::split(&self.arguments).map_err(|e| format!("arguments: {e}"))?;
        Ok(std::iter::once(program)
            .chain(words.iter().map(String::as_str))
            .map(BytesOrText::from)
            .collect())
    }

    /// The nodes "execute" starts on.
    fn targets(&self, ids: &[NodeId]) -> Result<Vec<NodeId>, String> {
        if ids.is_empty() {
            return Err("no nodes".into());
        }
        if !self.switches.parallel {
            return Ok(vec![self.node]);
        }
        if self.first > self.last {
            return Err("the first node is after the last node".into());
        }
        let targets = host_chooser::parallel_targets(ids, self.first, self.last, self.inverse);
        if targets.is_empty() {
            return Err(format!("no nodes from {} to {}", self.first, self.last));
        }
        Ok(targets)
    }

    /// Starts the program on every target node.
    fn execute(&mut self, source: &dyn ClusterSource, ids: &[NodeId]) {
        let started = self.argv().and_then(|argv| Ok((argv, self.targets(ids)?)));
        match started {
            Err(e) => self.message = Some(e),
            Ok((argv, targets)) => {
                self.message = None;
                for node in targets {
                    let options = self.switches.options(node);
                    let ticket = source.act(Action::Run {
                        node,
                        argv: argv.clone(),
                        options,
                    });
                    self.pending.push((ticket, node));
                }
            }
        }
    }

    /// Same contents without the window frame (for embedding and tests).
    pub fn ui(&mut self, ui: &mut egui::Ui, source: &dyn ClusterSource, nodes: &[NodeView]) {
        let mut ids: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        ids.dedup();
        self.program_ui(ui);
        ui.separator();
        ui.horizontal_top(|ui| {
            self.switches.ui(ui);
            ui.add_space(16.0);
            ui.vertical(|ui| self.where_ui(ui, &ids));
        });
        ui.separator();
        ui.horizontal(|ui| {
            let execute = ui
                .add_enabled(!ids.is_empty(), egui::Button::new("execute"))
                .on_hover_text("start the program")
                .on_disabled_hover_text("no nodes to start on");
            if execute.clicked() {
                self.execute(source, &ids);
            }
            if ui.button("close").clicked() {
                self.open = false;
            }
        });
        self.results_ui(ui);
    }

    /// The program and its arguments.
    fn program_ui(&mut self, ui: &mut egui::Ui) {
        egui::Grid::new("advanced-execution-program")
            .num_columns(2)
            .show(ui, |ui| {
                widgets::labelled_text(ui, "program", &mut self.program, "/usr/bin/myjob", 380.0);
                ui.end_row();
                let hint = "additional command-line arguments";
                widgets::labelled_text(ui, "arguments", &mut self.arguments, hint, 380.0)
                    .on_hover_text(
                        "split into words like a shell would, but never run through a shell",
                    );
                ui.end_row();
            });
    }

    /// Where it starts: the host chooser, or the parallel one when "parallel" is on.
    fn where_ui(&mut self, ui: &mut egui::Ui, ids: &[NodeId]) {
        ui.add_enabled_ui(!self.switches.parallel, |ui| {
            ui.label(RichText::new("start on node").strong());
            host_chooser::host_dial(ui, &mut self.node, ids);
        });
        ui.add_space(12.0);
        ui.add_enabled_ui(self.switches.parallel, |ui| {
            ui.label(RichText::new("start on nodes").strong());
            host_chooser::parallel_chooser(
                ui,
                &mut self.first,
                &mut self.last,
                &mut self.inverse,
                ids,
            );
        });
    }

    /// What is wrong with "execute", the starts under way and what came of them.
    fn results_ui(&self, ui: &mut egui::Ui) {
        if let Some(message) = &self.message {
            ui.label(RichText::new(message).color(Color32::from_rgb(220, 60, 50)));
        }
        for (_, node) in self.pending.iter().take(LISTED_PENDING) {
            widgets::busy(ui, format!("starting on node {node}…"));
        }
        if self.pending.len() > LISTED_PENDING {
            ui.label(format!("and {} more…", self.pending.len() - LISTED_PENDING));
        }
        for line in &self.results {
            ui.label(line);
        }
    }
}
