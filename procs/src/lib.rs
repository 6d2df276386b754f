//! openMosixprocs (HOWTO 10.5): the process box, the migrator window of each process and
//! the remote-procs window, over a [`ClusterSource`].
//!
//! [`ProcsWindow`] owns the state. Each frame the host calls [`ProcsWindow::logic`] (the
//! node snapshot), [`ProcsWindow::poll`] with the current time (asks for the process lists
//! once a second while the window is open), hands every outcome of the source to
//! [`ProcsWindow::on_outcome`] (which says whether it was for this window), and draws with
//! [`ProcsWindow::ui`] + [`ProcsWindow::windows`] or [`ProcsWindow::show`]. Nothing waits:
//! actions go to the source and their outcomes come back on later frames.

pub mod migrator;
pub mod process_box;
pub mod remote;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use openmosix_client::NodeView;
use openmosix_gui::{Action, ClusterSource, Outcome, Ticket};
use openmosix_hpc::model::{NodeId, ProcInfo};

pub use migrator::Migrator;
pub use process_box::{BoxCommand, Choice, Column, ProcessBox, Row};
pub use remote::RemoteProcs;

/// How often the process lists are read while the window is open.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// A list request with no answer after this long is asked again.
const GIVE_UP: Duration = Duration::from_secs(15);

/// The latest process list of one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeProcs {
    /// Its processes, as of the last answer.
    pub procs: Vec<ProcInfo>,
    /// Why the last request failed, if it did (the processes are then the older ones).
    pub error: Option<String>,
    /// Whether an answer has arrived.
    pub loaded: bool,
}

/// Every node's latest process list.
pub type Lists = BTreeMap<NodeId, NodeProcs>;

/// What the process box remembers between runs (docs/state.md): whose processes, the
/// filter, the tree switch and the sort.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ProcsState {
    /// Whose processes are shown.
    pub choice: Choice,
    /// The filter text.
    pub filter: String,
    /// Children indented under their parents.
    pub tree: bool,
    /// The column sorted by.
    pub sort: Column,
    /// Sorted high to low.
    pub descending: bool,
}

/// openMosixprocs: the process box and the windows it opens.
#[derive(Debug)]
pub struct ProcsWindow {
    /// The process box's state (choice, filter, sort, tree).
    pub process_box: ProcessBox,
    lists: Lists,
    nodes: Vec<NodeView>,
    pending: BTreeMap<Ticket, (NodeId, Instant)>,
    last_poll: Option<Instant>,
    visible: bool,
    migrators: Vec<Migrator>,
    next_serial: u64,
    remote: Option<RemoteProcs>,
}

impl Default for ProcsWindow {
    fn default() -> Self {
        ProcsWindow::new()
    }
}

impl ProcsWindow {
    /// A closed-over-nothing window showing all nodes.
    pub fn new() -> ProcsWindow {
        ProcsWindow {
            process_box: ProcessBox::default(),
            lists: Lists::new(),
            nodes: Vec::new(),
            pending: BTreeMap::new(),
            last_poll: None,
            visible: true,
            migrators: Vec::new(),
            next_serial: 1,
            remote: None,
        }
    }

    /// What to remember of the box.
    pub fn remembered(&self) -> ProcsState {
        let b = &self.process_box;
        ProcsState {
            choice: b.choice,
            filter: b.filter.clone(),
            tree: b.tree,
            sort: b.sort,
            descending: b.descending,
        }
    }

    /// Shows the box as it was remembered.
    pub fn restore(&mut self, state: ProcsState) {
        self.choose(state.choice);
        let b = &mut self.process_box;
        b.filter = state.filter;
        b.tree = state.tree;
        b.sort = state.sort;
        b.descending = state.descending;
    }

    /// The rows the box shows now, in order.
    pub fn rows(&self) -> Vec<Row> {
        self.process_box.rows(&self.lists)
    }

    /// Every node's latest list.
    pub fn lists(&self) -> &Lists {
        &self.lists
    }

    /// The open migrator windows.
    pub fn migrators(&self) -> &[Migrator] {
        &self.migrators
    }

    /// The remote-procs window, once opened.
    pub fn remote(&self) -> Option<&RemoteProcs> {
        self.remote.as_ref()
    }

    /// Shows the processes of `choice` and reads them at the next poll.
    pub fn choose(&mut self, choice: Choice) {
        self.process_box.choice = choice;
        self.last_poll = None;
    }

    /// Opens the migrator of `pid` on `node` (or keeps the one already open).
    pub fn open_migrator(&mut self, node: NodeId, pid: i32) {
        if self
            .migrators
            .iter()
            .any(|m| m.open && m.node == node && m.pid == pid)
        {
            return;
        }
        self.migrators
            .push(Migrator::new(self.next_serial, node, pid));
        self.next_serial += 1;
        self.last_poll = None;
    }

    /// Opens the remote-procs window on the chosen node (the first node for "all nodes").
    pub fn open_remote(&mut self) {
        let node = match self.process_box.choice {
            Choice::Node(n) => n,
            Choice::All => self.nodes.first().map_or(1, |n| n.id),
        };
        match &mut self.remote {
            Some(r) => {
                r.node = node;
                r.open = true;
            }
            None => self.remote = Some(RemoteProcs::new(node)),
        }
        self.last_poll = None;
    }

    /// Runs every frame: takes the node snapshot and forgets closed windows.
    pub fn logic(&mut self, source: &dyn ClusterSource) {
        self.nodes = source.nodes();
        self.migrators.retain(|m| m.open);
    }

