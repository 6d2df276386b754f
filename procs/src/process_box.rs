//! The process box (HOWTO 10.5.1): every process of a node, or of all nodes, with its
//! pid, the node it runs on, state, user, nice and command line. Migrated processes are
//! marked green, processes that cannot move carry a lock with the reason as tooltip.
//! Beyond the original: sort by any column, a filter, and a tree by parent.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use egui::{Align, Color32, Layout, RichText, Ui, Vec2};
use openmosix_client::NodeView;
use openmosix_gui::widgets;
use openmosix_hpc::model::{NodeId, ProcInfo};

use crate::Lists;

/// The green of migrated processes.
pub const MIGRATED: Color32 = Color32::from_rgb(40, 170, 60);
/// The colour of the lock of processes that cannot move.
pub const LOCKED: Color32 = Color32::from_rgb(200, 140, 30);

/// Which processes the box shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// Every node's.
    #[default]
    All,
    /// One node's.
    Node(NodeId),
}

impl Choice {
    /// The combo box's text for it.
    pub fn text(self) -> String {
        match self {
            Choice::All => "all nodes".into(),
            Choice::Node(n) => format!("node {n}"),
        }
    }
}

/// A column of the table, to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Column {
    /// The pid.
    #[default]
    Pid,
    /// The node it runs on.
    Node,
    /// The state letter.
    State,
    /// The user id.
    User,
    /// The nice value.
    Nice,
    /// The command line.
    Command,
}

impl Column {
    /// Every column, left to right.
    pub const ALL: [Column; 6] = [
        Column::Pid,
        Column::Node,
        Column::State,
        Column::User,
        Column::Nice,
        Column::Command,
    ];

    /// The header button's label.
    pub fn title(self) -> &'static str {
        match self {
            Column::Pid => "pid",
            Column::Node => "n#",
            Column::State => "state",
            Column::User => "user",
            Column::Nice => "nice",
            Column::Command => "command line",
        }
    }

    fn width(self) -> f32 {
        match self {
            Column::Pid => 76.0,
            Column::Node => 34.0,
            Column::State => 46.0,
            Column::User => 50.0,
            Column::Nice => 40.0,
            Column::Command => 0.0,
        }
    }

    fn hover(self) -> &'static str {
        match self {
            Column::Pid => "process id on the node where it runs",
            Column::Node => "the node it runs on",
            Column::State => "R running, S sleeping, D disk wait, T stopped, Z zombie",
            Column::User => "user id",
            Column::Nice => "nice value (-20 fast … 19 slow)",
            Column::Command => "command line (name in brackets for kernel threads)",
        }
    }
}

/// Width of the mark column (migrated / locked).
const MARK_WIDTH: f32 = 40.0;

/// One line of the table, as shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The node it runs on (`where`).
    pub node: NodeId,
    /// Its pid there.
    pub pid: i32,
    /// Its parent's pid.
    pub ppid: i32,
    /// Depth in the tree view (0 without it).
    pub depth: usize,
    /// User id.
    pub uid: u32,
    /// State letter.
    pub state: char,
    /// Nice value.
    pub nice: i32,
    /// Short name.
    pub name: String,
    /// Command line.
    pub command: String,
    /// Its home node.
    pub home: NodeId,
    /// Migrated: it runs away from its home node (shown green).
    pub migrated: bool,
    /// Why it cannot move (shown as a lock with this tooltip), if it cannot.
    pub locked: Option<String>,
}

impl Row {
    fn new(p: &ProcInfo, depth: usize) -> Row {
        Row {
            node: p.where_,
            pid: p.pid,
            ppid: p.ppid,
            depth,
            uid: p.uid,
            state: p.state,
            nice: p.nice,
            name: p.comm.lossy(),
            command: p.cmdline.lossy(),
            home: p.home,
            migrated: p.home != p.where_,
            locked: p.cannot_move(),
        }
    }

    /// The accessible label of its pid button.
    pub fn label(&self) -> String {
        pid_label(self.pid, self.node)
    }

    /// The accessible value of its pid button: command line, state, where it comes from
    /// and why it cannot move.
    pub fn value(&self) -> String {
        let mut v = format!("{}, {}", self.command, state_word(self.state));
        if self.migrated {
            v.push_str(&format!(", migrated from node {}", self.home));
        }
        if let Some(r) = &self.locked {
            v.push_str(&format!(", cannot move: {r}"));
        }
        v
    }

    fn matches(&self, filter: &str) -> bool {
        let f = filter.trim().to_lowercase();
        if f.is_empty() {
            return true;
        }
        self.pid.to_string() == f
            || self.uid.to_string() == f
            || self.name.to_lowercase().contains(&f)
            || self.command.to_lowercase().contains(&f)
    }
}

