//! The menu bar, the keys, and the small windows the menus open.

use egui::{Key, KeyboardShortcut, Modifiers};

use openmosix_gui::path_dialog::{PathChoice, PathPrompt};

use crate::app::{App, FileKind};
use crate::config_dialog::Target;

const QUIT: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Q);
const OPEN: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
const EXEC: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::E);
const ALL: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::A);

/// Keyboard shortcuts (also listed under Help → keys).
pub fn keys(app: &mut App, ctx: &egui::Context) {
    if ctx.input_mut(|i| i.consume_shortcut(&QUIT)) {
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
    // While a text field has the keyboard, Ctrl+A selects its text, Ctrl+O/E are the
    // field's too: only Ctrl+Q (quit) stays global.
    if ctx.egui_wants_keyboard_input() {
        return;
    }
    if ctx.input_mut(|i| i.consume_shortcut(&OPEN)) {
        open_window(app, FileKind::Cluster);
    }
    if ctx.input_mut(|i| i.consume_shortcut(&EXEC)) {
        app.advanced.open();
    }
    if ctx.input_mut(|i| i.consume_shortcut(&ALL)) {
        app.open_dialog(Target::All);
    }
    if ctx.input(|i| i.key_pressed(Key::F1)) {
        app.keys_open = true;
    }
}

fn open_window(app: &mut App, kind: FileKind) {
    app.open_cluster_window(kind);
}

/// A menu command: what it does to the application.
type Command = fn(&mut App);

const VIEW_MENU: &[(&str, Command)] = &[
    ("process box (openmosixprocs)", App::open_procs),
    ("migration monitor (openmosixmigmon)", App::open_migmon),
];
const CONFIG_MENU: &[(&str, Command)] = &[
    ("advanced execution", |app| app.advanced.open()),
    ("configure all nodes", |app| app.open_dialog(Target::All)),
];
const ANALYZER_MENU: &[(&str, Command)] = &[
    ("open analyzer", App::open_analyzer),
    ("open history", App::open_history),
];
const HELP_MENU: &[(&str, Command)] = &[
    ("about", |app| app.about_open = true),
    ("keys", |app| app.keys_open = true),
];

/// File, View, Config, Collector, Analyzer, Help.
pub fn menu_bar(app: &mut App, ui: &mut egui::Ui) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| file_menu(app, ui));
        ui.menu_button("View", |ui| {
            items(app, ui, VIEW_MENU);
            ui.separator();
            let theme = openmosix_gui::theme::choice(ui);
            openmosix_gui::theme::apply(ui.ctx(), theme);
        });
        menu(app, ui, "Config", CONFIG_MENU);
        ui.menu_button("Collector", |ui| collector_menu(app, ui));
        menu(app, ui, "Analyzer", ANALYZER_MENU);
        menu(app, ui, "Help", HELP_MENU);
    });
}

/// A menu of buttons, each running its command when clicked.
fn menu(app: &mut App, ui: &mut egui::Ui, title: &str, list: &[(&str, Command)]) {
    ui.menu_button(title, |ui| items(app, ui, list));
}

/// Buttons, each running its command when clicked.
fn items(app: &mut App, ui: &mut egui::Ui, list: &[(&str, Command)]) {
    for (text, command) in list {
        if ui.button(*text).clicked() {
            command(app);
        }
    }
}

fn file_menu(app: &mut App, ui: &mut egui::Ui) {
    if ui.button("open cluster file…").clicked() {
        open_window(app, FileKind::Cluster);
    }
    if ui.button("open openmosix.map…").clicked() {
        open_window(app, FileKind::Map);
    }
    if ui.button("add node…").clicked() {
        app.open_add_node();
    }
    ui.separator();
    if ui.button("quit").clicked() {
        ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
    }
}

fn collector_menu(app: &mut App, ui: &mut egui::Ui) {
    use crate::collector_control::CollectorCommand as C;
    for (what, command) in [
        ("start collector", C::Start),
        ("stop collector", C::Stop),
        ("write checkpoint", C::Checkpoint),
        ("save history, start a new one", C::Rotate),
    ] {
        if ui.button(what).clicked() {
            app.collector.run(command, &app.cluster_args, ui.ctx());
            app.say(format!("{what}…"));
        }
    }
}

/// About, keys and the open-file window.
pub fn windows(app: &mut App, ctx: &egui::Context) {
    egui::Window::new("about openMosixview")
        .open(&mut app.about_open)
        .resizable(false)
        .show(ctx, |ui| {
            ui.heading("openMosixview");
            ui.label(format!("version {}", env!("CARGO_PKG_VERSION")));
            ui.label("A cluster administration suite in the spirit of openMosixview by Matthias Rechenburg,");
            ui.label("rewritten in Rust: agents over SSH, migration with CRIU.");
            ui.label(format!("cluster: {}", app.cluster_name));
        });
    egui::Window::new("keys")
        .open(&mut app.keys_open)
        .resizable(false)
        .show(ctx, |ui| {
            egui::Grid::new("keys-grid").show(ui, |ui| {
                for (k, what) in [
                    (ctx.format_shortcut(&OPEN), "open a cluster file"),
                    (ctx.format_shortcut(&EXEC), "advanced execution"),
                    (ctx.format_shortcut(&ALL), "configure all nodes"),
                    (ctx.format_shortcut(&QUIT), "quit"),
                    ("F1".to_owned(), "this list"),
                ] {
                    ui.monospace(k);
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
    open_file_window(app, ctx);
}

/// The open-file window, if open; opens the chosen file, or says why it cannot.
fn open_file_window(app: &mut App, ctx: &egui::Context) {
    let Some(of) = &mut app.open_file else {
        return;
    };
    let kind = of.kind;
    let prompt = PathPrompt {
        title: match kind {
            FileKind::Cluster => "open cluster file",
            FileKind::Map => "open openmosix.map",
        },
        note: None,
        field: "path",
        cancel: true,
    };
    match of.dialog.show(ctx, &prompt) {
        PathChoice::Waiting => {}
        PathChoice::Closed => app.open_file = None,
        PathChoice::Open(path) => match app.open_cluster(kind, std::path::Path::new(&path)) {
            Ok(()) => app.open_file = None,
            Err(e) => {
                if let Some(of) = &mut app.open_file {
                    of.dialog.error = Some(e);
                }
            }
        },
    }
}
