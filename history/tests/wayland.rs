//! The real `openmosixhistory` under a real Wayland compositor (weston, headless): with
//! no X display it opens its window as a Wayland client, and draws it over a history.

use openmosix_store::Store;
use openmosix_testbed::gui::wayland::assert_draws;

#[test]
fn openmosixhistory_draws_under_weston() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.db");
    drop(Store::open_file(&path).expect("a new history"));
    assert_draws(env!("CARGO_BIN_EXE_openmosixhistory"), &[&path]);
}