/// The accessible label of a process's pid button: `pid {pid} on node {node}`.
pub fn pid_label(pid: i32, node: NodeId) -> String {
    format!("pid {pid} on node {node}")
}

/// A state letter in words.
pub fn state_word(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'T' => "stopped",
        't' => "tracing stop",
        'Z' => "zombie",
        'X' => "dead",
        'I' => "idle",
        _ => "unknown",
    }
}

fn compare(a: &Row, b: &Row, column: Column) -> Ordering {
    let by = match column {
        Column::Pid => a.pid.cmp(&b.pid),
        Column::Node => a.node.cmp(&b.node),
        Column::State => a.state.cmp(&b.state),
        Column::User => a.uid.cmp(&b.uid),
        Column::Nice => a.nice.cmp(&b.nice),
        Column::Command => a.command.cmp(&b.command),
    };
    by.then(a.node.cmp(&b.node)).then(a.pid.cmp(&b.pid))
}

/// What the user asked for while the box was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxCommand {
    /// Open the migrator of a process (node, pid).
    Migrator(NodeId, i32),
    /// Open the remote-procs window.
    Remote,
    /// Another node was chosen: ask for its list now.
    Refresh,
}

/// The state of the process box.
#[derive(Debug, Clone, Default)]
pub struct ProcessBox {
    /// Whose processes are shown.
    pub choice: Choice,
    /// The filter text (name, command line, pid or uid).
    pub filter: String,
    /// Children indented under their parents.
    pub tree: bool,
    /// The column sorted by.
    pub sort: Column,
    /// Sorted high to low.
    pub descending: bool,
    /// The process last clicked (node, pid).
    pub selected: Option<(NodeId, i32)>,
}

