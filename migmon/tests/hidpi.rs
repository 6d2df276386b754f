//! openmosixmigmon at a scale factor of 2 (and 1), at its first-start size, over a
//! made-up cluster: nothing named is clipped or covers something else; and its theme
//! setting.

use std::time::Instant;

use egui_kittest::Harness;
use openmosix_gui::StaticSource;
use openmosix_gui::desktop::MIGMON;
use openmosix_gui::remember::Remember;
use openmosix_testbed::gui::bounds::assert_layout_fits;
use openmosix_testbed::gui::made_up;
use openmosix_testbed::gui::theme::assert_theme_setting;
use openmosixmigmon::MigMon;

/// The program's app, as its main.rs has it (what it remembers aside).
struct App {
    source: StaticSource,
    monitor: MigMon,
}

impl Remember for App {
    type State = ();

    fn remembered(&self) {}

    fn ui(&mut self, ui: &mut egui::Ui) {
        self.monitor.root_ui(ui, &self.source, Instant::now());
    }
}

fn app() -> App {
    App {
        source: made_up::source(),
        monitor: MigMon::new(1),
    }
}

fn size() -> egui::Vec2 {
    MIGMON.size.into()
}

fn harness(scale: f32) -> Harness<'static, App> {
    let mut h = Harness::builder()
        .with_size(size())
        .with_pixels_per_point(scale)
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app());
    h.run_steps(3);
    let answers = made_up::answer_procs(&h.state().source, 0);
    assert!(!answers.is_empty(), "the monitor asked for no lists");
    for (ticket, outcome) in answers {
        h.state_mut().monitor.on_outcome(ticket, &outcome);
    }
    // The squares glide to their places.
    h.run_steps(60);
    h
}

#[test]
fn nothing_is_clipped_or_overlaps_at_scale_2_or_1() {
    for scale in [2.0, 1.0] {
        let h = harness(scale);
        // The menu, the node chooser, the penguins and the processes' squares.
        assert_layout_fits(&h, size(), 12);
    }
}

#[test]
fn the_theme_is_a_setting_and_is_remembered() {
    assert_theme_setting(MIGMON, size(), app);
}
