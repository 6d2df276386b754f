//! openMosixanalyzer (HOWTO 10.7): the load and memory history of the cluster, read from
//! the database openmosixcollector writes, through the collector crate's read API
//! ([`openmosix_store::History`]).
//!
//! - [`Analyzer`]: one window — the load overview (a line per node, red above
//!   [`HIGH_LOAD`]) or the memory overview (mem, rmem, tmem per node), checkpoints as blue
//!   vertical lines, events as markers with their text on hover; 12 hours before the
//!   newest sample by default, zoom and pan beyond; "refresh" follows a live database;
//!   File → open another (older, saved) history.
//! - "find out" per node and for the whole cluster ([`findout`]).
//!
//! Times are shown in UTC. docs/analyzer.md is the user guide.

mod draw;
pub mod findout;
mod lines;
mod memory;
mod plot;
pub mod prometheus;
mod query;
pub mod synth;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use openmosix_gui::path_dialog::{PathChoice, PathDialog, PathPrompt};
use openmosix_hpc::model::NodeId;
use openmosix_store::worker::STOPPED;
use openmosix_store::{Checkpoint, NodeRow, Time};

pub use draw::{BLUE, RED, node_color};
pub use findout::FindOut;
pub use plot::DEBOUNCE;

/// Load above this (×100 scale: 100 = one busy CPU) is drawn red, as in the HOWTO.
pub const HIGH_LOAD: f64 = 75.0;
/// The default view: the span the history holds, at most this long before the newest
/// sample (s).
pub const DEFAULT_SPAN: Time = 12 * 3600;
/// The default view of a history that holds less than this is this long (s).
pub const MIN_SPAN: Time = 5 * 60;
/// How often "refresh" looks at the database.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What the analyzer says of a Prometheus source (the hover text of its address).
pub const PROMETHEUS_NOTE: &str = "load, memory, checkpoints and events from the collector's \
    metrics as Prometheus scraped them; process lists and the events' own sentences are in \
    the SQLite history only";

/// Which overview the plot shows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Overview {
    /// A load line per node.
    #[default]
    Load,
    /// mem, rmem and tmem per node.
    Memory,
}

/// What the analyzer remembers between runs (docs/state.md): the overview, "refresh" and
/// the time range shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AnalyzerState {
    /// The overview shown.
    pub overview: Overview,
    /// Whether "refresh" was on.
    pub refresh: bool,
    /// The seconds shown (from, to), once the history was loaded.
    pub range: Option<(Time, Time)>,
}

/// A time for people: `YYYY-mm-dd HH:MM:SS UTC`.
pub fn time_text(t: Time) -> String {
    openmosix_store::utc_text(t)
}

/// openMosixanalyzer.
#[derive(Debug)]
pub struct Analyzer {
    path: PathBuf,
    /// The file read (the live link's target), once the history thread opened it.
    file: Option<PathBuf>,
    /// The window's context, for the history thread to wake it (set on the first frame).
    ctx: Arc<OnceLock<egui::Context>>,
    nodes: Vec<NodeRow>,
    range: Option<(Time, Time)>,
    overview: Overview,
    refresh: bool,
    last_poll: Option<Instant>,
    plot: plot::PlotState,
    findouts: Vec<FindOut>,
    open_file: Option<PathDialog>,
    error: Option<String>,
    /// The collector moved a damaged history aside to start this one (what it recorded).
    set_aside: Option<String>,
    /// A time right-clicked in the plot, for the history browser.
    history_request: Option<Time>,
    /// The range to show at the first look at the history instead of the newest 12 h
    /// (the one remembered).
    first_view: Option<(Time, Time)>,
    /// The Prometheus server read instead of a history file (`--prometheus URL`).
    prometheus: Option<String>,
}

/// The default view: what the history holds up to its newest sample, at least
/// [`MIN_SPAN`] and at most [`DEFAULT_SPAN`] (12 h before now while it is unknown).
fn home(range: Option<(Time, Time)>) -> (f64, f64) {
    let (hi, span) = range.map_or_else(
        || (openmosix_store::now(), DEFAULT_SPAN),
        |(lo, hi)| (hi, (hi - lo).clamp(MIN_SPAN, DEFAULT_SPAN)),
    );
    ((hi - span) as f64, hi as f64)
}

impl Analyzer {
    /// Opens the history at `path` (the collector's live link or a saved file). Only
    /// whether the path exists is looked at here: the history thread opens the file and
    /// reads its nodes and range while the window already draws ("loading…"); a file
    /// that is not a history shows its error in the window.
    pub fn open(path: impl AsRef<Path>) -> Result<Analyzer, String> {
        let path = path.as_ref();
        std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let ctx = Arc::new(OnceLock::new());
        let worker = query::spawn(path.to_path_buf(), Arc::clone(&ctx));
        Ok(Analyzer::with_worker(path.to_path_buf(), ctx, worker, None))
    }

