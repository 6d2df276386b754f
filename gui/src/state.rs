//! What the window programs remember between runs: one small JSON file per program in the
//! state folder, `$XDG_STATE_HOME/openmosixview/PROGRAM.json`
//! (`~/.local/state/openmosixview/` when `XDG_STATE_HOME` is unset): where the window was
//! and how large, the theme, where the windows inside it were (egui's memory, in RON), and
//! what the program itself keeps ([`Saved::app`]: the main window's cluster and open
//! windows, the process box's sort and filter, …).
//!
//! The folder is 0700 and the file 0600, replaced atomically (a temporary file beside it,
//! then a rename), so a crash mid-write leaves the old file. A file that cannot be read is
//! never an error: the program starts with its defaults and says why in one sentence, and
//! its next save replaces the file. Deleting the folder forgets everything.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use openmosix_hpc::files;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::desktop::Program;

/// The state folder's name, under `$XDG_STATE_HOME` (or `~/.local/state`).
pub const FOLDER: &str = "openmosixview";

/// A state file larger than this is not read (it is not one this suite wrote).
const MAX_LEN: u64 = 16 << 20;

/// The state folder: `$XDG_STATE_HOME/openmosixview`, else
/// `$HOME/.local/state/openmosixview`; `None` when neither names an absolute folder (then
/// nothing is remembered).
pub fn default_dir() -> Option<PathBuf> {
    dir_from(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"))
}

/// The state folder for these values of `XDG_STATE_HOME` and `HOME`. A relative
/// `XDG_STATE_HOME` is ignored, as the XDG base directory specification says.
fn dir_from(xdg_state_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    if let Some(dir) = xdg_state_home.and_then(absolute) {
        return Some(dir.join(FOLDER));
    }
    home.and_then(absolute)
        .map(|h| h.join(".local").join("state").join(FOLDER))
}

/// Where a native window was and how large it was.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// The left edge of the window's frame on the screen (points), when the desktop told
    /// it (X11 does; Wayland never says where a window is).
    pub x: Option<f32>,
    /// The top edge of the window's frame on the screen (points), as `x`.
    pub y: Option<f32>,
    /// The width of the window's inside (points).
    pub width: f32,
    /// The height of the window's inside (points).
    pub height: f32,
    /// Whether it was maximized.
    #[serde(default)]
    pub maximized: bool,
}

impl Geometry {
    /// Whether it can be a window's: finite, at least a little inside, at most huge.
    pub fn is_sane(&self) -> bool {
        let size_ok = |v: f32| v.is_finite() && (40.0..=100_000.0).contains(&v);
        let pos_ok = |v: Option<f32>| v.is_none_or(|v| v.is_finite() && v.abs() <= 100_000.0);
        size_ok(self.width) && size_ok(self.height) && pos_ok(self.x) && pos_ok(self.y)
    }
}

/// The light or dark look: following the desktop's setting, or chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Whatever the desktop says (dark when it says nothing).
    #[default]
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

impl From<Theme> for egui::ThemePreference {
    fn from(theme: Theme) -> Self {
        match theme {
            Theme::System => egui::ThemePreference::System,
            Theme::Light => egui::ThemePreference::Light,
            Theme::Dark => egui::ThemePreference::Dark,
        }
    }
}

impl From<egui::ThemePreference> for Theme {
    fn from(preference: egui::ThemePreference) -> Self {
        match preference {
            egui::ThemePreference::System => Theme::System,
            egui::ThemePreference::Light => Theme::Light,
            egui::ThemePreference::Dark => Theme::Dark,
        }
    }
}

/// What a program's state file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, bound(deserialize = "T: DeserializeOwned + Default"))]
pub struct Saved<T> {
    /// The native window.
    pub window: Option<Geometry>,
    /// The theme chosen (none: the main window's, else the desktop's).
    pub theme: Option<Theme>,
    /// egui's memory in RON: where the windows inside the window were, their sizes,
    /// which sections were open.
    pub egui: Option<String>,
    /// What the program itself keeps.
    pub app: T,
}

impl<T> Saved<T> {
    /// The program's part and the rest.
    pub fn split(self) -> (T, Saved<()>) {
        let rest = Saved {
            window: self.window,
            theme: self.theme,
            egui: self.egui,
            app: (),
        };
        (self.app, rest)
    }
}

/// egui's memory as the state file keeps it (RON, as egui writes its own parts).
pub fn memory_text(memory: &egui::Memory) -> Option<String> {
    ron::to_string(memory).ok()
}

/// egui's memory from the state file's text.
pub fn memory_from_text(text: &str) -> Result<egui::Memory, String> {
    ron::from_str(text).map_err(|e| e.to_string())
}

