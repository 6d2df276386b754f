//! The configuration dialog of a node, or of all nodes (HOWTO 10.4.2).
//!
//! Unlike the original (FAQ 10.9.5) every switch opens preselected with the node's
//! current state, read from its agent; Apply sends only what changed and reports the
//! result (or the error) in words.

use std::collections::BTreeSet;

use openmosix_gui::{Action, ClusterSource, Outcome, Ticket, widgets};
use openmosix_hpc::model::{AdminChange, AdminState, NodeId, Switch};

/// What the dialog configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// One node.
    Node(NodeId),
    /// Every node of the cluster.
    All,
}

/// The switches as the dialog shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Form {
    /// Automatic migration on (= not `stay`).
    pub automigration: bool,
    /// quiet: stop talking load-balancing to other nodes.
    pub quiet: bool,
    /// lstay: local processes stay (turning it on also brings them home).
    pub lstay: bool,
    /// block: refuse guests.
    pub block: bool,
    /// Send the guests away now (expel) — an action, not a state.
    pub expel: bool,
    /// openMosix running on the node (= not `off`).
    pub running: bool,
}

impl Form {
    fn from_admin(a: &AdminState) -> Form {
        Form {
            automigration: !a.stay,
            quiet: a.quiet,
            lstay: a.lstay,
            block: a.block,
            expel: false,
            running: !a.off,
        }
    }

