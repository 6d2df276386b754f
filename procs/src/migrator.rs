//! The migrator window (HOWTO 10.5.2): one process, the nodes to send it to, home, best,
//! kill, SIGSTOP, SIGCONT, renice, and its status fields. A migration shows its phases
//! as they come from the migration core and ends with the new node and pid, or with the
//! sentence saying why the process stayed. After a move the window follows the process.

use std::collections::{BTreeMap, BTreeSet};

use egui::{RichText, Ui};
use openmosix_client::NodeView;
use openmosix_client::migrate::{Progress, Target};
use openmosix_gui::widgets::{self, lamp, lamp_state};
use openmosix_gui::{Action, ClusterSource, Outcome, Ticket};
use openmosix_hpc::model::{NodeId, ProcInfo, Signal};

use crate::Lists;
use crate::process_box::state_word;

/// A migration under way: how far, and what it is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct Moving {
    /// Its ticket.
    pub ticket: Ticket,
    /// 0..=1.
    pub fraction: f32,
    /// The current phase in words.
    pub text: String,
    /// The phases seen so far.
    pub phases: Vec<&'static str>,
}

/// The migrator of one process.
#[derive(Debug)]
pub struct Migrator {
    serial: u64,
    /// The node the process runs on (follows it after a move).
    pub node: NodeId,
    /// Its pid there (follows it after a move).
    pub pid: i32,
    /// Whether the window is open.
    pub open: bool,
    /// STOP, CONT and kill apply to the process and all its descendants.
    pub whole_tree: bool,
    /// Moves go post-copy (docs/migration.md "Post-copy").
    pub postcopy: bool,
    /// The renice slider's value.
    pub nice: i32,
    nice_set: bool,
    tickets: BTreeSet<Ticket>,
    moving: Option<Moving>,
    /// What happened, newest last: (success, sentence).
    messages: Vec<(bool, String)>,
    moved: bool,
    /// The keyboard focus goes to the first other node's button when the window opens.
    focus_first: bool,
}

/// The fraction and words of a migration phase.
pub fn phase(progress: &Progress) -> (f32, &'static str, String) {
    match *progress {
        Progress::Checking => (0.05, "check", "checking that it may move".into()),
        Progress::PreDump { round, pages } => {
            let f = 0.1 + 0.04 * round.min(5) as f32;
            (
                f,
                "pre-dump",
                format!("pre-dump round {round}: {pages} pages copied while it runs"),
            )
        }
        Progress::Freeze => (0.35, "freeze", "frozen: final dump".into()),
        Progress::Transfer { sent, total, .. } => {
            let part = if total == 0 {
                1.0
            } else {
                (sent as f64 / total as f64).min(1.0) as f32
            };
            (
                0.4 + 0.4 * part,
                "transfer",
                format!("moving the image: {}", progress.moved().unwrap_or_default()),
            )
        }
        Progress::Restore => (0.85, "restore", "restoring on the target".into()),
        Progress::Resuming => (
            0.9,
            "resume",
            "resuming it where it was after a failure".into(),
        ),
    }
}

