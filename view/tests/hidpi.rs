//! The main window at a scale factor of 2 (and 1), at its first-start size, over a
//! made-up cluster: nothing named is clipped or covers something else.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_gui::desktop::VIEW;
use openmosix_testbed::gui::bounds::{assert_layout_fits, placed};
use openmosix_testbed::gui::made_up;
use openmosix_testbed::gui::menu_item;
use openmosixview::App;

fn size() -> egui::Vec2 {
    VIEW.size.into()
}

fn harness(scale: f32) -> Harness<'static, App> {
    let app = App::new(Box::new(made_up::source()), "made up");
    let mut h = Harness::builder()
        .with_size(size())
        .with_pixels_per_point(scale)
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    h.run_steps(3);
    h
}

#[test]
fn nothing_is_clipped_or_overlaps_at_scale_2_or_1() {
    for scale in [2.0, 1.0] {
        let h = harness(scale);
        // Four rows of a dozen widgets, the menus, the status line.
        assert_layout_fits(&h, size(), 40);
    }
}

/// Every menu of the menu bar, open at scale 2, lies inside the window, its entries apart.
#[test]
fn every_menu_fits_at_scale_2() {
    let mut h = harness(2.0);
    for menu in ["File", "View", "Config", "Collector", "Analyzer", "Help"] {
        h.get_by_label(menu).click();
        h.run_steps(3);
        let before = placed(&h).len();
        assert_layout_fits(&h, size(), 40);
        h.key_press(egui::Key::Escape);
        h.run_steps(3);
        assert!(placed(&h).len() < before, "the {menu} menu did not close");
    }
}

/// The windows the View and Analyzer menus open inside the main window lie inside it
/// at scale 2, at its first-start size, each one laid out cleanly.
#[test]
fn the_windows_inside_fit_at_scale_2() {
    for (menu, item, title) in [
        ("View", "process box (openmosixprocs)", "openMosixprocs"),
        (
            "View",
            "migration monitor (openmosixmigmon)",
            "openMosixmigmon",
        ),
    ] {
        let mut h = harness(2.0);
        menu_item(&mut h, menu, item);
        h.run_steps(5);
        h.get_by_label(title);
        assert_layout_fits(&h, size(), 40);
    }
}

/// The real program on weston with an output scale of 2: its window takes twice its
/// size in pixels each way (the client-side frame adds a title bar), drawn.
#[test]
fn the_real_window_is_drawn_at_twice_the_pixels_on_a_scale_2_output() {
    let none: [&str; 0] = [];
    let want = size() * 2.0;
    let shot = openmosix_testbed::gui::wayland::draws_at_scale(
        env!("CARGO_BIN_EXE_openmosixview"),
        &none,
        2,
        want,
    );
    let (w, h) = (shot.width as f32, shot.height as f32);
    assert!(
        w < want.x + 40.0 && h < want.y + 120.0,
        "the window is {w}x{h} pixels, not about {want:?}"
    );
}
