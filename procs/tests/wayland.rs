//! The real `openmosixprocs` under a real Wayland compositor (weston, headless): with no X
//! display it opens its window as a Wayland client, and draws it (this machine, served
//! by a locally started agent).

use openmosix_testbed::gui::wayland::assert_draws;

#[test]
fn openmosixprocs_draws_under_weston() {
    let none: [&str; 0] = [];
    assert_draws(env!("CARGO_BIN_EXE_openmosixprocs"), &none);
}
