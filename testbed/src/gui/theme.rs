//! The theme setting of a window program, checked the same way for every one: choosing
//! light or dark in its View menu changes the context's visuals, and the choice is in
//! the program's state file and comes back in a new window.

use egui_kittest::Harness;
use openmosix_gui::desktop::Program;
use openmosix_gui::remember::{self, Remember, Remembering};
use openmosix_gui::state::{StateFile, Theme};

use egui_kittest::kittest::Queryable as _;

use crate::gui::bounds::assert_layout_fits;
use crate::gui::menu_item;

/// A window of `program` (the app `make` builds) wrapped as the program wraps it, with
/// its state file in `dir`, restored before the first frame.
fn start<A: Remember + 'static>(
    dir: &std::path::Path,
    program: Program,
    size: egui::Vec2,
    make: &impl Fn() -> A,
) -> Harness<'static, Remembering<A>> {
    let opened = remember::open_in::<A::State>(Some(dir), program);
    assert_eq!(opened.problem, None);
    let (_, rest) = opened.saved.split();
    let app = Remembering::new(make(), opened.file, rest);
    let mut h = Harness::builder()
        .with_size(size)
        .with_pixels_per_point(2.0)
        .build_ui_state(|ui, r: &mut Remembering<A>| r.ui(ui), app);
    let ctx = h.ctx.clone();
    let problem = h.state_mut().restore(&ctx);
    assert_eq!(problem, None);
    h.run_steps(3);
    h
}

/// Saves and says which theme the state file holds.
fn saved_theme<A: Remember>(
    h: &mut Harness<'static, Remembering<A>>,
    dir: &std::path::Path,
    program: Program,
) -> Option<Theme> {
    let ctx = h.ctx.clone();
    h.state_mut().save(&ctx).expect("save the state file");
    let (saved, problem) = StateFile::in_dir(dir, program).load::<serde_json::Value>();
    assert_eq!(problem, None);
    saved.theme
}

/// Fails unless the View menu of `program`'s window (built by `make`, `size` points, at
/// 2 pixels a point) opens inside the window, switches the theme, the visuals follow,
/// and the choice is remembered.
pub fn assert_theme_setting<A: Remember + 'static>(
    program: Program,
    size: egui::Vec2,
    make: impl Fn() -> A,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = start(dir.path(), program, size, &make);
    // The open menu fits the window at scale 2, its three choices apart.
    h.get_by_label("View").click();
    h.run_steps(3);
    for (_, text) in openmosix_gui::theme::THEMES {
        h.get_by_label(text);
    }
    assert_layout_fits(&h, size, 4);
    menu_item(&mut h, "View", "theme: light");
    h.run_steps(3);
    assert_eq!(h.ctx.theme(), egui::Theme::Light);
    assert!(!h.ctx.global_style().visuals.dark_mode, "still dark");
    assert_eq!(saved_theme(&mut h, dir.path(), program), Some(Theme::Light));
    drop(h);

    let mut h = start(dir.path(), program, size, &make);
    assert_eq!(
        h.ctx.theme(),
        egui::Theme::Light,
        "the theme was not remembered"
    );
    assert!(!h.ctx.global_style().visuals.dark_mode);
    menu_item(&mut h, "View", "theme: dark");
    h.run_steps(3);
    assert_eq!(h.ctx.theme(), egui::Theme::Dark);
    assert!(h.ctx.global_style().visuals.dark_mode, "still light");
    assert_eq!(saved_theme(&mut h, dir.path(), program), Some(Theme::Dark));
    menu_item(&mut h, "View", "theme: as the system");
    h.run_steps(3);
    assert_eq!(
        h.ctx.options(|o| o.theme_preference),
        egui::ThemePreference::System
    );
    assert_eq!(
        saved_theme(&mut h, dir.path(), program),
        Some(Theme::System)
    );
}
