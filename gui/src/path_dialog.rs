//! The small window every program uses to ask for a file by its path (a history, a
//! cluster file, an openmosix.map): a field, "open", and the reason the last try failed.

use egui::Key;

/// What the window says; each program names its own field so tests and screen readers
/// find it by that name.
#[derive(Debug, Clone, Copy)]
pub struct PathPrompt<'a> {
    /// The window's title.
    pub title: &'a str,
    /// A line above the field, if any.
    pub note: Option<&'a str>,
    /// The field's label (its accessible name).
    pub field: &'a str,
    /// Whether the window has a "cancel" button beside "open".
    pub cancel: bool,
}

/// What the user did this frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathChoice {
    /// Nothing yet.
    Waiting,
    /// "open" or Enter in the field: the path, trimmed.
    Open(String),
    /// The window was closed or cancelled.
    Closed,
}

/// The path typed so far and why the last one did not open.
#[derive(Debug, Default, Clone)]
pub struct PathDialog {
    /// The path in the field.
    pub path: String,
    /// Why the last path chosen could not be opened.
    pub error: Option<String>,
}

impl PathDialog {
    /// A dialog with `path` in its field.
    pub fn new(path: impl Into<String>) -> PathDialog {
        PathDialog {
            path: path.into(),
            error: None,
        }
    }

    /// Draws the window. An empty path is never chosen.
    pub fn show(&mut self, ctx: &egui::Context, prompt: &PathPrompt<'_>) -> PathChoice {
        let mut open = true;
        let mut choice = PathChoice::Waiting;
        egui::Window::new(prompt.title)
            .id(egui::Id::unique(("path dialog", prompt.title)))
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| choice = self.ui(ui, prompt));
        if open { choice } else { PathChoice::Closed }
    }

    fn ui(&mut self, ui: &mut egui::Ui, prompt: &PathPrompt<'_>) -> PathChoice {
        ui.set_min_width(440.0);
        if let Some(note) = prompt.note {
            ui.label(note);
        }
        let entered = ui
            .horizontal(|ui| {
                let label = ui.label(prompt.field);
                let r = ui
                    .add(
                        egui::TextEdit::singleline(&mut self.path)
                            .desired_width(ui.available_width()),
                    )
                    .labelled_by(label.id);
                r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter))
            })
            .inner;
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        let mut choice = PathChoice::Waiting;
        ui.horizontal(|ui| {
            if ui.button("open").clicked() || entered {
                let path = self.path.trim();
                if !path.is_empty() {
                    choice = PathChoice::Open(path.to_owned());
                }
            }
            if prompt.cancel && ui.button("cancel").clicked() {
                choice = PathChoice::Closed;
            }
        });
        choice
    }
}
