//! The history browser window: a time slider over the recorded snapshots and the
//! cluster's process list as of that time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use egui::{RichText, Ui};
use openmosix_gui::path_dialog::{PathChoice, PathDialog, PathPrompt};
use openmosix_store::{ProcRow, Time, utc_text};

use crate::rows::{COLUMNS, cell, row_ui};
use crate::worker::Worker;

mod answers;

/// How often the live history is polled for new data when "refresh" is on.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// openMosixhistory: the process list of the past.
#[derive(Debug)]
pub struct HistoryBrowser {
    /// The path opened (the live link or a saved file).
    path: PathBuf,
    /// The file read (the link's target), once a history is open.
    file: Option<PathBuf>,
    /// Why nothing can be shown (opening or reading failed).
    error: Option<String>,
    /// First and last sample time.
    range: Option<(Time, Time)>,
    /// The recorded snapshot times in the range: the slider's stops.
    stops: Vec<Time>,
    /// The time shown (or asked for: its processes may still be on their way).
    time: Time,
    /// The processes at `time` (once the answer is in).
    rows: Vec<ProcRow>,
    /// Re-read when the history changes (live).
    refresh: bool,
    /// Stay at the newest snapshot while the history grows.
    follow: bool,
    last_poll: Option<Instant>,
    filter: String,
    where_pid: String,
    where_answer: Option<String>,
    open_dialog: Option<PathDialog>,
    /// The thread that owns the history and answers every query (started at the first).
    worker: Option<Worker>,
    /// A history being opened (the first one, one chosen with File → open, or the live
    /// link's new file after a rotation): the request's id.
    opening: Option<u64>,
    /// The newest request for the processes, for "where was pid", and the "refresh" poll
    /// that are not answered yet.
    rows_asked: Option<u64>,
    where_asked: Option<u64>,
    poll_asked: Option<u64>,
    /// Answers for the processes or "where was pid" taken in (superseded ones included).
    answers: u64,
    /// A time asked for before the history was open.
    pending_time: Option<Time>,
    /// The window's context, for the worker to wake it (set on the first frame).
    ctx: Arc<OnceLock<egui::Context>>,
}

