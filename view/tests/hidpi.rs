//! The main window at a scale factor of 2 (and 1), at its first-start size, over a
//! made-up cluster: nothing named is clipped or covers something else.

use egui_kittest::Harness;
use openmosix_gui::desktop::VIEW;
use openmosix_testbed::gui::bounds::assert_layout_fits;
use openmosix_testbed::gui::made_up;
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