/// Bytes in KiB/MiB.
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    if n >= 1 << 20 {
        format!("{:.1} MiB", f / f64::from(1u32 << 20))
    } else if n >= 1 << 10 {
        format!("{:.0} KiB", f / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// `pid` and every descendant of it in `procs`, parents first.
pub fn tree_of(procs: &[ProcInfo], pid: i32) -> Vec<i32> {
    let mut children: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in procs {
        if p.pid != p.ppid {
            children.entry(p.ppid).or_default().push(p.pid);
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            for &k in kids {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        i += 1;
    }
    out
}

impl Migrator {
    /// The migrator of `pid` on `node`; `serial` keeps its window apart from others.
    pub fn new(serial: u64, node: NodeId, pid: i32) -> Migrator {
        Migrator {
            serial,
            node,
            pid,
            open: true,
            whole_tree: false,
            postcopy: false,
            nice: 0,
            nice_set: false,
            tickets: BTreeSet::new(),
            moving: None,
            messages: Vec::new(),
            moved: false,
            focus_first: true,
        }
    }

    /// The window title: `migrator: pid {pid} on node {node}`.
    pub fn title(&self) -> String {
        format!("migrator: pid {} on node {}", self.pid, self.node)
    }

    /// The migration under way, if any.
    pub fn moving(&self) -> Option<&Moving> {
        self.moving.as_ref()
    }

    /// The latest sentence (success or error), if any.
    pub fn last_message(&self) -> Option<&str> {
        self.messages.last().map(|(_, m)| m.as_str())
    }

    /// Whether it moved since the last call (the lists should be read again).
    pub fn take_moved(&mut self) -> bool {
        std::mem::take(&mut self.moved)
    }

    fn say(&mut self, ok: bool, line: String) {
        self.messages.push((ok, line));
        if self.messages.len() > 20 {
            self.messages.remove(0);
        }
    }

    /// Takes an outcome meant for this window; returns whether it was.
    pub fn on_outcome(&mut self, ticket: Ticket, outcome: &Outcome) -> bool {
        if self.moving.as_ref().is_some_and(|m| m.ticket == ticket) {
            match outcome {
                Outcome::Progress { progress } => {
                    let (fraction, name, text) = phase(progress);
                    if let Some(m) = &mut self.moving {
                        m.fraction = fraction;
                        m.text = text;
                        if m.phases.last() != Some(&name) {
                            m.phases.push(name);
                        }
                    }
                }
                Outcome::Migrated { result } => {
                    self.moving = None;
                    match result {
                        Ok(m) => {
                            self.say(
                                true,
                                format!(
                                    "moved to node {} as pid {} (frozen {} ms)",
                                    m.to, m.new_pid, m.freeze_ms
                                ),
                            );
                            self.node = m.to;
                            self.pid = m.new_pid;
                            self.moved = true;
                        }
                        Err(e) => self.say(false, e.clone()),
                    }
                }
                _ => {}
            }
            return true;
        }
        if !self.tickets.remove(&ticket) {
            return false;
        }
        if let Outcome::Done { result, .. } = outcome {
            match result {
                Ok(s) => self.say(true, s.clone()),
                Err(e) => self.say(false, e.clone()),
            }
        }
        true
    }

    /// Sends the process to `target`.
    pub fn migrate(&mut self, target: Target, source: &dyn ClusterSource) {
        if self.moving.is_some() {
            return;
        }
        if target == Target::Node(self.node) {
            self.say(false, format!("it already runs on node {}", self.node));
            return;
        }
        let ticket = source.act(Action::Migrate {
            node: self.node,
            pid: self.pid,
            target,
            postcopy: self.postcopy,
        });
        let to = match target {
            Target::Node(n) => format!("node {n}"),
            Target::Home => "its home node".into(),
            Target::Best => "the best node".into(),
        };
        self.moving = Some(Moving {
            ticket,
            fraction: 0.0,
            text: format!("asking node {} to move it to {to}", self.node),
            phases: Vec::new(),
        });
    }

    /// Sends `signal` to the process (and its tree when `whole_tree` is on).
    pub fn signal(&mut self, signal: Signal, lists: &Lists, source: &dyn ClusterSource) {
        let pids = match lists.get(&self.node) {
            Some(l) if self.whole_tree => tree_of(&l.procs, self.pid),
            _ => vec![self.pid],
        };
        let ticket = source.act(Action::Signal {
            node: self.node,
            pids,
            signal,
        });
        self.tickets.insert(ticket);
    }

    /// Sets the nice value to the slider's (20 means 19, the slowest the kernel has).
    pub fn renice(&mut self, source: &dyn ClusterSource) {
        let ticket = source.act(Action::Renice {
            node: self.node,
            pid: self.pid,
            nice: self.nice.clamp(-20, 19),
        });
        self.tickets.insert(ticket);
    }

    /// Draws the window.
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        lists: &Lists,
        nodes: &[NodeView],
        source: &dyn ClusterSource,
    ) {
        let window = egui::Window::new(self.title())
            .id(egui::Id::unique(("procs-migrator", self.serial)))
            // Cascaded right of the box's controls, so that they stay reachable.
            .default_pos(egui::pos2(
                520.0 + 28.0 * (self.serial % 8) as f32,
                90.0 + 28.0 * (self.serial % 8) as f32,
            ))
            .default_width(560.0)
            .resizable(true);
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
        let list = lists.get(&self.node);
        let me = list.and_then(|l| l.procs.iter().find(|p| p.pid == self.pid));
        if let (Some(p), false) = (me, self.nice_set) {
            self.nice = p.nice;
            self.nice_set = true;
        }
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(250.0);
                self.nodes_ui(ui, nodes, source);
                ui.separator();
                self.buttons_ui(ui, lists, source);
            });
            ui.add_space(14.0);
            ui.vertical(|ui| {
                status_ui(ui, me, self.node, self.pid, list.is_some_and(|l| l.loaded));
            });
        });
        if let Some(m) = &self.moving {
            ui.separator();
            ui.add(
                egui::ProgressBar::new(m.fraction)
                    .show_percentage()
                    .animate(true),
            );
            ui.label(&m.text);
            if !m.phases.is_empty() {
                ui.label(
                    RichText::new(format!("phases: {}", m.phases.join(" → ")))
                        .small()
                        .family(egui::FontFamily::Monospace),
                );
            }
        }
        if !self.messages.is_empty() {
            ui.separator();
        }
        widgets::result_lines(ui, self.messages.iter().rev().take(4));
    }

    fn nodes_ui(&mut self, ui: &mut Ui, nodes: &[NodeView], source: &dyn ClusterSource) {
        ui.label(format!(
            "doubleclick a node (or arrow to it, Enter) for migrating PID {} running on node {}",
            self.pid, self.node
        ));
        let mut target = None;
        egui::ScrollArea::vertical()
            .id_salt(("migrator-nodes", self.serial))
            .max_height(150.0)
            .show(ui, |ui| {
                for n in nodes {
                    ui.horizontal(|ui| {
                        let (color, word) = lamp_state(n);
                        lamp(ui, color, &format!("node {} lamp", n.id), word);
                        let here = n.id == self.node;
                        let r = ui
                            .add(egui::Button::selectable(here, format!("node {}", n.id)))
                            .on_hover_text(format!(
                                "{}: double-click (or Enter) to migrate there",
                                n.address
                            ));
                        let value = format!(
                            "{}, {word}{}",
                            n.address,
                            if here { ", where it runs" } else { "" }
                        );
                        ui.ctx()
                            .accesskit_node_builder(r.id, |b| b.set_value(value));
                        // The Enter that opened the window may still be in this frame's
                        // input: it must not migrate too.
                        let just_focused = self.focus_first && !here;
                        if just_focused {
                            r.request_focus();
                            self.focus_first = false;
                        }
                        widgets::focus_ring(ui, &r);
                        ui.small(&n.address);
                        let enter = !just_focused
                            && r.has_focus()
                            && ui.input(|i| i.key_pressed(egui::Key::Enter));
                        if r.double_clicked() || enter {
                            target = Some(n.id);
                        }
                    });
                }
            });
        ui.checkbox(&mut self.postcopy, "post-copy").on_hover_text(
            "for big processes: it runs on the target once all but its memory has moved, \
                 and the memory follows; if the stream breaks then, the copy there is killed \
                 and what it did there is lost",
        );
        if let Some(id) = target {
            self.migrate(Target::Node(id), source);
        }
    }

    fn buttons_ui(&mut self, ui: &mut Ui, lists: &Lists, source: &dyn ClusterSource) {
        let busy = self.moving.is_some();
        ui.horizontal(|ui| {
            ui.label("send to");
            if button(ui, !busy, "home")
                .on_hover_text("send it to its home node")
                .clicked()
            {
                self.migrate(Target::Home, source);
            }
            if button(ui, !busy, "best")
                .on_hover_text("send it where it would run fastest (load, speed, CPUs, memory)")
                .clicked()
            {
                self.migrate(Target::Best, source);
            }
        });
        ui.horizontal(|ui| {
            if button(ui, !busy, "kill").on_hover_text("SIGKILL").clicked() {
                self.signal(Signal::Kill, lists, source);
            }
            if button(ui, !busy, "SIGSTOP").clicked() {
                self.signal(Signal::Stop, lists, source);
            }
            if button(ui, !busy, "SIGCONT").clicked() {
                self.signal(Signal::Cont, lists, source);
            }
        });
        ui.checkbox(&mut self.whole_tree, "whole tree")
            .on_hover_text("kill, SIGSTOP and SIGCONT go to the process and all its descendants");
        ui.label("renice process (-20 fast … 20 slow)");
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut self.nice, -20..=20).text("nice"));
            if button(ui, !busy, "apply nice").clicked() {
                self.renice(source);
            }
        });
    }
}