/// One program's state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file of `program` in the state folder `dir`: `DIR/PROGRAM.json`.
    pub fn in_dir(dir: &Path, program: Program) -> StateFile {
        StateFile {
            path: dir.join(format!("{}.json", program.id)),
        }
    }

    /// The file of `program` in the [`default_dir`], if there is one.
    pub fn for_program(program: Program) -> Option<StateFile> {
        default_dir().map(|dir| StateFile::in_dir(&dir, program))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file holds: the defaults when there is no file; the defaults and a
    /// sentence saying why when it cannot be read.
    pub fn load<T: DeserializeOwned + Default>(&self) -> (Saved<T>, Option<String>) {
        match self.read() {
            Ok(Some(saved)) => (saved, None),
            Ok(None) => (Saved::default(), None),
            Err(why) => (
                Saved::default(),
                Some(format!(
                    "ignored the remembered state in {}: {why}; starting with the defaults",
                    self.path.display()
                )),
            ),
        }
    }

    fn read<T: DeserializeOwned + Default>(&self) -> Result<Option<Saved<T>>, String> {
        let text = match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
            Ok(meta) if !meta.is_file() => return Err("it is not a regular file".into()),
            Ok(meta) if meta.len() > MAX_LEN => {
                return Err(format!("it is too large ({} bytes)", meta.len()));
            }
            Ok(_) => std::fs::read(&self.path).map_err(|e| e.to_string())?,
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| format!("it is not a state file ({e})"))
    }

    /// The file's text for `saved`.
    pub fn text<T: Serialize>(saved: &Saved<T>) -> Result<String, String> {
        let mut text = serde_json::to_string_pretty(saved).map_err(|e| e.to_string())?;
        text.push('\n');
        Ok(text)
    }

    /// Replaces the file with `text` (atomically, mode 0600; the folder is made and kept
    /// 0700); why not, as a sentence.
    pub fn write(&self, text: &str) -> Result<(), String> {
        let why = |e: std::io::Error| {
            format!(
                "cannot remember the window's state in {}: {e}",
                self.path.display()
            )
        };
        files::private_dir(files::parent_of(&self.path)).map_err(why)?;
        files::replace(&self.path, text.as_bytes(), files::FILE_MODE).map_err(why)
    }

    /// Writes `saved`.
    pub fn save<T: Serialize>(&self, saved: &Saved<T>) -> Result<(), String> {
        self.write(&StateFile::text(saved)?)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::desktop::{PROCS, VIEW};

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Mine {
        words: Vec<String>,
        on: bool,
    }

    fn dir_of(xdg: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
        dir_from(xdg.map(OsString::from), home.map(OsString::from))
    }

    #[test]
    fn the_folder_follows_xdg_state_home_else_home() {
        assert_eq!(
            dir_of(Some("/x/state"), Some("/home/u")),
            Some(PathBuf::from("/x/state/openmosixview"))
        );
        assert_eq!(
            dir_of(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/openmosixview"))
        );
        // A relative XDG_STATE_HOME is not one.
        assert_eq!(
            dir_of(Some("rel"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/openmosixview"))
        );
        assert_eq!(dir_of(Some(""), None), None);
    }

    #[test]
    fn what_is_saved_comes_back_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s");
        let file = StateFile::in_dir(&state, PROCS);
        assert_eq!(file.path(), state.join("openmosixprocs.json"));
        let saved = Saved {
            window: Some(Geometry {
                x: Some(10.0),
                y: None,
                width: 800.0,
                height: 600.0,
                maximized: false,
            }),
            theme: Some(Theme::Light),
            egui: Some("(x: 1)".into()),
            app: Mine {
                words: vec!["a".into()],
                on: true,
            },
        };
        file.save(&saved).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(file.path()), 0o600);
        assert_eq!(mode(&state), 0o700);
        assert_eq!(file.load::<Mine>(), (saved, None));
        // Nothing beside it (the temporary file was renamed).
        assert_eq!(std::fs::read_dir(&state).unwrap().count(), 1);
    }

    #[test]
    fn no_file_is_the_defaults_without_a_word() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path(), VIEW);
        assert_eq!(file.load::<Mine>(), (Saved::default(), None));
    }

    #[test]
    fn a_broken_file_is_the_defaults_and_one_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path(), VIEW);
        for garbage in [
            &b"\x00\xffnot json"[..],
            b"{\"app\": {\"on\": \"yes\"}}",
            b"[1, 2",
        ] {
            std::fs::write(file.path(), garbage).unwrap();
            let (saved, why) = file.load::<Mine>();
            assert_eq!(saved, Saved::default());
            let why = why.expect("a sentence");
            assert!(
                why.starts_with("ignored the remembered state in ")
                    && why.contains("openmosixview.json: it is not a state file (")
                    && !why.contains('\n'),
                "{why}"
            );
        }
        // A folder where the file should be.
        std::fs::remove_file(file.path()).unwrap();
        std::fs::create_dir(file.path()).unwrap();
        let (_, why) = file.load::<Mine>();
        assert!(why.unwrap().contains("it is not a regular file"));
        // Writing there says why.
        let e = file.save(&Saved::<Mine>::default()).unwrap_err();
        assert!(
            e.starts_with("cannot remember the window's state in "),
            "{e}"
        );
    }

    #[test]
    fn unknown_and_missing_fields_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path(), VIEW);
        std::fs::write(file.path(), r#"{"theme": "dark", "later": 1, "app": {}}"#).unwrap();
        let (saved, why) = file.load::<Mine>();
        assert_eq!(why, None);
        assert_eq!(saved.theme, Some(Theme::Dark));
        assert_eq!(saved.app, Mine::default());
    }

    #[test]
    fn geometry_out_of_reason_is_not_sane() {
        let g = Geometry {
            x: Some(0.0),
            y: Some(0.0),
            width: 800.0,
            height: 600.0,
            maximized: false,
        };
        assert!(g.is_sane());
        assert!(!Geometry { width: 0.0, ..g }.is_sane());
        assert!(
            !Geometry {
                x: Some(f32::NAN),
                ..g
            }
            .is_sane()
        );
        assert!(!Geometry { height: 1e9, ..g }.is_sane());
    }

    #[test]
    fn egui_memory_goes_through_text() {
        let ctx = egui::Context::default();
        let mut memory = ctx.memory(Clone::clone);
        memory.options.theme_preference = egui::ThemePreference::Light;
        let text = memory_text(&memory).unwrap();
        let back = memory_from_text(&text).unwrap();
        assert_eq!(back.options.theme_preference, egui::ThemePreference::Light);
        assert!(memory_from_text("(garbage").is_err());
    }
}
