//! The migration monitor window: penguins on a circle, process squares around them, and
//! drag and drop to move processes. As in egui's drag-and-drop demo, what the mouse asks
//! for is recorded while drawing and acted on after drawing.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use egui::{Color32, Pos2, Sense, Ui, vec2};
use openmosix_client::migrate::{Progress, Target};
use openmosix_client::{LinkState, NodeView};
use openmosix_gui::{Action, ClusterSource, Outcome, Ticket};
use openmosix_hpc::model::{NodeId, ProcInfo};

use crate::circles::{Circle, Key, Square, circles, phase};
use crate::keys::{HELP, Typed};
use crate::settling::{self, Settling};

/// How often every node's process list is asked for.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// A process list not answered within this is asked for again.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a square takes to glide to its new penguin.
pub(crate) const GLIDE_SECS: f64 = 0.5;

/// Black: a process of the watched node.
pub const LOCAL: Color32 = Color32::from_rgb(28, 28, 30);
/// Green: a process of the watched node that migrated elsewhere.
pub const MIGRATED: Color32 = Color32::from_rgb(40, 170, 60);
/// Blue: a guest on the watched node from another home.
pub const GUEST: Color32 = Color32::from_rgb(70, 110, 180);
/// Amber: the dot on a square the load balancer moved (docs/balancing.md).
pub const BALANCED: Color32 = Color32::from_rgb(240, 160, 30);

/// A migration this window started.
#[derive(Debug, Clone)]
pub(crate) struct Move {
    pub(crate) pid: i32,
    pub(crate) key: Key,
    pub(crate) to: Target,
    pub(crate) progress: Option<Progress>,
}

/// What the mouse or the keys asked for while drawing.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    /// A square dropped on a penguin.
    Drop { square: Square, onto: NodeId },
    /// A square sent to the target penguin with Enter.
    Send { square: Square, onto: NodeId },
    /// A green square double-clicked: send it home.
    Home { square: Square },
}

/// A reason shown beside a square (a process that cannot move was dropped).
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    pub(crate) key: Key,
    pub(crate) text: String,
    pub(crate) since: f64,
}

/// The square that had the keyboard focus, and whether it went out of sight since.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeptFocus {
    pub(crate) key: Option<Key>,
    pub(crate) lost: bool,
}

/// Where a square was last drawn, to glide it when it changes penguin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen {
    pub(crate) at: NodeId,
    pub(crate) pos: Pos2,
    pub(crate) time: f64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Glide {
    pub(crate) from: Pos2,
    pub(crate) start: f64,
}

/// openMosixmigmon: the cluster's nodes as penguins in a circle, the watched node's
/// processes as small squares around it; drop a square on a penguin and it migrates.
#[derive(Debug)]
pub struct MigMon {
    pub(crate) main: NodeId,
    pub(crate) procs: BTreeMap<NodeId, Vec<ProcInfo>>,
    pub(crate) errors: BTreeMap<NodeId, String>,
    pub(crate) asked: BTreeMap<Ticket, (NodeId, Instant)>,
    /// Process lists asked before this ticket are stale for the node (a migration ended).
    pub(crate) fresh_from: BTreeMap<NodeId, Ticket>,
    pub(crate) last_poll: Option<Instant>,
    pub(crate) moves: BTreeMap<Ticket, Move>,
    pub(crate) status: String,
    pub(crate) notice: Option<Notice>,
    pub(crate) dragging: Option<Square>,
    pub(crate) drag_pos: Option<Pos2>,
    /// The penguin chosen by the keys (a node number, PageDown/PageUp).
    pub(crate) target: Option<NodeId>,
    pub(crate) typed: Typed,
    pub(crate) focus: KeptFocus,
    pub(crate) seen: HashMap<Key, Seen>,
    pub(crate) glides: HashMap<Key, Glide>,
    pub(crate) nodes: Vec<NodeView>,
    /// egui's clock in this frame.
    pub(crate) time: f64,
    /// The latest ticket this window has seen.
    pub(crate) last_ticket: Ticket,
    /// Ended moves the nodes' lists may not show yet.
    pub(crate) settling: Vec<Settling>,
}