    /// An analyzer whose history thread is `worker` (waking the window through `ctx`);
    /// it asks for the nodes and the range at once.
    fn with_worker(
        path: PathBuf,
        ctx: Arc<OnceLock<egui::Context>>,
        worker: query::Worker,
        prometheus: Option<String>,
    ) -> Analyzer {
        let mut plot = plot::PlotState {
            home: home(None),
            force: true,
            worker: Some(worker),
            ..plot::PlotState::default()
        };
        plot.ask_poll(true);
        Analyzer {
            path,
            file: None,
            ctx,
            nodes: Vec::new(),
            range: None,
            overview: Overview::Load,
            refresh: false,
            last_poll: None,
            plot,
            findouts: Vec::new(),
            open_file: None,
            error: None,
            set_aside: None,
            history_request: None,
            first_view: None,
            prometheus,
        }
    }

    /// The buckets in hand per node (for tests: what the plot's lines are drawn from),
    /// and their width (s).
    pub fn buckets(&self) -> (Time, Vec<(NodeId, Vec<openmosix_store::Bucket>)>) {
        self.plot.data.as_ref().map_or((0, Vec::new()), |d| {
            (
                d.bucket,
                d.buckets.iter().map(|(n, b)| (*n, b.clone())).collect(),
            )
        })
    }

    /// Replaces the history shown by the one at `path`; the view starts anew.
    pub fn open_other(&mut self, path: impl AsRef<Path>) -> Result<(), String> {
        let mut other = Analyzer::open(path)?;
        other.overview = self.overview;
        other.refresh = self.refresh;
        other.plot.generation = self.plot.generation + 1;
        *self = other;
        Ok(())
    }

    /// The path opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The note shown when the collector started this history because the one before
    /// was damaged: "the collector found the history before this one damaged and moved
    /// it aside: NAME: WHY (at TIME)".
    pub fn set_aside_note(&self) -> Option<String> {
        self.set_aside.as_ref().map(|s| {
            format!(
                "the collector found the history before this one damaged and moved it aside: {s}"
            )
        })
    }

    /// The file read (the live link's target), once the history thread opened it.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The overview shown.
    pub fn overview(&self) -> Overview {
        self.overview
    }

    /// Shows the load or the memory overview.
    pub fn set_overview(&mut self, overview: Overview) {
        if self.overview != overview {
            self.overview = overview;
            self.plot.rebuild(overview);
        }
    }

    /// Whether "refresh" is on.
    pub fn refresh(&self) -> bool {
        self.refresh
    }

    /// Turns "refresh" on or off.
    pub fn set_refresh(&mut self, on: bool) {
        self.refresh = on;
    }

    /// What to remember of the analyzer.
    pub fn remembered(&self) -> AnalyzerState {
        AnalyzerState {
            overview: self.overview,
            refresh: self.refresh,
            range: self
                .plot
                .visible
                .map(|_| self.shown_range())
                .or(self.first_view),
        }
    }

    /// Shows the overview and the range remembered (the range once the history is read).
    pub fn restore(&mut self, state: AnalyzerState) {
        self.set_overview(state.overview);
        self.set_refresh(state.refresh);
        self.first_view = state.range.filter(|(from, to)| from < to);
    }

    /// Shows `from..=to` (s) from the next frame on.
    pub fn set_view(&mut self, from: Time, to: Time) {
        self.plot.pending = Some((from as f64, to as f64));
        self.plot.force = true;
    }

    /// The whole seconds shown (inclusive): the range "find out" uses.
    pub fn shown_range(&self) -> (Time, Time) {
        let (lo, hi) = self.plot.visible.unwrap_or(self.plot.home);
        (lo.ceil() as Time, hi.floor() as Time)
    }

    /// The nodes of the history.
    pub fn nodes(&self) -> &[NodeRow] {
        &self.nodes
    }

    /// First and last sample time of the history.
    pub fn range(&self) -> Option<(Time, Time)> {
        self.range
    }

    /// The plotted series of the current overview: node and points of its main line
    /// (load, or mem) over all its gap-free stretches.
    pub fn visible_series(&self) -> Vec<(NodeId, usize)> {
        self.plot
            .series
            .iter()
            .map(|s| (s.node, s.points()))
            .collect()
    }

    /// The plot's width in points in the last frame.
    pub fn plot_width(&self) -> f32 {
        self.plot.width
    }

    /// The checkpoints drawn (blue lines).
    pub fn checkpoints(&self) -> &[Checkpoint] {
        self.plot
            .data
            .as_ref()
            .map_or(&[][..], |d| d.checkpoints.as_slice())
    }