    /// The nodes whose lists are needed: the chosen one(s), and those of the open
    /// migrators and the remote-procs window.
    fn wanted(&self) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = match self.process_box.choice {
            Choice::All => self.nodes.iter().map(|n| n.id).collect(),
            Choice::Node(n) => vec![n],
        };
        nodes.extend(self.migrators.iter().map(|m| m.node));
        if let Some(r) = self.remote.as_ref().filter(|r| r.open) {
            nodes.push(r.node);
        }
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    /// Asks for the process lists once every [`POLL_EVERY`] while the window is open
    /// (at once after the choice changed or a process moved). `now` is the clock.
    pub fn poll(&mut self, source: &dyn ClusterSource, now: Instant) {
        if !self.visible {
            return;
        }
        if self
            .last_poll
            .is_some_and(|t| now.saturating_duration_since(t) < POLL_EVERY)
        {
            return;
        }
        self.pending
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < GIVE_UP);
        for node in self.wanted() {
            if self.pending.values().any(|(n, _)| *n == node) {
                continue;
            }
            let ticket = source.act(Action::Procs { node });
            self.pending.insert(ticket, (node, now));
        }
        self.last_poll = Some(now);
    }

    fn take_list(&mut self, node: NodeId, result: &Result<Vec<ProcInfo>, String>) {
        let entry = self.lists.entry(node).or_default();
        match result {
            Ok(procs) => {
                entry.procs.clone_from(procs);
                entry.error = None;
                entry.loaded = true;
            }
            Err(e) => entry.error = Some(e.clone()),
        }
    }

    /// Takes an outcome of the source; returns whether it was for this window. A process
    /// list another window asked for also refreshes this window's copy of that node's list
    /// (it is still reported as not this window's).
    pub fn on_outcome(&mut self, ticket: Ticket, outcome: &Outcome) -> bool {
        if let Some((asked, _)) = self.pending.remove(&ticket) {
            if let Outcome::Procs { node, result } = outcome {
                self.take_list(*node, result);
            } else {
                self.lists.entry(asked).or_default().error =
                    Some("unexpected answer to a process-list request".into());
            }
            return true;
        }
        if let Outcome::Procs {
            node,
            result: result @ Ok(_),
        } = outcome
            && self.lists.contains_key(node)
        {
            self.take_list(*node, result);
            return false;
        }
        for m in &mut self.migrators {
            if m.on_outcome(ticket, outcome) {
                // A signal or a move changes the list: read it again now.
                if m.take_moved() || matches!(outcome, Outcome::Done { .. }) {
                    self.last_poll = None;
                }
                return true;
            }
        }
        if let Some(r) = &mut self.remote
            && r.on_outcome(ticket, outcome)
        {
            if r.take_moved() {
                self.last_poll = None;
            }
            return true;
        }
        false
    }

    /// Draws the process box into `ui`.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.visible = true;
        match self.process_box.ui(ui, &self.lists, &self.nodes) {
            Some(BoxCommand::Migrator(node, pid)) => self.open_migrator(node, pid),
            Some(BoxCommand::Remote) => self.open_remote(),
            Some(BoxCommand::Refresh) => self.last_poll = None,
            None => {}
        }
    }

    /// Draws the migrator and remote-procs windows.
    pub fn windows(&mut self, ctx: &egui::Context, source: &dyn ClusterSource) {
        for m in &mut self.migrators {
            m.show(ctx, &self.lists, &self.nodes, source);
        }
        if let Some(r) = self.remote.as_mut().filter(|r| r.open) {
            r.show(ctx, &self.lists, &self.nodes, source);
        }
    }

    /// Draws the process box as a window (and the windows it opened), for embedding in
    /// another application; `open` is its close button.
    pub fn show(&mut self, ctx: &egui::Context, open: &mut bool, source: &dyn ClusterSource) {
        egui::Window::new("openMosixprocs")
            .id(egui::Id::unique("openmosixprocs"))
            .open(open)
            // Below a host application's menu bar.
            .default_pos([40.0, 90.0])
            .default_size([720.0, 480.0])
            .show(ctx, |ui| self.ui(ui));
        if *open {
            self.windows(ctx, source);
            // Poll on time even when nothing else asks for a frame.
            ctx.request_repaint_after(POLL_EVERY);
        }
        self.visible = *open;
    }

    /// One frame of a program that shows only this window: logic, poll, the source's
    /// outcomes, and drawing into `ui` (the root) with the other windows above it.
    pub fn root_ui(&mut self, ui: &mut egui::Ui, source: &dyn ClusterSource, now: Instant) {
        source.set_repaint(ui.ctx());
        self.logic(source);
        self.poll(source, now);
        for (ticket, outcome) in source.outcomes() {
            self.on_outcome(ticket, &outcome);
        }
        let notice = source.notice();
        let theme = openmosix_gui::theme::menu_bar(ui, "openmosixprocs");
        openmosix_gui::theme::apply(ui.ctx(), theme);
        egui::CentralPanel::default_margins().show(ui, |ui| {
            if let Some(n) = &notice {
                ui.colored_label(ui.visuals().warn_fg_color, n);
            }
            self.ui(ui);
        });
        let ctx = ui.ctx().clone();
        self.windows(&ctx, source);
        ctx.request_repaint_after(POLL_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_box_comes_back_as_it_was_remembered() {
        let mut window = ProcsWindow::new();
        assert_eq!(window.remembered(), ProcsState::default());
        let state = ProcsState {
            choice: Choice::Node(2),
            filter: "sshd".into(),
            tree: true,
            sort: Column::User,
            descending: true,
        };
        window.restore(state.clone());
        assert_eq!(window.process_box.choice, Choice::Node(2));
        assert_eq!(window.remembered(), state);
    }
}