impl MigMon {
    /// A monitor watching `main_node`.
    pub fn new(main_node: NodeId) -> MigMon {
        MigMon {
            main: main_node,
            procs: BTreeMap::new(),
            errors: BTreeMap::new(),
            asked: BTreeMap::new(),
            fresh_from: BTreeMap::new(),
            last_poll: None,
            moves: BTreeMap::new(),
            status: "watching".to_owned(),
            notice: None,
            dragging: None,
            drag_pos: None,
            target: None,
            typed: Typed::default(),
            focus: KeptFocus::default(),
            seen: HashMap::new(),
            glides: HashMap::new(),
            nodes: Vec::new(),
            time: 0.0,
            last_ticket: 0,
            settling: Vec::new(),
        }
    }

    /// The watched node.
    pub fn main_node(&self) -> NodeId {
        self.main
    }

    /// Watches another node.
    pub fn set_main_node(&mut self, node: NodeId) {
        if node != self.main {
            self.main = node;
            self.seen.clear();
            self.glides.clear();
            self.notice = None;
        }
    }

    /// The status line: the phase of a running migration, its result, or a reason.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// Where the square of process `pid` sits (the node it runs on) and whether it is
    /// green (migrated away from the watched node); `None` when it has no square.
    pub fn square_state(&self, pid: i32) -> Option<(NodeId, bool)> {
        let circles = circles(&self.procs, self.main);
        let all = || circles.values().flat_map(|c| c.shown.iter());
        all()
            .find(|s| s.pid == pid)
            .or_else(|| all().find(|s| s.key.1 == pid && s.key.0 == self.main))
            .map(|s| (s.at, s.green(self.main)))
    }

    /// The penguin the keys chose as the target, if any.
    pub fn target(&self) -> Option<NodeId> {
        self.target
    }

    /// Whether a migration this window started is still running.
    pub fn is_moving(&self) -> bool {
        !self.moves.is_empty()
    }