impl ProcessBox {
    /// The rows shown for `lists`, in order.
    pub fn rows(&self, lists: &Lists) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        for (&node, list) in lists {
            if self.choice != Choice::All && self.choice != Choice::Node(node) {
                continue;
            }
            if self.tree {
                rows.extend(self.tree_rows(&list.procs));
            } else {
                rows.extend(list.procs.iter().map(|p| Row::new(p, 0)));
            }
        }
        if !self.tree {
            rows.sort_by(|a, b| self.order(a, b));
        } else if self.choice == Choice::All {
            // Trees stay whole; nodes in the order of the sort column's direction.
            if self.descending && self.sort == Column::Node {
                let mut by_node: BTreeMap<NodeId, Vec<Row>> = BTreeMap::new();
                for r in rows {
                    by_node.entry(r.node).or_default().push(r);
                }
                rows = by_node.into_values().rev().flatten().collect();
            }
        }
        rows.retain(|r| r.matches(&self.filter));
        rows
    }

    fn order(&self, a: &Row, b: &Row) -> Ordering {
        let o = compare(a, b, self.sort);
        if self.descending { o.reverse() } else { o }
    }

    /// One node's processes as a tree: each parent followed by its children, siblings in
    /// the sort order.
    fn tree_rows(&self, procs: &[ProcInfo]) -> Vec<Row> {
        let pids: BTreeSet<i32> = procs.iter().map(|p| p.pid).collect();
        let mut children: BTreeMap<i32, Vec<Row>> = BTreeMap::new();
        let mut roots = Vec::new();
        for p in procs {
            let row = Row::new(p, 0);
            if p.ppid != p.pid && pids.contains(&p.ppid) {
                children.entry(p.ppid).or_default().push(row);
            } else {
                roots.push(row);
            }
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| self.order(a, b));
        }
        roots.sort_by(|a, b| self.order(a, b));
        let mut out = Vec::with_capacity(procs.len());
        let mut stack: Vec<Row> = roots.into_iter().rev().collect();
        while let Some(row) = stack.pop() {
            if let Some(kids) = children.remove(&row.pid) {
                for mut kid in kids.into_iter().rev() {
                    kid.depth = row.depth + 1;
                    stack.push(kid);
                }
            }
            out.push(row);
        }
        out
    }

    /// Draws the box; returns what the user asked for.
    pub fn ui(&mut self, ui: &mut Ui, lists: &Lists, nodes: &[NodeView]) -> Option<BoxCommand> {
        let mut command = None;
        ui.horizontal(|ui| {
            if self.controls_ui(ui, nodes) {
                command = Some(BoxCommand::Refresh);
            }
        });
        let rows = self.rows(lists);
        ui.horizontal(|ui| self.counts_ui(ui, lists, rows.len()));
        ui.separator();
        self.header(ui);
        command = self.rows_ui(ui, &rows).or(command);
        ui.separator();
        ui.horizontal(|ui| {
            if ui
                .button("manage procs from remote")
                .on_hover_text("the guests running on the chosen node")
                .clicked()
            {
                command = Some(BoxCommand::Remote);
            }
            ui.small("double-click a pid (or Tab / arrows to it and Enter) to manage the process");
        });
        command
    }

    /// The node chooser, the filter and the tree switch; whether the choice changed.
    fn controls_ui(&mut self, ui: &mut Ui, nodes: &[NodeView]) -> bool {
        let label = ui.label("node");
        let before = self.choice;
        egui::ComboBox::from_id_salt("procs-node")
            .selected_text(self.choice.text())
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut self.choice, Choice::All, Choice::All.text());
                for n in nodes {
                    let c = Choice::Node(n.id);
                    ui.selectable_value(&mut self.choice, c, c.text());
                }
            })
            .response
            .labelled_by(label.id);
        ui.separator();
        let hint = "name, command, pid or uid";
        widgets::labelled_text(ui, "filter", &mut self.filter, hint, 200.0);
        ui.checkbox(&mut self.tree, "tree")
            .on_hover_text("children indented under their parents");
        self.choice != before
    }

    /// How many processes are shown of how many, and the nodes whose list failed.
    fn counts_ui(&self, ui: &mut Ui, lists: &Lists, shown: usize) {
        let total: usize = lists
            .iter()
            .filter(|(n, _)| self.choice == Choice::All || self.choice == Choice::Node(**n))
            .map(|(_, l)| l.procs.len())
            .sum();
        ui.small(format!("{shown} of {total} processes"));
        for (node, list) in lists {
            if let Some(e) = &list.error {
                ui.small(RichText::new(format!("node {node}: {e}")).color(Color32::RED));
            }
        }
        if lists.is_empty() {
            ui.spinner();
            ui.small("reading the process list…");
        }
    }

    /// The table's rows, striped, in a scroll area that leaves room for the footer.
    fn rows_ui(&mut self, ui: &mut Ui, rows: &[Row]) -> Option<BoxCommand> {
        let mut command = None;
        let row_height = ui.spacing().interact_size.y;
        let footer = ui.spacing().interact_size.y + 2.0 * ui.spacing().item_spacing.y + 6.0;
        egui::ScrollArea::vertical()
            .id_salt("procs-rows")
            .auto_shrink([false, false])
            .max_height((ui.available_height() - footer).max(4.0 * row_height))
            .show_rows(ui, row_height, rows.len(), |ui, range| {
                let first = range.start;
                for (i, row) in rows[range].iter().enumerate() {
                    if (first + i) % 2 == 1 {
                        let rect = egui::Rect::from_min_size(
                            ui.cursor().min,
                            egui::vec2(ui.available_width(), row_height),
                        );
                        ui.painter()
                            .rect_filled(rect, 0.0, ui.visuals().faint_bg_color);
                    }
                    if let Some(c) = self.row_ui(ui, row, row_height) {
                        command = Some(c);
                    }
                }
            });
        command
    }

    fn header(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            cell(ui, MARK_WIDTH, |_| {});
            for column in Column::ALL {
                let width = if column == Column::Command {
                    ui.available_width()
                } else {
                    column.width()
                };
                cell(ui, width, |ui| {
                    let sorted = self.sort == column;
                    let r = ui
                        .add(egui::Button::selectable(
                            sorted,
                            RichText::new(column.title()).strong(),
                        ))
                        .on_hover_text(column.hover());
                    if sorted {
                        ui.label(
                            RichText::new(if self.descending { "▼" } else { "▲" }).monospace(),
                        );
                    }
                    if r.clicked() {
                        if sorted {
                            self.descending = !self.descending;
                        } else {
                            self.sort = column;
                            self.descending = false;
                        }
                    }
                });
            }
        });
    }

    fn row_ui(&mut self, ui: &mut Ui, row: &Row, height: f32) -> Option<BoxCommand> {
        let mut command = None;
        let mut focused = false;
        let line = ui.horizontal(|ui| {
            ui.set_height(height);
            cell(ui, MARK_WIDTH, |ui| marks(ui, row));
            let color = row.migrated.then_some(MIGRATED);
            let colored = |t: String| {
                let t = RichText::new(t).monospace();
                match color {
                    Some(c) => t.color(c),
                    None => t,
                }
            };
            cell(ui, Column::Pid.width(), |ui| {
                let selected = self.selected == Some((row.node, row.pid));
                let r = ui.add(egui::Button::selectable(
                    selected,
                    colored(row.pid.to_string()),
                ));
                let (label, value) = (row.label(), row.value());
                widgets::name(ui, &r, egui::Role::Button, &label, &value);
                focused = r.has_focus();
                if r.clicked() {
                    self.selected = Some((row.node, row.pid));
                }
                // Enter on the focused pid: the keyboard's double-click.
                let enter = focused && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if r.double_clicked() || enter {
                    self.selected = Some((row.node, row.pid));
                    command = Some(BoxCommand::Migrator(row.node, row.pid));
                }
            });
            cell(ui, Column::Node.width(), |ui| {
                ui.label(colored(row.node.to_string()));
            });
            cell(ui, Column::State.width(), |ui| {
                ui.label(colored(row.state.to_string()))
                    .on_hover_text(state_word(row.state));
            });
            cell(ui, Column::User.width(), |ui| {
                ui.label(colored(row.uid.to_string()));
            });
            cell(ui, Column::Nice.width(), |ui| {
                ui.label(colored(row.nice.to_string()));
            });
            let width = ui.available_width();
            cell(ui, width, |ui| command_cell(ui, row, color));
        });
        if focused {
            // The whole row is ringed while its pid has the keyboard focus.
            widgets::ring(ui.painter(), line.response.rect.shrink(1.0));
        }
        command
    }
}

