//! The monitor as a program's only window (openmosixmigmon): its menu bar (the theme
//! setting), the source's outcomes, and the monitor filling the rest.

use std::time::Instant;

use openmosix_gui::{ClusterSource, theme};

use crate::MigMon;

impl MigMon {
    /// One frame of a program that shows only the monitor: the menu bar, polling, the
    /// source's outcomes, and the monitor drawn into `ui` (the root).
    pub fn root_ui(&mut self, ui: &mut egui::Ui, source: &dyn ClusterSource, now: Instant) {
        source.set_repaint(ui.ctx());
        let chosen = theme::menu_bar(ui, "openmosixmigmon");
        theme::apply(ui.ctx(), chosen);
        // Outcomes first: lists that came in without waking the window (nothing new in
        // them) are answered, so that their nodes are asked again now.
        for (ticket, outcome) in source.outcomes() {
            self.on_outcome(ticket, &outcome);
        }
        self.poll(source, now);
        egui::CentralPanel::default_margins().show(ui, |ui| self.ui(ui, source));
    }
}
