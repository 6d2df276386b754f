//! A window program that remembers: [`Remembering`] wraps the program's app, puts what
//! the state file held back into the window before the first frame, and writes the file
//! again every [`SAVE_EVERY`] when something changed, and when the window closes.
//!
//! The program says what it keeps through [`Remember`]; the wrapper adds what every
//! window has: where the native window was and how large, the theme, and egui's memory
//! (where the windows inside were, their sizes). See [`crate::state`] for the file.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::desktop::{self, Program};
use crate::state::{self, Geometry, Saved, StateFile, Theme};

/// How often, at most, the state file is rewritten while the window runs.
pub const SAVE_EVERY: Duration = Duration::from_secs(2);

/// A window program's app, as far as remembering goes.
pub trait Remember {
    /// What the program keeps between runs.
    type State: Serialize + DeserializeOwned + Default;
    /// What to keep, now.
    fn remembered(&self) -> Self::State;
    /// Draws the program's window into `ui` (its root).
    fn ui(&mut self, ui: &mut egui::Ui);
}

/// A program's state file as it was found at start.
#[derive(Debug)]
pub struct Opened<T> {
    /// The file (none when no state folder could be found: nothing is remembered).
    pub file: Option<StateFile>,
    /// What it held (the defaults when nothing or nothing readable).
    pub saved: Saved<T>,
    /// Why it could not be read, as a sentence.
    pub problem: Option<String>,
}

/// Opens `program`'s state file in the default state folder ([`state::default_dir`]).
pub fn open<T: DeserializeOwned + Default>(program: Program) -> Opened<T> {
    open_in(state::default_dir().as_deref(), program)
}

/// Opens `program`'s state file in `dir`. A program without a theme of its own takes the
/// main window's (openmosixview's), so the suite looks alike.
pub fn open_in<T: DeserializeOwned + Default>(
    dir: Option<&std::path::Path>,
    program: Program,
) -> Opened<T> {
    let Some(dir) = dir else {
        return Opened {
            file: None,
            saved: Saved::default(),
            problem: None,
        };
    };
    let file = StateFile::in_dir(dir, program);
    let (mut saved, problem) = file.load::<T>();
    if saved.theme.is_none() && program != desktop::VIEW {
        let (main, _) = StateFile::in_dir(dir, desktop::VIEW).load::<serde_json::Value>();
        saved.theme = main.theme;
    }
    Opened {
        file: Some(file),
        saved,
        problem,
    }
}

/// The app with what every window remembers.
#[derive(Debug)]
pub struct Remembering<A: Remember> {
    /// The program's app.
    pub app: A,
    file: Option<StateFile>,
    /// What goes into the context before the first frame.
    restore: Option<Saved<()>>,
    /// The native window, as last reported (kept from the file until then).
    window: Option<Geometry>,
    /// The text last written (or read): the file is rewritten only when it changes.
    written: Option<String>,
    last_save: Option<Instant>,
    /// The context, for the save on exit.
    ctx: Option<egui::Context>,
    /// Whether a failed save was already reported (once is enough).
    save_failed: bool,
}

impl<A: Remember> Remembering<A> {
    /// Wraps `app` (already given its own part of the file) with the rest of what the
    /// file held; it saves into `file`.
    pub fn new(app: A, file: Option<StateFile>, rest: Saved<()>) -> Remembering<A> {
        Remembering {
            app,
            file,
            window: rest.window.filter(Geometry::is_sane),
            restore: Some(rest),
            written: None,
            last_save: None,
            ctx: None,
            save_failed: false,
        }
    }

    /// Where the native window should open, as remembered.
    pub fn window(&self) -> Option<Geometry> {
        self.window
    }

    /// The state file.
    pub fn file(&self) -> Option<&StateFile> {
        self.file.as_ref()
    }

    /// Puts the remembered window places and theme into `ctx`: call it between frames,
    /// before the first. Says why egui's part could not be read, if it could not.
    pub fn restore(&mut self, ctx: &egui::Context) -> Option<String> {
        let rest = self.restore.take()?;
        let mut problem = None;
        if let Some(text) = &rest.egui {
            match state::memory_from_text(text) {
                Ok(memory) => ctx.memory_mut(|m| *m = memory),
                Err(e) => {
                    problem = Some(format!(
                        "ignored the remembered window places: {e}; they start anew"
                    ));
                }
            }
        }
        if let Some(theme) = rest.theme {
            ctx.set_theme(theme);
        }
        problem
    }