    /// Asks every node that is up for its process list, once every [`POLL_EVERY`]
    /// (`now` is injected so tests control the clock).
    pub fn poll(&mut self, source: &dyn ClusterSource, now: Instant) {
        if self
            .last_poll
            .is_some_and(|t| now.saturating_duration_since(t) < POLL_EVERY)
        {
            return;
        }
        self.last_poll = Some(now);
        self.asked
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < ASK_TIMEOUT);
        for node in source.nodes() {
            if node.state == LinkState::Up && !self.asked.values().any(|(n, _)| *n == node.id) {
                self.ask(source, node.id, now);
            }
        }
    }

    fn ask(&mut self, source: &dyn ClusterSource, node: NodeId, now: Instant) -> Ticket {
        let ticket = source.act(Action::Procs { node });
        self.last_ticket = self.last_ticket.max(ticket);
        self.asked.insert(ticket, (node, now));
        ticket
    }

    /// Takes an outcome in; true when it answered this window's action. Process lists
    /// asked by others are taken in too, but left for their owner (false).
    pub fn on_outcome(&mut self, ticket: Ticket, outcome: &Outcome) -> bool {
        self.last_ticket = self.last_ticket.max(ticket);
        match outcome {
            Outcome::Procs { node, result } => {
                let ours = self.asked.remove(&ticket).is_some();
                if ticket >= self.fresh_from.get(node).copied().unwrap_or(0) {
                    match result {
                        Ok(list) => {
                            let mut list = list.clone();
                            settling::correct(&mut self.settling, *node, &mut list);
                            self.procs.insert(*node, list);
                            self.errors.remove(node);
                        }
                        Err(e) => {
                            self.errors.insert(*node, e.clone());
                        }
                    }
                }
                ours
            }
            Outcome::Progress { progress } => {
                let Some(m) = self.moves.get_mut(&ticket) else {
                    return false;
                };
                m.progress = Some(progress.clone());
                self.status = format!(
                    "moving pid {} to {}: {}",
                    m.pid,
                    target_words(m.to),
                    phase(progress)
                );
                true
            }
            Outcome::Migrated { result } => {
                let Some(m) = self.moves.remove(&ticket) else {
                    return false;
                };
                match result {
                    Ok(done) => {
                        self.status = if done.new_pid == done.old_pid {
                            format!("moved pid {} to node {}", done.old_pid, done.to)
                        } else {
                            format!(
                                "moved pid {} to node {} (pid {} there)",
                                done.old_pid, done.to, done.new_pid
                            )
                        } + &format!(", frozen {} ms", done.freeze_ms);
                        self.moved(done);
                    }
                    Err(e) => e.clone_into(&mut self.status),
                }
                if self.notice.as_ref().is_some_and(|n| n.key == m.key) {
                    self.notice = None;
                }
                true
            }
            _ => false,
        }
    }

    /// Moves the process in the lists at once (the agents' next lists confirm it) and
    /// makes older lists of both nodes stale.
    fn moved(&mut self, done: &openmosix_client::migrate::Migrated) {
        let taken = self.procs.get_mut(&done.from).and_then(|list| {
            let i = list.iter().position(|p| p.pid == done.old_pid)?;
            Some(list.remove(i))
        });
        if let Some(mut p) = taken {
            p.pid = done.new_pid;
            p.where_ = done.to;
            (p.home, p.home_pid) = done.home;
            p.nmigs += 1;
            self.settling
                .push(Settling::new(done.from, done.old_pid, done.to, p.clone()));
            if let Some(list) = self.procs.get_mut(&done.to) {
                list.retain(|q| q.pid != p.pid);
                list.push(p);
            }
        }
        // Lists asked before now may still show the old place.
        let next = self.last_ticket + 1;
        for node in [done.from, done.to] {
            let fresh = self.fresh_from.entry(node).or_default();
            *fresh = (*fresh).max(next);
        }
        self.last_poll = None;
    }

    /// The window, with a close button.
    pub fn show(&mut self, ctx: &egui::Context, open: &mut bool, source: &dyn ClusterSource) {
        egui::Window::new("openMosixmigmon")
            .open(open)
            // Below a host application's menu bar.
            .default_pos([60.0, 70.0])
            .default_size([860.0, 660.0])
            .resizable(true)
            .show(ctx, |ui| self.ui(ui, source));
    }

    /// Draws the window's contents.
    pub fn ui(&mut self, ui: &mut Ui, source: &dyn ClusterSource) {
        self.nodes = source.nodes();
        self.time = ui.input(|i| i.time);
        ui.horizontal(|ui| {
            self.node_chooser(ui);
            ui.separator();
            let circles = circles(&self.procs, self.main);
            ui.label(self.summary(&circles));
            ui.separator();
            ui.label(&self.status);
        });
        if let Some(n) = source.notice() {
            ui.colored_label(ui.visuals().warn_fg_color, n);
        }
        ui.horizontal(|ui| {
            if let Some(t) = self.target {
                ui.strong(format!("target: node {t}"));
                ui.separator();
            }
            ui.small(HELP);
        });
        // The chooser may have changed the watched node.
        let circles = circles(&self.procs, self.main);
        let size = ui.available_size().max(vec2(320.0, 320.0));
        let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
        let commands = self.canvas(ui, rect, &circles);
        for c in commands {
            self.apply(c, source);
        }
        if self.glides.is_empty() {
            ui.ctx().request_repaint_after(POLL_EVERY);
        } else {
            ui.ctx().request_repaint();
        }
    }

    /// "7 processes on node 2, 1 migrated away · 3 of 3 nodes up".
    fn summary(&self, circles: &BTreeMap<NodeId, Circle>) -> String {
        let here = circles.get(&self.main).map_or(0, |c| {
            c.shown.iter().filter(|s| s.home == self.main).count() + c.more
        });
        let away = circles
            .values()
            .flat_map(|c| &c.shown)
            .filter(|s| s.green(self.main))
            .count();
        let up = self
            .nodes
            .iter()
            .filter(|n| n.state == LinkState::Up)
            .count();
        let balanced = circles
            .values()
            .flat_map(|c| &c.shown)
            .filter(|s| s.auto_moved)
            .count();
        summary_text(here, self.main, away, balanced, up, self.nodes.len())
    }

    fn node_chooser(&mut self, ui: &mut Ui) {
        let name = |n: &NodeView| format!("{}: {}", n.id, n.address);
        let selected = self
            .nodes
            .iter()
            .find(|n| n.id == self.main)
            .map_or_else(|| format!("{}", self.main), name);
        let mut main = self.main;
        egui::ComboBox::from_label("watch node")
            .selected_text(selected)
            .show_ui(ui, |ui| {
                for n in &self.nodes {
                    ui.selectable_value(&mut main, n.id, name(n));
                }
            });
        self.set_main_node(main);
    }

    /// Acts on what the mouse or the keys asked for.
    fn apply(&mut self, command: Command, source: &dyn ClusterSource) {
        let (square, to) = match command {
            Command::Send { square, onto } if onto == square.at => {
                self.status = format!("pid {} is on node {onto} already", square.pid);
                return;
            }
            Command::Drop { square, onto } | Command::Send { square, onto } => {
                if onto == square.at {
                    return;
                }
                if let Some(reason) = &square.reason {
                    self.status =
                        format!("pid {} stays on node {}: {reason}", square.pid, square.at);
                    self.notice = Some(Notice {
                        key: square.key,
                        text: format!("cannot move: {reason}"),
                        since: self.time,
                    });
                    return;
                }
                if !self
                    .nodes
                    .iter()
                    .any(|n| n.id == onto && n.state == LinkState::Up)
                {
                    self.status = format!("node {onto} does not answer: pid {} stays", square.pid);
                    return;
                }
                (square, Target::Node(onto))
            }
            Command::Home { square } if square.home == square.at => {
                self.status = format!("pid {} is at home already", square.pid);
                return;
            }
            Command::Home { square } => (square, Target::Home),
        };
        if self.moves.values().any(|m| m.key == square.key) {
            self.status = format!("pid {} is already moving", square.pid);
            return;
        }
        let ticket = source.act(Action::Migrate {
            node: square.ask,
            pid: square.pid,
            target: to,
            postcopy: false,
        });
        self.last_ticket = self.last_ticket.max(ticket);
        self.status = format!(
            "moving pid {} to {}: starting",
            square.pid,
            target_words(to)
        );
        self.moves.insert(
            ticket,
            Move {
                pid: square.pid,
                key: square.key,
                to,
                progress: None,
            },
        );
    }
}

