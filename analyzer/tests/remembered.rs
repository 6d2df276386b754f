//! What the analyzer remembers between runs: the overview, "refresh" and the range shown
//! come back in a new analyzer through the state file.

#![allow(clippy::unwrap_used)]

use egui_kittest::Harness;
use openmosix_gui::desktop::ANALYZER;
use openmosix_gui::state::{Saved, StateFile};
use openmosixanalyzer::synth::{self, Synth};
use openmosixanalyzer::{Analyzer, AnalyzerState, Overview};

const T0: i64 = 1_700_000_000;

fn harness(analyzer: Analyzer) -> Harness<'static, Analyzer> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 700.0))
        .build_ui_state(|ui, a: &mut Analyzer| a.ui(ui), analyzer);
    h.run_steps(4);
    for _ in 0..5 {
        assert!(h.state_mut().wait_idle(std::time::Duration::from_secs(20)));
        h.run_steps(2);
        if !h.state().loading() {
            return h;
        }
    }
    panic!("the analyzer keeps asking the history");
}

#[test]
fn the_overview_and_the_range_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let synth = Synth {
        nodes: 2,
        t0: T0,
        seconds: 2 * 3600,
        down: None,
        checkpoints: Vec::new(),
        events: Vec::new(),
    };
    synth::write(&path, &synth).unwrap();

    let mut h = harness(Analyzer::open(&path).unwrap());
    // Untouched, it shows the whole history (and remembers that range).
    assert_eq!(h.state().shown_range(), (T0, T0 + 2 * 3600 - 1));
    h.state_mut().set_overview(Overview::Memory);
    h.state_mut().set_view(T0 + 600, T0 + 1800);
    h.run_steps(3);
    let state = h.state().remembered();
    assert_eq!(
        state,
        AnalyzerState {
            overview: Overview::Memory,
            refresh: false,
            range: Some((T0 + 600, T0 + 1800)),
        }
    );
    let file = StateFile::in_dir(&dir.path().join("state"), ANALYZER);
    file.save(&Saved {
        app: state,
        ..Saved::default()
    })
    .unwrap();

    let (saved, problem) = file.load::<AnalyzerState>();
    assert_eq!(problem, None);
    let mut analyzer = Analyzer::open(&path).unwrap();
    analyzer.restore(saved.app);
    let h = harness(analyzer);
    assert_eq!(h.state().overview(), Overview::Memory);
    assert_eq!(h.state().shown_range(), (T0 + 600, T0 + 1800));
}
