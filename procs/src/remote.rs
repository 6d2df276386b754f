//! The remote-procs window (HOWTO 10.5.3): the guests running on a node — processes whose
//! home is another node — with their home node and stats, and "goto home node" and
//! "goto best node" for each.

use std::collections::BTreeMap;

use egui::{RichText, Ui};
use openmosix_client::NodeView;
use openmosix_client::migrate::Target;
use openmosix_gui::{Action, ClusterSource, Outcome, Ticket, widgets};
use openmosix_hpc::model::{NodeId, ProcInfo};

use crate::Lists;
use crate::migrator::{bytes, phase};

/// The remote-procs window of one node.
#[derive(Debug)]
pub struct RemoteProcs {
    /// The node whose guests are shown.
    pub node: NodeId,
    /// Whether the window is open.
    pub open: bool,
    /// Migrations under way: ticket → (guest pid, phase in words).
    moving: BTreeMap<Ticket, (i32, String)>,
    /// What happened, newest last: (success, sentence).
    messages: Vec<(bool, String)>,
    moved: bool,
}

/// The guests among a node's processes.
pub fn guests(procs: &[ProcInfo], node: NodeId) -> impl Iterator<Item = &ProcInfo> {
    procs.iter().filter(move |p| p.home != node)
}

impl RemoteProcs {
    /// The window for the guests of `node`.
    pub fn new(node: NodeId) -> RemoteProcs {
        RemoteProcs {
            node,
            open: true,
            moving: BTreeMap::new(),
            messages: Vec::new(),
            moved: false,
        }
    }

    /// The window title.
    pub fn title(&self) -> String {
        format!("remote procs on node {}", self.node)
    }

    /// The latest sentence, if any.
    pub fn last_message(&self) -> Option<&str> {
        self.messages.last().map(|(_, m)| m.as_str())
    }

    /// Whether a guest moved since the last call (the lists should be read again).
    pub fn take_moved(&mut self) -> bool {
        std::mem::take(&mut self.moved)
    }

    /// Takes an outcome meant for this window; returns whether it was.
    pub fn on_outcome(&mut self, ticket: Ticket, outcome: &Outcome) -> bool {
        let Some((pid, _)) = self.moving.get(&ticket) else {
            return false;
        };
        let pid = *pid;
        match outcome {
            Outcome::Progress { progress } => {
                let (_, _, text) = phase(progress);
                self.moving.insert(ticket, (pid, text));
            }
            Outcome::Migrated { result } => {
                self.moving.remove(&ticket);
                let line = match result {
                    Ok(m) => (
                        true,
                        format!(
                            "guest {pid} moved to node {} as pid {} (frozen {} ms)",
                            m.to, m.new_pid, m.freeze_ms
                        ),
                    ),
                    Err(e) => (false, e.clone()),
                };
                self.moved |= line.0;
                self.messages.push(line);
            }
            _ => {}
        }
        true
    }

    /// Sends guest `pid` to `target`.
    pub fn send(&mut self, pid: i32, target: Target, source: &dyn ClusterSource) {
        let ticket = source.act(Action::Migrate {
            node: self.node,
            pid,
            target,
            postcopy: false,
        });
        let to = if target == Target::Home {
            "home"
        } else {
            "to the best node"
        };
        self.moving
            .insert(ticket, (pid, format!("sending it {to}")));
    }

    /// Draws the window.
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        lists: &Lists,
        nodes: &[NodeView],
        source: &dyn ClusterSource,
    ) {
        let window = egui::Window::new("openMosixprocs: remote procs")
            .id(egui::Id::unique("procs-remote"))
            .default_pos(egui::pos2(560.0, 90.0))
            .default_width(520.0);
        let open = widgets::closable(ctx, window, |ui| self.ui(ui, lists, nodes, source));
        self.open &= open;
    }

    /// The window's contents.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        lists: &Lists,
        nodes: &[NodeView],
        source: &dyn ClusterSource,
    ) {
        self.node_ui(ui, nodes);
        ui.separator();
        let list = lists.get(&self.node);
        let guests: Vec<&ProcInfo> = list
            .map(|l| guests(&l.procs, self.node).collect())
            .unwrap_or_default();
        if guests.is_empty() {
            if list.is_some_and(|l| l.loaded) {
                ui.label(format!(
                    "no guests: no process from another node runs on node {}",
                    self.node
                ));
            } else {
                widgets::busy(ui, "reading the process list…");
            }
        }
        let mut send = None;
        egui::ScrollArea::vertical()
            .id_salt("procs-remote-guests")
            .max_height(420.0)
            .show(ui, |ui| {
                for p in guests {
                    egui::Frame::group(ui.style()).show(ui, |ui| {
                        send = self.guest_ui(ui, p).or(send);
                    });
                }
            });
        if let Some((pid, target)) = send {
            self.send(pid, target, source);
        }
        widgets::result_lines(ui, self.messages.iter().rev().take(4));
    }

    /// The node chooser and the node's address.
    fn node_ui(&mut self, ui: &mut Ui, nodes: &[NodeView]) {
        ui.horizontal(|ui| {
            let label = ui.label("guests on");
            egui::ComboBox::from_id_salt("procs-remote-node")
                .selected_text(format!("node {}", self.node))
                .show_ui(ui, |ui| {
                    for n in nodes {
                        ui.selectable_value(&mut self.node, n.id, format!("node {}", n.id));
                    }
                })
                .response
                .labelled_by(label.id);
            if let Some(n) = nodes.iter().find(|n| n.id == self.node) {
                ui.label(format!("address of the node: {}", n.address));
            }
        });
    }

    /// One guest: where it comes from, its command, its stats and its buttons; where the
    /// user asked to send it, if anywhere.
    fn guest_ui(&self, ui: &mut Ui, p: &ProcInfo) -> Option<(i32, Target)> {
        let mut send = None;
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("pid {}", p.pid)).strong());
            ui.label(format!(
                "from openMosix-node: {} (pid {} there)",
                p.home, p.home_pid
            ));
        });
        ui.add(egui::Label::new(RichText::new(p.cmdline.lossy()).monospace()).truncate());
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                if ui.button("goto home node").clicked() {
                    send = Some((p.pid, Target::Home));
                }
                if ui.button("goto best node").clicked() {
                    send = Some((p.pid, Target::Best));
                }
            });
            ui.add_space(14.0);
            egui::Grid::new(("procs-remote-stats", p.pid))
                .num_columns(4)
                .show(ui, |ui| stats_grid(ui, p));
        });
        for (pid, text) in self.moving.values() {
            if *pid == p.pid {
                widgets::busy(ui, text);
            }
        }
        send
    }
}

/// A guest's times, nice, state and memory, four to a row.
fn stats_grid(ui: &mut Ui, p: &ProcInfo) {
    ui.label(format!("utime={}", p.utime));
    ui.label(format!("cutime={}", p.cutime));
    ui.label(format!("nice={}", p.nice));
    ui.label(format!("state={}", p.state));
    ui.end_row();
    ui.label(format!("vsize={}", bytes(p.vsize)));
    ui.label(format!("rss={}", bytes(p.rss)));
    ui.label(format!("nswap={}", p.nswap));
    ui.label(format!("cnswap={}", p.cnswap));
    ui.end_row();
}
