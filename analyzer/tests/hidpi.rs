//! openmosixanalyzer at a scale factor of 2 (and 1), at its first-start size, over two
//! hours of a made-up four-node history: nothing named is clipped or covers something
//! else; and its theme setting.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use egui_kittest::Harness;
use openmosix_gui::desktop::ANALYZER;
use openmosix_gui::remember::Remember;
use openmosix_testbed::gui::bounds::assert_layout_fits;
use openmosix_testbed::gui::theme::assert_theme_setting;
use openmosixanalyzer::synth::{self, Synth};
use openmosixanalyzer::{Analyzer, AnalyzerState};

const T0: i64 = 1_700_000_000;

/// The program's app, as its main.rs has it.
struct App(Analyzer);

impl Remember for App {
    type State = AnalyzerState;

    fn remembered(&self) -> AnalyzerState {
        self.0.remembered()
    }

    fn ui(&mut self, ui: &mut egui::Ui) {
        self.0.ui(ui);
    }
}

/// Two hours of four nodes, node 3 down for ten minutes, a checkpoint and an event.
fn history(path: &Path) {
    let synth = Synth {
        nodes: 4,
        t0: T0,
        seconds: 2 * 3600,
        down: Some((3, 1800, 2400)),
        checkpoints: vec![(3000, "before the render".into())],
        events: vec![(3600, 2, "migrated".into(), "pid 50 from node 1".into())],
    };
    synth::write(path, &synth).unwrap();
}

fn size() -> egui::Vec2 {
    ANALYZER.size.into()
}

fn harness(path: &Path, scale: f32) -> Harness<'static, App> {
    let app = App(Analyzer::open(path).unwrap());
    let mut h = Harness::builder()
        .with_size(size())
        .with_pixels_per_point(scale)
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    h.run_steps(4);
    for _ in 0..5 {
        assert!(h.state_mut().0.wait_idle(Duration::from_secs(20)));
        h.run_steps(2);
        if !h.state().0.loading() {
            return h;
        }
    }
    panic!("the analyzer keeps asking the history");
}

#[test]
fn nothing_is_clipped_or_overlaps_at_scale_2_or_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    history(&path);
    for scale in [2.0, 1.0] {
        let h = harness(&path, scale);
        // The menus, the header's switches and range, a line per node.
        assert_layout_fits(&h, size(), 15);
    }
}

#[test]
fn the_theme_is_a_setting_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    history(&path);
    assert_theme_setting(ANALYZER, size(), || App(Analyzer::open(&path).unwrap()));
}