    /// Draws the app, notes where the window is, and saves now and then.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.app.ui(ui);
        let ctx = ui.ctx().clone();
        self.note_window(&ctx);
        let now = Instant::now();
        if self.last_save.is_none_or(|t| now - t >= SAVE_EVERY) {
            self.last_save = Some(now);
            self.save_reporting(&ctx);
        }
        self.ctx = Some(ctx);
    }

    /// Keeps the native window's place and size, when the windowing system reports them.
    fn note_window(&mut self, ctx: &egui::Context) {
        let reported = ctx.input(|i| {
            let v = i.viewport();
            v.inner_rect.map(|inner| Geometry {
                x: v.outer_rect.map(|r| r.min.x),
                y: v.outer_rect.map(|r| r.min.y),
                width: inner.width(),
                height: inner.height(),
                maximized: v.maximized.unwrap_or(false),
            })
        });
        match reported {
            // A maximized window keeps the size it had before, to come back to.
            Some(g) if g.maximized => {
                if let Some(w) = &mut self.window {
                    w.maximized = true;
                } else {
                    self.window = Some(g);
                }
            }
            Some(g) if g.is_sane() => self.window = Some(g),
            _ => {}
        }
    }

    /// Everything to keep, now.
    pub fn saved(&self, ctx: &egui::Context) -> Saved<A::State> {
        Saved {
            window: self.window,
            theme: Some(Theme::from(ctx.options(|o| o.theme_preference))),
            egui: ctx.memory(state::memory_text),
            app: self.app.remembered(),
        }
    }

    /// Writes the state file if what is kept changed since the last write; whether it
    /// wrote.
    pub fn save(&mut self, ctx: &egui::Context) -> Result<bool, String> {
        let Some(file) = &self.file else {
            return Ok(false);
        };
        let text = StateFile::text(&self.saved(ctx))?;
        if self.written.as_ref() == Some(&text) {
            return Ok(false);
        }
        file.write(&text)?;
        self.written = Some(text);
        Ok(true)
    }

    /// [`Self::save`], saying on stderr why it failed (the first time).
    fn save_reporting(&mut self, ctx: &egui::Context) {
        match self.save(ctx) {
            Ok(_) => self.save_failed = false,
            Err(e) if !self.save_failed => {
                self.save_failed = true;
                eprintln!("{e}");
            }
            Err(_) => {}
        }
    }
}

impl<A: Remember> eframe::App for Remembering<A> {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        Remembering::ui(self, ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        if let Some(ctx) = self.ctx.clone() {
            self.save_failed = false;
            self.save_reporting(&ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use egui_kittest::Harness;

    use super::*;
    use crate::desktop::{PROCS, VIEW};

    /// A counter that remembers its count.
    #[derive(Debug, Default)]
    struct Counter(u32);

    impl Remember for Counter {
        type State = u32;
        fn remembered(&self) -> u32 {
            self.0
        }
        fn ui(&mut self, ui: &mut egui::Ui) {
            ui.label(self.0.to_string());
        }
    }

    fn counter(dir: &std::path::Path) -> Harness<'static, Remembering<Counter>> {
        let opened = open_in::<u32>(Some(dir), PROCS);
        let (count, rest) = opened.saved.split();
        let app = Remembering::new(Counter(count), opened.file, rest);
        let mut h = Harness::new_ui_state(|ui, r: &mut Remembering<Counter>| r.ui(ui), app);
        let ctx = h.ctx.clone();
        assert_eq!(h.state_mut().restore(&ctx), None);
        h.run();
        h
    }

    #[test]
    fn the_first_frame_saves_then_only_changes_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = counter(dir.path());
        let file = StateFile::in_dir(dir.path(), PROCS);
        assert_eq!(file.load::<u32>().0.app, 0);
        let ctx = h.ctx.clone();
        // The frames after the first moved things in egui's memory; then it rests.
        h.state_mut().save(&ctx).unwrap();
        assert_eq!(h.state_mut().save(&ctx), Ok(false));
        h.run();
        assert_eq!(h.state_mut().save(&ctx), Ok(false));
        h.state_mut().app.0 = 7;
        assert_eq!(h.state_mut().save(&ctx), Ok(true));
        assert_eq!(file.load::<u32>().0.app, 7);
        drop(h);
        let h = counter(dir.path());
        assert_eq!(h.state().app.0, 7);
    }

    #[test]
    fn a_window_takes_the_main_windows_theme_until_it_has_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let main = Saved::<()> {
            theme: Some(Theme::Light),
            ..Saved::default()
        };
        StateFile::in_dir(dir.path(), VIEW).save(&main).unwrap();
        let h = counter(dir.path());
        assert_eq!(h.ctx.theme(), egui::Theme::Light);
        drop(h);
        StateFile::in_dir(dir.path(), PROCS)
            .save(&Saved {
                theme: Some(Theme::Dark),
                app: 1,
                ..Saved::default()
            })
            .unwrap();
        let h = counter(dir.path());
        assert_eq!(h.ctx.theme(), egui::Theme::Dark);
    }

    #[test]
    fn broken_window_places_are_a_sentence_and_odd_geometry_is_dropped() {
        let rest = Saved {
            window: Some(Geometry {
                x: None,
                y: None,
                width: f32::INFINITY,
                height: 500.0,
                maximized: false,
            }),
            egui: Some("(not ron".into()),
            ..Saved::default()
        };
        let mut r = Remembering::new(Counter(1), None, rest);
        assert_eq!(r.window(), None);
        let ctx = egui::Context::default();
        let problem = r.restore(&ctx).expect("a sentence");
        assert!(problem.starts_with("ignored the remembered window places: "));
        // Nothing to save into: nothing written, no error.
        assert_eq!(r.save(&ctx), Ok(false));
    }
}