impl HistoryBrowser {
    /// Opens the history at `path` (the collector's live link or a saved file) and shows
    /// its newest snapshot. Only whether the path exists is looked at here: a thread
    /// opens the file and reads it while the window draws ("loading…"); a file that is
    /// not a history shows its error in the window.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, String> {
        let path = path.as_ref();
        std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut b = Self::unopened(path, None);
        b.follow = true;
        b.start_opening(path.to_path_buf());
        Ok(b)
    }

    /// Whether a history is being opened.
    pub fn loading(&self) -> bool {
        self.opening.is_some()
    }

    /// Whether any answer is still on its way: a history being opened, the processes
    /// of the time chosen, a "where was pid" answer or a "refresh" look at the file.
    pub fn busy(&self) -> bool {
        self.opening.is_some()
            || self.rows_asked.is_some()
            || self.where_asked.is_some()
            || self.poll_asked.is_some()
    }

    /// Waits up to `timeout` until every answer asked for is in and shown, including
    /// what those answers ask next (a time chosen while the file was opened, the new
    /// file after a rotation). For tests: the window never waits. True when nothing is
    /// outstanding any more.
    pub fn wait_loaded(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.busy() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(answer) = self.worker.as_ref().and_then(|w| w.wait(left)) else {
                return false;
            };
            self.take_in(answer);
        }
        true
    }

    /// A browser with nothing open, showing `error` (if any) and the File menu, e.g.
    /// when the default history does not exist yet.
    pub fn unopened(path: impl AsRef<Path>, error: Option<String>) -> Self {
        HistoryBrowser {
            path: path.as_ref().to_path_buf(),
            file: None,
            error,
            range: None,
            stops: Vec::new(),
            time: 0,
            rows: Vec::new(),
            refresh: true,
            follow: false,
            last_poll: None,
            filter: String::new(),
            where_pid: String::new(),
            where_answer: None,
            open_dialog: None,
            worker: None,
            opening: None,
            rows_asked: None,
            where_asked: None,
            poll_asked: None,
            answers: 0,
            pending_time: None,
            ctx: Arc::new(OnceLock::new()),
        }
    }

    /// Opens another history in place of this one (a thread reads it; the old one is
    /// shown until it is in, and stays if it cannot be read). A path that does not
    /// exist is an error at once.
    pub fn open_path(&mut self, path: impl AsRef<Path>) -> Result<(), String> {
        let path = path.as_ref();
        std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        self.start_opening(path.to_path_buf());
        Ok(())
    }

    /// Shows the processes as of `time` (clamped to the history's range; not snapped,
    /// so that a jump from elsewhere shows exactly that moment). The time changes at
    /// once; the processes follow when the worker has read them ("loading…" until then).
    pub fn set_time(&mut self, time: Time) {
        if self.file.is_none() && self.opening.is_some() {
            self.pending_time = Some(time);
            return;
        }
        let t = match self.range {
            Some((lo, hi)) => time.clamp(lo, hi),
            None => time,
        };
        self.follow = self.is_at_end(t);
        self.show_time(t);
    }

    /// How many answers for the processes or "where was pid" the worker sent (for
    /// tests: requests waiting behind a slow query are answered once, for the newest).
    pub fn answers(&self) -> u64 {
        self.answers
    }

    /// The time shown (or asked for: see [`HistoryBrowser::busy`]).
    pub fn time(&self) -> Time {
        self.time
    }

    /// The processes shown (before the filter), ordered by node and pid.
    pub fn rows(&self) -> &[ProcRow] {
        &self.rows
    }

    /// The recorded snapshot times (the slider's stops).
    pub fn snapshot_times(&self) -> &[Time] {
        &self.stops
    }

    /// First and last sample time of the history.
    pub fn range(&self) -> Option<(Time, Time)> {
        self.range
    }

    /// The file read (the link's target when the live link was opened).
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// What went wrong last, if anything.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the "refresh" checkbox is on.
    pub fn refresh(&self) -> bool {
        self.refresh
    }

    /// Turns following the live history on or off.
    pub fn set_refresh(&mut self, on: bool) {
        self.refresh = on;
    }

    /// The window, with a close button bound to `open`.
    pub fn show(&mut self, ctx: &egui::Context, open: &mut bool) {
        egui::Window::new("openMosixhistory")
            .id(egui::Id::unique("openmosixhistory"))
            .open(open)
            .default_pos([60.0, 110.0])
            .default_size([760.0, 520.0])
            .show(ctx, |ui| self.ui(ui));
    }

    /// The window's contents (polls the live history first).
    pub fn ui(&mut self, ui: &mut Ui) {
        self.ctx.get_or_init(|| ui.ctx().clone());
        self.take_answers();
        self.poll(Instant::now());
        if self.refresh && self.file.is_some() {
            ui.ctx().request_repaint_after(POLL_EVERY);
        }
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("open…").clicked() {
                    self.open_dialog = Some(PathDialog::new(self.path.display().to_string()));
                    ui.close();
                }
            });
            let theme = openmosix_gui::theme::view_menu(ui);
            openmosix_gui::theme::apply(ui.ctx(), theme);
        });
        self.open_window(ui.ctx());
        ui.horizontal(|ui| {
            ui.label("file:");
            let shown = self.file().unwrap_or(&self.path).display().to_string();
            ui.label(RichText::new(shown).monospace());
            // The analyzer can read Prometheus (`--prometheus`); process lists are not
            // metrics, so this window always reads the collector's SQLite history.
            ui.weak("SQLite history only: Prometheus keeps no process lists");
            if self.opening.is_some() {
                ui.spinner();
                ui.label("loading…");
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.checkbox(&mut self.refresh, "refresh")
                    .on_hover_text("follow the live history: re-read it when it changes");
            });
        });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let Some((lo, hi)) = self.range else {
            if self.file.is_some() {
                ui.label("This history has no samples yet.");
            }
            return;
        };
        self.time_ui(ui, lo, hi);
        ui.separator();
        self.where_ui(ui);
        ui.horizontal(|ui| {
            let label = ui.label("filter");
            ui.add(
                egui::TextEdit::singleline(&mut self.filter)
                    .hint_text("pid, node, state or command")
                    .desired_width(220.0),
            )
            .labelled_by(label.id);
            let shown = self.rows.iter().filter(|p| self.matches(p)).count();
            ui.label(format!(
                "{shown} of {} processes on {} nodes",
                self.rows.len(),
                self.node_count()
            ));
            if self.rows_asked.is_some() {
                ui.spinner();
                ui.label("loading…")
                    .on_hover_text(format!("the processes as of {}", utc_text(self.time)));
            }
        });
        ui.separator();
        self.list_ui(ui);
    }

    fn time_ui(&mut self, ui: &mut Ui, lo: Time, hi: Time) {
        ui.horizontal(|ui| {
            let label = ui.label("time");
            let prev = self.stops.iter().rev().find(|&&t| t < self.time).copied();
            let next = self.stops.iter().find(|&&t| t > self.time).copied();
            if step_button(ui, "«", "previous snapshot", prev.is_some()).clicked()
                && let Some(t) = prev
            {
                self.set_time(t);
            }
            let mut t = self.time;
            // Room for the "»" button after the slider.
            let next_width = 2.0 * ui.spacing().button_padding.x
                + ui.spacing().interact_size.y
                + ui.spacing().item_spacing.x;
            ui.spacing_mut().slider_width = (ui.available_width() - next_width).max(120.0);
            let r = ui
                .add_enabled(
                    lo < hi,
                    egui::Slider::new(&mut t, lo..=hi)
                        .show_value(false)
                        .smart_aim(false),
                )
                .labelled_by(label.id)
                .on_hover_text(utc_text(t));
            if r.changed() && t != self.time {
                let snapped = self.snap(t);
                self.set_time(snapped);
            }
            if step_button(ui, "»", "next snapshot", next.is_some()).clicked()
                && let Some(t) = next
            {
                self.set_time(t);
            }
        });
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("as of {}", utc_text(self.time))).strong());
            let pos = self.stops.partition_point(|&s| s <= self.time);
            let note = if self.stops.binary_search(&self.time).is_ok() {
                format!("snapshot {pos} of {}", self.stops.len())
            } else {
                format!("between snapshots ({} recorded)", self.stops.len())
            };
            ui.label(note);
            ui.label(format!("· history {} – {}", utc_text(lo), utc_text(hi)));
        });
    }

    fn where_ui(&mut self, ui: &mut Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("where was pid");
            let r = ui
                .add(egui::TextEdit::singleline(&mut self.where_pid).desired_width(80.0))
                .labelled_by(label.id);
            if r.changed() {
                self.answer_where();
            }
            if self.where_asked.is_some() {
                ui.spinner();
                ui.label("loading…");
            } else if let Some(a) = &self.where_answer {
                ui.label(a);
            }
        });
    }

    /// The list: a header, then only the rows in view (thousands of processes stay
    /// smooth); rows the "where was pid" answer names are highlighted.
    fn list_ui(&self, ui: &mut Ui) {
        if self.rows_asked.is_some() {
            // The list of the time shown before, faded until the new one is in.
            ui.multiply_opacity(0.5);
        } else if self.rows.is_empty() {
            ui.label("No process was recorded at this time.");
            return;
        }
        let shown: Vec<&ProcRow> = self.rows.iter().filter(|p| self.matches(p)).collect();
        let wanted = self.where_pid.trim().parse::<i32>().ok();
        ui.horizontal(|ui| {
            for (name, width) in ["pid", "node", "home", "state", "command line"]
                .into_iter()
                .zip(COLUMNS)
            {
                cell(ui, width, |ui| {
                    ui.label(RichText::new(name).strong());
                });
            }
        });
        let height = ui.text_style_height(&egui::TextStyle::Monospace) + 6.0;
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show_rows(ui, height, shown.len(), |ui, range| {
                for (i, p) in shown[range.clone()].iter().enumerate() {
                    let found =
                        wanted.is_some_and(|w| p.pid == w || (p.home_pid == w && p.home != p.node));
                    row_ui(ui, p, height, (range.start + i) % 2 == 1, found);
                }
            });
    }

    fn matches(&self, p: &ProcRow) -> bool {
        let f = self.filter.trim();
        if f.is_empty() {
            return true;
        }
        let f = f.to_lowercase();
        p.pid.to_string() == f
            || format!("node {}", p.node) == f
            || p.node.to_string() == f
            || p.state.to_string().to_lowercase() == f
            || p.cmdline.to_lowercase().contains(&f)
    }

    fn node_count(&self) -> usize {
        let mut nodes: Vec<_> = self.rows.iter().map(|p| p.node).collect();
        nodes.dedup();
        nodes.len()
    }

    /// The recorded snapshot time nearest `t`, or `t` if there is none.
    fn snap(&self, t: Time) -> Time {
        let i = self.stops.partition_point(|&s| s < t);
        let after = self.stops.get(i).copied();
        let before = i.checked_sub(1).and_then(|j| self.stops.get(j)).copied();
        match (before, after) {
            (Some(b), Some(a)) => {
                if t - b <= a - t {
                    b
                } else {
                    a
                }
            }
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => t,
        }
    }

    fn is_at_end(&self, t: Time) -> bool {
        match self.stops.last() {
            Some(&last) => t >= last,
            None => self.range.is_some_and(|(_, hi)| t >= hi),
        }
    }

    fn open_window(&mut self, ctx: &egui::Context) {
        let Some(mut dialog) = self.open_dialog.take() else {
            return;
        };
        let prompt = PathPrompt {
            title: "open a history",
            note: Some("A history file of openmosixcollector: the live link or a saved one."),
            field: "path",
            cancel: false,
        };
        match dialog.show(ctx, &prompt) {
            PathChoice::Waiting => self.open_dialog = Some(dialog),
            PathChoice::Closed => {}
            PathChoice::Open(path) => {
                if let Err(e) = self.open_path(&path) {
                    dialog.error = Some(e);
                    self.open_dialog = Some(dialog);
                }
            }
        }
    }
}

fn step_button(ui: &mut Ui, text: &str, label: &str, enabled: bool) -> egui::Response {
    let r = ui
        .add_enabled(enabled, egui::Button::new(text))
        .on_hover_text(label);
    r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, enabled, label));
    r
}
