//! The real `openmosixanalyzer` under a real Wayland compositor (weston, headless): with
//! no X display it opens its window as a Wayland client, and draws a history's curves.

use openmosix_testbed::gui::wayland::assert_draws;
use openmosixanalyzer::synth::{self, Synth};

#[test]
fn openmosixanalyzer_draws_under_weston() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.db");
    let history = Synth {
        nodes: 3,
        t0: 1_700_000_000,
        seconds: 3600,
        down: None,
        checkpoints: vec![(1800, "a checkpoint".into())],
        events: Vec::new(),
    };
    synth::write(&path, &history).expect("a history");
    assert_draws(env!("CARGO_BIN_EXE_openmosixanalyzer"), &[&path]);
}