    /// The action that turns `old` into `self` on `node`.
    fn changes(&self, old: &Form, node: NodeId) -> Action {
        let mut changes = Vec::new();
        let mut switch = |s: Switch, new: bool, was: bool| {
            if new != was {
                changes.push(AdminChange::Switch { switch: s, on: new });
            }
        };
        switch(Switch::Stay, !self.automigration, !old.automigration);
        switch(Switch::Quiet, self.quiet, old.quiet);
        switch(Switch::Lstay, self.lstay, old.lstay);
        switch(Switch::Block, self.block, old.block);
        let stopping = !self.running && old.running;
        if self.running != old.running {
            changes.push(AdminChange::Off { off: !self.running });
        }
        Action::Apply {
            node,
            changes,
            // Stopping takes the node out of the pool as `setpe -off` would: guests go
            // home and its own migrated processes come back.
            expel: self.expel || stopping,
            bring: (self.lstay && !old.lstay) || stopping,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Loading,
    Ready,
    Applying,
}

/// One open configuration dialog.
#[derive(Debug)]
pub struct ConfigDialog {
    /// What it configures.
    pub target: Target,
    /// Whether it is still open.
    pub open: bool,
    phase: Phase,
    form: Form,
    original: Form,
    /// Node the shown state was read from (for "all nodes": the first that answered).
    read_from: Option<NodeId>,
    nodes: Vec<NodeId>,
    tickets: BTreeSet<Ticket>,
    results: Vec<(bool, String)>,
}

impl ConfigDialog {
    /// Opens a dialog for `target` over `nodes` (the cluster's ids) and asks the agent(s)
    /// for the current state.
    pub fn open(target: Target, nodes: &[NodeId], source: &dyn ClusterSource) -> ConfigDialog {
        let nodes: Vec<NodeId> = match target {
            Target::Node(n) => vec![n],
            Target::All => nodes.to_vec(),
        };
        let tickets = nodes
            .iter()
            .map(|&node| source.act(Action::ReadAdmin { node }))
            .collect();
        ConfigDialog {
            target,
            open: true,
            phase: Phase::Loading,
            form: Form::default(),
            original: Form::default(),
            read_from: None,
            nodes,
            tickets,
            results: Vec::new(),
        }
    }

    /// The window title.
    pub fn title(&self) -> String {
        match self.target {
            Target::Node(n) => format!("openMosix-configuration of node {n}"),
            Target::All => "openMosix-configuration of all nodes".into(),
        }
    }

    /// Takes an outcome meant for this dialog; returns whether it was.
    pub fn on_outcome(&mut self, ticket: Ticket, outcome: &Outcome) -> bool {
        if !self.tickets.remove(&ticket) {
            return false;
        }
        let Outcome::Admin { node, result } = outcome else {
            return true;
        };
        match (&self.phase, result) {
            (Phase::Loading, Ok(state)) => {
                if self.read_from.is_none() {
                    self.form = Form::from_admin(state);
                    self.original = self.form;
                    self.read_from = Some(*node);
                }
            }
            (Phase::Loading, Err(e)) => self
                .results
                .push((false, format!("node {node}: cannot read its state: {e}"))),
            (Phase::Applying, Ok(state)) => {
                self.results.push((true, format!("node {node}: applied")));
                if self.read_from == Some(*node) || matches!(self.target, Target::Node(_)) {
                    self.form = Form::from_admin(state);
                    self.original = self.form;
                }
            }
            (Phase::Applying, Err(e)) => self.results.push((false, format!("node {node}: {e}"))),
            (Phase::Ready, _) => {}
        }
        if self.tickets.is_empty() {
            self.phase = Phase::Ready;
        }
        true
    }

    /// Draws the dialog's window.
    pub fn show(&mut self, ctx: &egui::Context, source: &dyn ClusterSource) {
        let window = egui::Window::new(self.title())
            .id(egui::Id::unique(("config-dialog", self.target)))
            .default_pos([220.0, 90.0])
            .resizable(false);
        let open = widgets::closable(ctx, window, |ui| self.ui(ui, source));
        self.open &= open;
    }

    /// The dialog's contents.
    pub fn ui(&mut self, ui: &mut egui::Ui, source: &dyn ClusterSource) {
        match self.target {
            Target::Node(n) => ui.label(format!("node: {n}")),
            Target::All => ui.label(format!("all {} nodes", self.nodes.len())),
        };
        if self.phase == Phase::Loading {
            widgets::busy(ui, "reading the current state…");
        }
        let editable = self.phase == Phase::Ready && self.read_from.is_some();
        ui.add_enabled_ui(editable, |ui| {
            let f = &mut self.form;
            ui.checkbox(&mut f.automigration, "auto-migration on");
            ui.checkbox(&mut f.quiet, "quiet: no talk to other nodes");
            ui.checkbox(&mut f.lstay, "local procs stay (bring them home)");
            ui.checkbox(&mut f.block, "block arriving guests");
            ui.checkbox(&mut f.expel, "send away guest procs now");
            ui.checkbox(
                &mut f.running,
                "openMosix running (off = stop: guests home, own procs back)",
            );
        });
        if let (Target::All, Some(n)) = (self.target, self.read_from) {
            ui.small(format!("preselected from node {n}"));
        }
        ui.horizontal(|ui| {
            let changed = self.form != self.original;
            if ui
                .add_enabled(editable && changed, egui::Button::new("apply"))
                .clicked()
            {
                self.apply(source);
            }
            if ui.button("cancel").clicked() {
                self.open = false;
            }
            if self.phase == Phase::Applying {
                ui.spinner();
                ui.label("applying…");
            }
        });
        widgets::result_lines(ui, self.results.iter().rev().take(8));
    }

    fn apply(&mut self, source: &dyn ClusterSource) {
        self.results.clear();
        for &node in &self.nodes {
            let action = self.form.changes(&self.original, node);
            self.tickets.insert(source.act(action));
        }
        self.form.expel = false;
        self.phase = Phase::Applying;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_sent_and_stop_empties_the_node() {
        let old = Form::from_admin(&AdminState::default());
        assert!(old.automigration && old.running && !old.block);
        let mut new = old;
        new.block = true;
        assert_eq!(
            new.changes(&old, 2),
            Action::Apply {
                node: 2,
                changes: vec![AdminChange::Switch {
                    switch: Switch::Block,
                    on: true
                }],
                expel: false,
                bring: false
            }
        );
        let mut stop = old;
        stop.running = false;
        assert_eq!(
            stop.changes(&old, 3),
            Action::Apply {
                node: 3,
                changes: vec![AdminChange::Off { off: true }],
                expel: true,
                bring: true
            }
        );
    }
}
