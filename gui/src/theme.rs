//! The theme setting every window program has (issue #18): as the desktop says, light or
//! dark. openmosixview has it in its View menu, the standalone windows in a View menu of
//! their own; the choice is kept in the program's state file by
//! [`crate::remember::Remembering`].

use egui::ThemePreference;

/// The choices, as the menus name them.
pub const THEMES: [(ThemePreference, &str); 3] = [
    (ThemePreference::System, "theme: as the system"),
    (ThemePreference::Light, "theme: light"),
    (ThemePreference::Dark, "theme: dark"),
];

/// The three choices as radio buttons, the current one marked; the one clicked, if any
/// (the caller applies it with [`apply`]).
pub fn choice(ui: &mut egui::Ui) -> Option<ThemePreference> {
    let now = ui.ctx().options(|o| o.theme_preference);
    let mut chosen = None;
    for (theme, text) in THEMES {
        if ui.radio(now == theme, text).clicked() {
            chosen = Some(theme);
        }
    }
    chosen
}

/// A "View" menu holding only [`choice`] (for a menu bar); the theme clicked, if any.
pub fn view_menu(ui: &mut egui::Ui) -> Option<ThemePreference> {
    ui.menu_button("View", choice).inner.flatten()
}

/// A menu bar at the top of a window that has none of its own, with [`view_menu`]; the
/// theme clicked, if any.
pub fn menu_bar(ui: &mut egui::Ui, id: &str) -> Option<ThemePreference> {
    egui::Panel::top((id, "theme menu"))
        .show(ui, |ui| egui::MenuBar::new().ui(ui, view_menu).inner)
        .inner
}

/// Makes `theme` the window's (every context the program draws with).
pub fn apply(ctx: &egui::Context, theme: Option<ThemePreference>) {
    if let Some(theme) = theme {
        ctx.set_theme(theme);
    }
}