/// A button, with the focus ring drawn around it while it has the keyboard focus.
fn button(ui: &mut Ui, enabled: bool, text: &str) -> egui::Response {
    let r = ui.add_enabled(enabled, egui::Button::new(text));
    widgets::focus_ring(ui, &r);
    r
}

/// The status fields of the HOWTO's picture.
fn status_ui(ui: &mut Ui, me: Option<&ProcInfo>, node: NodeId, pid: i32, loaded: bool) {
    let Some(p) = me else {
        if loaded {
            ui.label(
                RichText::new(format!("process {pid} is not on node {node} (any more)"))
                    .color(widgets::SAID_ERROR),
            );
        } else {
            widgets::busy(ui, "reading the process list…");
        }
        return;
    };
    egui::Grid::new(("migrator-status", node, pid))
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            let mut field = |name: &str, value: String| {
                ui.label(RichText::new(name).strong());
                ui.label(value);
                ui.end_row();
            };
            field("Name:", p.comm.lossy());
            field("State:", format!("{} ({})", p.state, state_word(p.state)));
            field("Tgid:", p.pid.to_string());
            field("Pid:", p.pid.to_string());
            field("PPid:", p.ppid.to_string());
            field("Uid:", p.uid.to_string());
            field("nice:", p.nice.to_string());
            field("where:", format!("node {}", p.where_));
            field(
                "home:",
                if p.home == p.where_ {
                    format!("node {} (here)", p.home)
                } else {
                    format!("node {} (pid {})", p.home, p.home_pid)
                },
            );
            field("nmigs:", p.nmigs.to_string());
            field("utime:", p.utime.to_string());
            field("vsize:", bytes(p.vsize));
            field("rss:", bytes(p.rss));
            field("cantmove:", p.cannot_move().unwrap_or_else(|| "-".into()));
        });
    ui.add(
        egui::Label::new(
            RichText::new(p.cmdline.lossy())
                .small()
                .family(egui::FontFamily::Monospace),
        )
        .truncate(),
    );
}
