//! What the main window remembers between runs, its first run and its theme (the real
//! window, egui_kittest; fixed snapshots, or this machine's agent; no testbed). Every test
//! keeps its state in a folder of its own, never in the user's.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_client::{LinkState, NodeView};
use openmosix_gui::StaticSource;
use openmosix_gui::desktop::VIEW;
use openmosix_gui::remember::{self, Remembering};
use openmosix_gui::state::{StateFile, Theme};
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::{NodeInfo, NodeStatus};
use openmosix_testbed::gui::{menu_item, text_containing, type_into};
use openmosixprocs::Column;
use openmosixview::first_run::HINT;
use openmosixview::{App, ViewState};

fn node(id: u32, address: &str) -> NodeView {
    NodeView {
        id,
        address: address.to_owned(),
        state: LinkState::Up,
        reason: None,
        hello: None,
        info: Some(NodeInfo {
            id,
            cpus: 2,
            speed: 1000,
            load: 10.0,
            util: 5.0,
            mem: 1 << 30,
            rmem: 1 << 30,
            tmem: 4 << 30,
            status: NodeStatus::Up,
        }),
        updated: None,
    }
}

fn fixed(nodes: Vec<NodeView>) -> App {
    let source = StaticSource {
        nodes,
        ..StaticSource::default()
    };
    App::new(Box::new(source), "fixed")
}

type Window = Remembering<App>;

/// The main window of three fixed nodes as a program starts it: its state read from
/// `dir`, put back, and saved there.
fn start(dir: &std::path::Path) -> (Harness<'static, Window>, Option<String>) {
    let opened = remember::open_in::<ViewState>(Some(dir), VIEW);
    let (state, rest) = opened.saved.split();
    let mut app = fixed(vec![
        node(1, "10.9.0.1"),
        node(2, "10.9.0.2"),
        node(3, "10.9.0.3"),
    ]);
    app.restore(state);
    if let Some(p) = &opened.problem {
        app.say(p.clone());
    }
    let window = Remembering::new(app, opened.file, rest);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 760.0))
        .build_ui_state(|ui, w: &mut Window| w.ui(ui), window);
    let ctx = h.ctx.clone();
    let problem = h.state_mut().restore(&ctx);
    h.run_steps(3);
    (h, opened.problem.or(problem))
}

/// Saves as the window does when it closes.
fn close(mut h: Harness<'static, Window>) {
    let ctx = h.ctx.clone();
    h.state_mut().save(&ctx).expect("saved");
}

fn window_pos(h: &Harness<'static, Window>, title: &str) -> egui::Pos2 {
    h.get_by_label(title).rect().min
}

#[test]
fn windows_their_places_and_settings_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, problem) = start(dir.path());
    assert_eq!(problem, None);
    menu_item(&mut h, "View", "process box (openmosixprocs)");
    h.run_steps(3);
    type_into(&mut h, "filter", "sshd");
    h.get_by_label("command line").click();
    h.run_steps(2);
    h.get_by_label("command line").click();
    h.run_steps(2);
    // Move the process box by its title bar.
    let at_first = window_pos(&h, "openMosixprocs");
    let from = at_first + egui::vec2(40.0, 4.0);
    openmosix_testbed::gui::drag(&mut h, from, from + egui::vec2(210.0, 130.0), 6);
    h.run_steps(3);
    let moved = window_pos(&h, "openMosixprocs");
    assert!(
        (moved - at_first).length() > 100.0,
        "{at_first:?} → {moved:?}"
    );
    menu_item(&mut h, "View", "migration monitor (openmosixmigmon)");
    h.run_steps(3);
    let watch_3 = ViewState {
        migmon_watch: Some(3),
        ..h.state().app.remembered()
    };
    h.state_mut().app.restore(watch_3);
    h.run_steps(2);
    let before = h.state().app.remembered();
    assert!(before.open.procs && before.open.migmon, "{before:?}");
    assert_eq!(before.procs.filter, "sshd");
    assert_eq!(before.procs.sort, Column::Command);
    assert!(before.procs.descending);
    assert_eq!(before.migmon_watch, Some(3));
    close(h);

    let file = StateFile::in_dir(dir.path(), VIEW);
    let text = std::fs::read_to_string(file.path()).unwrap();
    assert!(text.contains("\"filter\": \"sshd\""), "{text}");

    // A new window, as after a restart.
    let (h, problem) = start(dir.path());
    assert_eq!(problem, None);
    assert_eq!(h.state().app.remembered(), before);
    h.get_by_label("openMosixmigmon");
    assert_eq!(h.state().app.remembered().migmon_watch, Some(3));
    let again = window_pos(&h, "openMosixprocs");
    assert!(
        (again - moved).length() < 2.0,
        "the process box was at {moved:?}, now at {again:?}"
    );
    assert_eq!(text_containing(&h, "filter"), "sshd");
}