fn target_words(t: Target) -> String {
    match t {
        Target::Node(n) => format!("node {n}"),
        Target::Home => "its home node".to_owned(),
        Target::Best => "the best node".to_owned(),
    }
}

/// The status line: "7 processes on node 2, 1 migrated away · 3 of 3 nodes up", in the
/// singular where a count is 1.
fn summary_text(
    here: usize,
    main: NodeId,
    away: usize,
    balanced: usize,
    up: usize,
    nodes: usize,
) -> String {
    let processes = if here == 1 { "process" } else { "processes" };
    let by_balancer = if balanced > 0 {
        format!(" ({balanced} moved by the load balancer)")
    } else {
        String::new()
    };
    let of_nodes = if nodes == 1 { "node" } else { "nodes" };
    format!(
        "{here} {processes} on node {main}, {away} migrated away{by_balancer} · \
         {up} of {nodes} {of_nodes} up"
    )
}

#[cfg(test)]
mod tests {
    use super::summary_text;

    #[test]
    fn the_status_line_says_process_for_one_and_processes_for_more() {
        assert_eq!(
            summary_text(1, 2, 0, 0, 1, 1),
            "1 process on node 2, 0 migrated away · 1 of 1 node up"
        );
        assert_eq!(
            summary_text(0, 1, 1, 1, 2, 3),
            "0 processes on node 1, 1 migrated away (1 moved by the load balancer) · 2 of 3 nodes up"
        );
        assert_eq!(
            summary_text(7, 2, 1, 0, 3, 3),
            "7 processes on node 2, 1 migrated away · 3 of 3 nodes up"
        );
    }
}
