//! "Find out" (HOWTO 10.7.2): min, max and mean of load and memory of a node, or of the
//! whole cluster, over the time range shown, with the static data.
//!
//! Every figure is a label of its own (`load min: 12.00`, `mem mean: 1000.5 MiB`,
//! `CPUs: 2` …) so that tests and screen readers find it.

use openmosix_hpc::model::NodeId;
use openmosix_store::{History, Stats, Time};

use crate::time_text;

/// One "find out" window.
#[derive(Debug, Clone)]
pub struct FindOut {
    /// The node, or `None` for the whole cluster.
    pub node: Option<NodeId>,
    /// The range (s, inclusive).
    pub from: Time,
    pub to: Time,
    /// `None` when there is no sample in the range.
    pub stats: Option<Stats>,
    /// What went wrong asking the history.
    pub error: Option<String>,
    /// Still shown.
    pub open: bool,
}

/// Load as stored (×100: 100 = one busy CPU), two decimals.
pub fn fmt_load(load: f64) -> String {
    format!("{load:.2}")
}

/// Bytes as MiB, one decimal.
pub fn fmt_mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1u64 << 20) as f64)
}

impl FindOut {
    /// Asks the history for `node` (or the cluster) over `from..=to`.
    pub fn new(history: &History, node: Option<NodeId>, from: Time, to: Time) -> FindOut {
        let (stats, error) = match history.stats(node, from, to) {
            Ok(s) => (s, None),
            Err(e) => (None, Some(e.to_string())),
        };
        FindOut {
            node,
            from,
            to,
            stats,
            error,
            open: true,
        }
    }

    /// A "find out" that could not ask the history.
    pub fn failed(node: Option<NodeId>, from: Time, to: Time, error: String) -> FindOut {
        FindOut {
            node,
            from,
            to,
            stats: None,
            error: Some(error),
            open: true,
        }
    }

    /// The window's title.
    pub fn title(&self) -> String {
        match self.node {
            Some(n) => format!("find out: node {n}"),
            None => "find out: cluster".to_owned(),
        }
    }

    /// Shows the window (closes itself with "close").
    pub fn show(&mut self, ctx: &egui::Context) {
        let mut open = self.open;
        let mut close = false;
        egui::Window::new(self.title())
            .id(egui::Id::unique(("openmosixanalyzer findout", self.node)))
            .open(&mut open)
            .resizable(false)
            .default_pos([320.0, 140.0])
            .show(ctx, |ui| close = self.ui(ui));
        self.open = open && !close;
    }

    /// The contents; true when "close" was clicked.
    pub fn ui(&self, ui: &mut egui::Ui) -> bool {
        ui.heading(match self.node {
            Some(n) => format!("Informations about node {n}"),
            None => "Informations about the whole cluster".to_owned(),
        });
        ui.label(format!("from: {}", time_text(self.from)));
        ui.label(format!("to: {}", time_text(self.to)));
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        match &self.stats {
            None => {
                ui.label("no samples in this range");
            }
            Some(s) => {
                egui::Grid::new(("findout grid", self.node))
                    .num_columns(3)
                    .spacing([24.0, 6.0])
                    .striped(true)
                    .show(ui, |ui| {
                        ui.strong("Load");
                        ui.strong("Memory");
                        ui.strong("static data");
                        ui.end_row();
                        ui.label(format!("load min: {}", fmt_load(s.min_load)));
                        ui.label(format!("mem min: {}", fmt_mib(s.min_mem as f64)));
                        ui.label(format!("CPUs: {}", s.cpus));
                        ui.end_row();
                        ui.label(format!("load max: {}", fmt_load(s.max_load)));
                        ui.label(format!("mem max: {}", fmt_mib(s.max_mem as f64)));
                        ui.label(format!("avail. mem: {}", fmt_mib(s.tmem as f64)));
                        ui.end_row();
                        ui.label(format!("load mean: {}", fmt_load(s.mean_load)));
                        ui.label(format!("mem mean: {}", fmt_mib(s.mean_mem)));
                        ui.label(format!("speed: {}", s.speed));
                        ui.end_row();
                        ui.label("");
                        ui.label(format!("rmem min: {}", fmt_mib(s.min_rmem as f64)));
                        ui.label(format!("samples: {}", s.samples));
                        ui.end_row();
                        ui.label("");
                        ui.label(format!("rmem max: {}", fmt_mib(s.max_rmem as f64)));
                        ui.label("");
                        ui.end_row();
                        ui.label("");
                        ui.label(format!("rmem mean: {}", fmt_mib(s.mean_rmem)));
                        ui.label("");
                        ui.end_row();
                    });
            }
        }
        ui.add_space(6.0);
        ui.button("close").clicked()
    }
}
