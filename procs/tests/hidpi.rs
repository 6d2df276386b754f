//! openmosixprocs at a scale factor of 2 (and 1), at its first-start size, over a made-up
//! cluster: nothing named is clipped or covers something else; and its theme setting.

use std::time::Instant;

use egui_kittest::Harness;
use openmosix_gui::StaticSource;
use openmosix_gui::desktop::PROCS;
use openmosix_gui::remember::Remember;
use openmosix_testbed::gui::bounds::assert_layout_fits;
use openmosix_testbed::gui::made_up;
use openmosix_testbed::gui::theme::assert_theme_setting;
use openmosixprocs::{ProcsState, ProcsWindow};

/// The program's app, as its main.rs has it.
struct App {
    source: StaticSource,
    window: ProcsWindow,
}

impl Remember for App {
    type State = ProcsState;

    fn remembered(&self) -> ProcsState {
        self.window.remembered()
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        self.window.root_ui(ui, &self.source, Instant::now());
    }
}

fn app() -> App {
    App {
        source: made_up::source(),
        window: ProcsWindow::new(),
    }
}

fn size() -> egui::Vec2 {
    PROCS.size.into()
}

fn harness(scale: f32) -> Harness<'static, App> {
    let mut h = Harness::builder()
        .with_size(size())
        .with_pixels_per_point(scale)
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app());
    h.run_steps(3);
    for (ticket, outcome) in made_up::answer_procs(&h.state().source, 0) {
        assert!(h.state_mut().window.on_outcome(ticket, &outcome));
    }
    h.run_steps(3);
    assert!(
        h.state().window.rows().len() >= 8,
        "the lists were not taken"
    );
    h
}

#[test]
fn nothing_is_clipped_or_overlaps_at_scale_2_or_1() {
    for scale in [2.0, 1.0] {
        let h = harness(scale);
        assert_layout_fits(&h, size(), 30);
    }
}

#[test]
fn the_theme_is_a_setting_and_is_remembered() {
    assert_theme_setting(PROCS, size(), app);
}