/// A row's marks: green when it migrated, a padlock when it cannot move.
fn marks(ui: &mut Ui, row: &Row) {
    if row.migrated {
        let (rect, r) = ui.allocate_exact_size(Vec2::splat(12.0), egui::Sense::hover());
        ui.painter().rect_filled(rect, 2.0, MIGRATED);
        let text = format!("migrated from node {}", row.home);
        r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, &text));
        r.on_hover_text(format!(
            "migrated: runs on node {}, home is node {}",
            row.node, row.home
        ));
    }
    if let Some(reason) = &row.locked {
        padlock(ui).on_hover_text(format!("cannot move: {reason}"));
    }
}

/// A row's command line, indented under its parent in the tree.
fn command_cell(ui: &mut Ui, row: &Row, color: Option<Color32>) {
    if row.depth > 0 {
        ui.add_space(14.0 * (row.depth - 1) as f32);
        ui.label(RichText::new("└").monospace().weak());
    }
    let text = match color {
        Some(c) => RichText::new(&row.command).color(c),
        None => RichText::new(&row.command),
    };
    ui.add(egui::Label::new(text).truncate());
}

/// A fixed-width cell of a table row.
fn cell<R>(ui: &mut Ui, width: f32, add: impl FnOnce(&mut Ui) -> R) -> R {
    let height = ui.spacing().interact_size.y;
    ui.allocate_ui_with_layout(
        egui::vec2(width, height),
        Layout::left_to_right(Align::Center),
        |ui| {
            ui.set_min_width(width);
            ui.set_max_width(width);
            add(ui)
        },
    )
    .inner
}

/// A small padlock (the fonts have no lock symbol), labelled "locked" for accessibility.
fn padlock(ui: &mut Ui) -> egui::Response {
    let (rect, r) = ui.allocate_exact_size(egui::vec2(12.0, 14.0), egui::Sense::hover());
    let painter = ui.painter();
    let body = egui::Rect::from_min_max(
        egui::pos2(rect.left() + 1.0, rect.center().y - 1.0),
        egui::pos2(rect.right() - 1.0, rect.bottom() - 1.0),
    );
    let stroke = egui::Stroke::new(1.6, LOCKED);
    let (l, r_, top) = (body.left() + 2.5, body.right() - 2.5, rect.top() + 2.0);
    painter.line_segment(
        [egui::pos2(l, body.top()), egui::pos2(l, top + 3.0)],
        stroke,
    );
    painter.line_segment(
        [egui::pos2(r_, body.top()), egui::pos2(r_, top + 3.0)],
        stroke,
    );
    painter.line_segment([egui::pos2(l, top + 3.0), egui::pos2(l + 1.5, top)], stroke);
    painter.line_segment(
        [egui::pos2(r_, top + 3.0), egui::pos2(r_ - 1.5, top)],
        stroke,
    );
    painter.line_segment(
        [egui::pos2(l + 1.5, top), egui::pos2(r_ - 1.5, top)],
        stroke,
    );
    painter.rect_filled(body, 1.5, LOCKED);
    painter.circle_filled(body.center(), 1.3, Color32::from_gray(30));
    r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "locked"));
    r
}