    /// The events drawn as markers.
    pub fn events(&self) -> &[openmosix_store::EventRow] {
        self.plot
            .data
            .as_ref()
            .map_or(&[][..], |d| d.events.as_slice())
    }

    /// Queries of the history answered so far.
    pub fn queries(&self) -> u64 {
        self.plot.queries
    }

    /// Whether a query of the history is outstanding or due (the plot still shows the
    /// old data).
    pub fn loading(&self) -> bool {
        self.plot.force || self.plot.busy()
    }

    /// Blocks until the history thread answered the outstanding query, or `timeout`
    /// passed; true when nothing is outstanding any more. For tests: the UI never waits.
    pub fn wait_idle(&mut self, timeout: Duration) -> bool {
        let idle = match self.plot.wait_idle(self.overview, timeout) {
            Ok(idle) => idle,
            Err(e) => {
                self.error = Some(e);
                true
            }
        };
        self.take_replies();
        idle
    }

    /// The time (unix seconds) right-clicked in the plot ("show processes at this time"),
    /// once: the host shows the history browser at that time.
    pub fn take_history_request(&mut self) -> Option<Time> {
        self.history_request.take()
    }

    /// The "find out" windows open.
    pub fn find_outs(&self) -> &[FindOut] {
        &self.findouts
    }

    /// Opens "find out" for `node` (`None`: the cluster) over the range shown: asks the
    /// history thread, the window opens with its answer.
    pub fn find_out(&mut self, node: Option<NodeId>) {
        let (from, to) = self.shown_range();
        if !self.plot.ask_find_out(node, from, to) {
            self.plot
                .findouts_in
                .push(FindOut::failed(node, from, to, STOPPED.to_owned()));
        }
        self.take_find_outs();
    }

    /// Looks at the answers of the history thread: "refresh" polls and "find out".
    fn take_replies(&mut self) {
        for p in std::mem::take(&mut self.plot.polled) {
            match p {
                query::Polled::Same => {}
                query::Polled::Rotated => {
                    let path = self.path.clone();
                    if let Err(e) = self.open_other(&path) {
                        self.error = Some(e);
                    }
                    return;
                }
                query::Polled::Changed(file, nodes, range, set_aside) => {
                    self.set_aside = set_aside;
                    let first = self.file.replace(file).is_none();
                    self.reload(nodes, range);
                    if first {
                        // The first look: the view moves to the newest 12 h, or to the
                        // range remembered.
                        self.plot.pending = Some(
                            self.first_view
                                .take()
                                .map_or(self.plot.home, |(a, b)| (a as f64, b as f64)),
                        );
                    }
                }
                query::Polled::Failed(e) => self.error = Some(e),
            }
        }
        self.take_find_outs();
    }

    /// Shows the "find out" answers in.
    fn take_find_outs(&mut self) {
        for f in std::mem::take(&mut self.plot.findouts_in) {
            self.findouts.retain(|o| o.node != f.node);
            self.findouts.push(f);
        }
    }

    /// The analyzer as a window of a host application (openMosixview).
    pub fn show(&mut self, ctx: &egui::Context, open: &mut bool) {
        egui::Window::new("openMosixanalyzer")
            .id(egui::Id::unique("openmosixanalyzer"))
            .open(open)
            .default_pos([50.0, 60.0])
            .default_size([1000.0, 620.0])
            .resizable(true)
            .show(ctx, |ui| self.ui(ui));
    }