#[test]
fn a_garbage_state_file_is_one_sentence_and_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = StateFile::in_dir(dir.path(), VIEW);
    std::fs::write(file.path(), "{\"open\": {\"procs\": tru\u{0}").unwrap();
    let (mut h, problem) = start(dir.path());
    let problem = problem.expect("a sentence");
    assert!(!problem.contains('\n'));
    // It is on the status line.
    let line = text_containing(&h, "ignored the remembered state in");
    assert!(
        line.contains("openmosixview.json: it is not a state file"),
        "{line}"
    );
    assert_eq!(h.state().app.remembered(), {
        let mut defaults = fixed(Vec::new()).remembered();
        defaults.migmon_watch = Some(1);
        defaults
    });
    assert!(h.query_by_label("openMosixprocs").is_none());
    // The next save replaces the garbage.
    h.run_steps(2);
    close(h);
    let (_, problem) = start(dir.path());
    assert_eq!(problem, None);
}

#[test]
fn the_theme_is_a_setting_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, _) = start(dir.path());
    // egui follows the system until a theme is chosen (kittest's harness starts dark).
    assert_eq!(
        egui::Options::default().theme_preference,
        egui::ThemePreference::System
    );
    menu_item(&mut h, "View", "theme: light");
    h.run_steps(3);
    assert_eq!(h.ctx.theme(), egui::Theme::Light);
    assert!(!h.ctx.global_style().visuals.dark_mode);
    close(h);
    let (saved, _) = StateFile::in_dir(dir.path(), VIEW).load::<ViewState>();
    assert_eq!(saved.theme, Some(Theme::Light));

    let (mut h, _) = start(dir.path());
    assert_eq!(h.ctx.theme(), egui::Theme::Light);
    // The menu shows the choice.
    menu_item(&mut h, "View", "theme: dark");
    h.run_steps(3);
    assert!(h.ctx.global_style().visuals.dark_mode);
    menu_item(&mut h, "View", "theme: as the system");
    h.run_steps(3);
    close(h);
    let (saved, _) = StateFile::in_dir(dir.path(), VIEW).load::<ViewState>();
    assert_eq!(saved.theme, Some(Theme::System));
}

#[test]
fn the_first_run_shows_this_machine_and_how_to_add_nodes() {
    // What openmosixview shows with no cluster file: this machine, through its agent.
    let app = App::live(Cluster::local(), "this machine").expect("app");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 520.0))
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    h.run_steps(3);
    h.get_by_label("localhost");
    h.get_by_label(HINT);
    h.get_by_label_contains("to show the nodes that announce themselves");
    // Its link opens File → add node….
    h.get_by_label("add node…").click();
    h.run_steps(3);
    assert!(h.query_all_by_label("ssh destination").next().is_some());
}

#[test]
fn no_hint_once_the_cluster_has_other_nodes() {
    let app = fixed(vec![node(1, "localhost"), node(2, "10.9.0.2")]);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1000.0, 520.0))
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    h.run_steps(3);
    h.get_by_label("localhost");
    assert!(h.query_by_label(HINT).is_none());
}