    /// Draws the analyzer into `ui`.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let now = Instant::now();
        self.ctx.get_or_init(|| ui.ctx().clone());
        if let Err(e) = self.plot.receive_all(self.overview) {
            self.error = Some(e);
        }
        self.take_replies();
        self.poll(now);
        if self.refresh {
            ui.ctx().request_repaint_after(POLL_EVERY);
        }
        egui::Panel::top("openmosixanalyzer menu").show(ui, |ui| self.menu(ui));
        egui::Panel::top("openmosixanalyzer header").show(ui, |ui| self.header(ui));
        egui::Panel::left("openmosixanalyzer nodes")
            .resizable(true)
            .default_size(170.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.side(ui));
            });
        egui::CentralPanel::default_margins().show(ui, |ui| self.draw_plot(ui));
        match self.plot.update(self.range, self.overview, now) {
            Ok(Some(wait)) => ui.ctx().request_repaint_after(wait),
            Ok(None) => {}
            Err(e) => self.error = Some(e),
        }
        self.take_replies();
        let ctx = ui.ctx().clone();
        for f in &mut self.findouts {
            f.show(&ctx);
        }
        self.findouts.retain(|f| f.open);
        self.open_file_window(&ctx);
    }

    fn menu(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("open another history…").clicked() {
                    self.open_file = Some(PathDialog::new(self.path.display().to_string()));
                    ui.close();
                }
                if ui.button("reload").clicked() {
                    self.plot.ask_poll(true);
                    ui.close();
                }
            });
            let theme = openmosix_gui::theme::view_menu(ui);
            openmosix_gui::theme::apply(ui.ctx(), theme);
        });
    }

    fn header(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let mut ov = self.overview;
            ui.selectable_value(&mut ov, Overview::Load, "load overview");
            ui.selectable_value(&mut ov, Overview::Memory, "memory overview");
            self.set_overview(ov);
            ui.separator();
            ui.checkbox(&mut self.refresh, "refresh")
                .on_hover_text("follow the live database");
            ui.separator();
            let (from, to) = self.shown_range();
            ui.label(format!("from {} to {}", time_text(from), time_text(to)));
            // Opening the file counts as loading too (a poll before the first answer).
            if self.plot.loading() || (self.plot.busy() && self.file.is_none()) {
                ui.separator();
                ui.spinner();
                ui.label("loading…");
            }
        });
        ui.horizontal(|ui| {
            match (&self.prometheus, &self.file) {
                (Some(url), _) => ui
                    .weak(format!("Prometheus: {url}"))
                    .on_hover_text(PROMETHEUS_NOTE),
                (None, Some(f)) => ui.weak(format!("file: {}", f.display())),
                (None, None) => ui.weak(format!("opening {}", self.path.display())),
            };
            if self.range.is_none() && self.file.is_some() {
                ui.label("no samples yet");
            }
            if let Some(e) = &self.error {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        });
        if let Some(note) = self.set_aside_note() {
            ui.colored_label(ui.visuals().warn_fg_color, note);
        }
    }

    fn side(&mut self, ui: &mut egui::Ui) {
        ui.strong("nodes");
        if ui.button("find out cluster").clicked() {
            self.find_out(None);
        }
        ui.separator();
        let mut clicked = None;
        for (i, n) in self.nodes.iter().enumerate() {
            ui.horizontal(|ui| {
                let (rect, _) =
                    ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                ui.painter().rect_filled(rect, 2.0, node_color(i));
                if ui
                    .button(format!("find out node {}", n.id))
                    .on_hover_text(&n.address)
                    .clicked()
                {
                    clicked = Some(n.id);
                }
            });
        }
        if let Some(id) = clicked {
            self.find_out(Some(id));
        }
        ui.separator();
        let cps = self.checkpoints();
        ui.strong(format!("checkpoints: {}", cps.len()));
        for c in cps {
            ui.label(format!(
                "checkpoint {}: {}",
                time_text(c.time_ms.div_euclid(1000)),
                c.note
            ))
            .on_hover_text("a blue line in the plot");
        }
        ui.separator();
        let events = self.events();
        ui.strong(format!("events: {}", events.len()));
        for e in events.iter().rev().take(50) {
            ui.label(format!(
                "{} node {} {}",
                &time_text(e.time_ms.div_euclid(1000))[11..19],
                e.node,
                e.kind
            ))
            .on_hover_text(&e.text);
        }
    }

    fn open_file_window(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.open_file else {
            return;
        };
        let prompt = PathPrompt {
            title: "open history",
            note: Some("a history file (the live link, or a saved history-….db)"),
            field: "history file",
            cancel: false,
        };
        match dialog.show(ctx, &prompt) {
            PathChoice::Waiting => {}
            PathChoice::Closed => self.open_file = None,
            PathChoice::Open(path) => {
                if let Err(e) = self.open_other(&path)
                    && let Some(dialog) = &mut self.open_file
                {
                    dialog.error = Some(e);
                }
            }
        }
    }

    /// Takes in the node list and the range read again, following the newest sample if
    /// the view showed it.
    fn reload(&mut self, nodes: Vec<NodeRow>, range: Option<(Time, Time)>) {
        let old = self.range;
        self.nodes = nodes;
        self.range = range;
        self.error = None;
        if let (Some(o), Some(n), Some(v)) = (old, self.range, self.plot.visible)
            && n.1 > o.1
            && v.1 >= o.1 as f64 - 1.0
        {
            let d = (n.1 - o.1) as f64;
            self.plot.pending = Some((v.0 + d, v.1 + d));
        }
        self.plot.home = home(self.range);
        self.plot.force = true;
    }

    /// "refresh": asks the history thread once a second whether there is new data (or a
    /// rotated live file); [`Self::take_replies`] takes the answer in.
    fn poll(&mut self, now: Instant) {
        if !self.refresh
            || self
                .last_poll
                .is_some_and(|t| now.duration_since(t) < POLL_EVERY)
        {
            return;
        }
        if self.plot.ask_poll(false) {
            self.last_poll = Some(now);
        }
    }
}
