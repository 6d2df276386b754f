//! The history browser with egui_kittest over a database written with the collector's own
//! writer: the slider moved to a time shows exactly the processes recorded then.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_hpc::model::{NodeId, NodeInfo, NodeStatus};
use openmosix_store::store::{ProcIn, Store, Tick};
use openmosix_testbed::fixtures::proc_in;
use openmosix_testbed::gui::assert_frames_do_not_wait;
use openmosix_testbed::history::ExclusiveLock;
use openmosixhistory::{HistoryBrowser, utc_text, where_sentence};

/// 2026-11-18 11:08:20 UTC.
const T0: i64 = 1_795_000_100;

fn info(id: NodeId) -> NodeInfo {
    NodeInfo {
        id,
        cpus: 2,
        speed: 1000,
        load: 50.0,
        util: 25.0,
        mem: 1 << 30,
        rmem: 1 << 29,
        tmem: 2 << 30,
        status: NodeStatus::Up,
    }
}

/// The process lists of nodes 1, 2 and 3 at `t`: pid 100 at home on node 1 until T0+10,
/// then a guest on node 2 (home 1) until T0+20, then gone; pid 200 appears on node 1
/// at T0+10; pid 300 stays on node 3 all along.
fn lists(t: i64) -> Vec<(NodeId, Vec<ProcIn>)> {
    let povray = "/usr/local/povray/bin/x-povray";
    let n3 = vec![proc_in(300, 3, 'S', "sleep 1000")];
    if t < T0 + 10 {
        vec![
            (1, vec![proc_in(100, 1, 'R', povray)]),
            (2, vec![]),
            (3, n3),
        ]
    } else if t < T0 + 20 {
        vec![
            (1, vec![proc_in(200, 1, 'R', "make -j4")]),
            (2, vec![proc_in(100, 1, 'R', povray)]),
            (3, n3),
        ]
    } else {
        vec![
            (1, vec![proc_in(200, 1, 'S', "make -j4")]),
            (2, vec![]),
            (3, n3),
        ]
    }
}

fn tick(t: i64) -> Tick {
    Tick {
        time: t,
        samples: (1..=3).map(|id| (id, info(id))).collect(),
        procs: lists(t),
        ..Tick::default()
    }
}

/// A history with a sample of every node every second from T0 to T0+20.
fn database(path: &Path) -> Store {
    let mut s = Store::open_file(path).expect("create the history");
    s.set_nodes(&[
        (1, "10.0.0.1".into()),
        (2, "10.0.0.2".into()),
        (3, "10.0.0.3".into()),
    ])
    .expect("nodes");
    for t in T0..=T0 + 20 {
        s.write_tick(&tick(t)).expect("tick");
    }
    s
}

/// A saved history of another cluster: node 7 with its job "saved job" (pid 777) at
/// `T0 + 100`.
fn saved_history(path: &Path) {
    let mut s = Store::open_file(path).expect("create");
    s.set_nodes(&[(7, "10.0.0.7".into())]).expect("nodes");
    s.write_tick(&Tick {
        time: T0 + 100,
        samples: vec![(7, info(7))],
        procs: vec![(7, vec![proc_in(777, 7, 'R', "saved job")])],
        ..Tick::default()
    })
    .expect("tick");
}

/// A browser on `path`, once its thread has opened the history.
fn opened(path: &Path) -> HistoryBrowser {
    let mut b = HistoryBrowser::open(path).expect("open");
    assert!(
        b.wait_loaded(std::time::Duration::from_secs(20)),
        "not opened in 20 s"
    );
    b
}

fn harness(browser: HistoryBrowser) -> Harness<'static, HistoryBrowser> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 600.0))
        .build_ui_state(|ui, b: &mut HistoryBrowser| b.ui(ui), browser);
    h.run();
    h
}

/// The (pid, node) of every row the window shows, read from the rows' labels.
fn shown(h: &Harness<'static, HistoryBrowser>) -> BTreeSet<(i32, NodeId)> {
    h.query_all_by_label_contains(" on node ")
        .filter_map(|n| {
            // A label's text is its accessible value.
            let node = n.accesskit_node();
            let label = if node.role() == Role::Label {
                node.value()?
            } else {
                node.label()?
            };
            let rest = label.strip_prefix("pid ")?;
            let (pid, node) = rest.split_once(" on node ")?;
            Some((pid.parse().ok()?, node.parse().ok()?))
        })
        .collect()
}

/// Runs frames until every answer the window asked the history for is in and shown.
fn settle(h: &mut Harness<'static, HistoryBrowser>) {
    // The frame that takes the input asks; an answer can make the next frame ask again
    // (a time chosen while the file was opened, the new file after a rotation).
    h.run_steps(1);
    for _ in 0..5 {
        assert!(
            h.state_mut().wait_loaded(Duration::from_secs(20)),
            "the history thread did not answer in 20 s"
        );
        h.run_steps(1);
        if !h.state().busy() {
            h.run();
            return;
        }
    }
    panic!("the browser keeps asking the history");
}

fn set_slider(h: &mut Harness<'static, HistoryBrowser>, t: i64) {
    h.get_by_role_and_label(Role::Slider, "time")
        .set_value_accesskit(t as f64);
    settle(h);
}

fn type_into(h: &mut Harness<'static, HistoryBrowser>, field: &str, text: &str) {
    h.get_by_role_and_label(Role::TextInput, field).click();
    h.run();
    h.get_by_role_and_label(Role::TextInput, field)
        .type_text(text);
    settle(h);
}

fn expected(t: i64) -> BTreeSet<(i32, NodeId)> {
    match (t - T0) / 10 {
        0 => [(100, 1), (300, 3)].into(),
        1 => [(200, 1), (100, 2), (300, 3)].into(),
        _ => [(200, 1), (300, 3)].into(),
    }
}

fn as_of(t: i64) -> String {
    format!("as of {}", utc_text(t))
}

#[test]
fn the_slider_shows_exactly_the_processes_recorded_then() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    drop(database(&db));
    let browser = opened(&db);
    assert_eq!(browser.snapshot_times(), [T0, T0 + 10, T0 + 20]);
    assert_eq!(browser.range(), Some((T0, T0 + 20)));
    let mut h = harness(browser);
    // Opens at the newest snapshot.
    h.get_by_label(&as_of(T0 + 20));
    assert_eq!(shown(&h), expected(T0 + 20));
    for t in [T0, T0 + 10, T0 + 20, T0 + 10, T0] {
        set_slider(&mut h, t);
        h.get_by_label(&as_of(t));
        assert_eq!(shown(&h), expected(t), "at T0+{}", t - T0);
        assert_eq!(h.state().time(), t);
    }
    // Between snapshots the slider snaps to the nearest one.
    set_slider(&mut h, T0 + 4);
    assert_eq!(h.state().time(), T0);
    set_slider(&mut h, T0 + 6);
    assert_eq!(h.state().time(), T0 + 10);
    assert_eq!(shown(&h), expected(T0 + 10));
    set_slider(&mut h, T0 + 17);
    assert_eq!(h.state().time(), T0 + 20);
    assert_eq!(shown(&h), expected(T0 + 20));
}

#[test]
fn previous_and_next_snapshot_buttons_step_through_the_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    drop(database(&db));
    let mut h = harness(opened(&db));
    for t in [T0 + 10, T0] {
        h.get_by_label("previous snapshot").click();
        settle(&mut h);
        assert_eq!(h.state().time(), t);
        assert_eq!(shown(&h), expected(t));
    }
    h.get_by_label("next snapshot").click();
    settle(&mut h);
    assert_eq!(h.state().time(), T0 + 10);
    assert_eq!(shown(&h), expected(T0 + 10));
}

#[test]
fn where_was_pid_names_the_node_at_the_chosen_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    drop(database(&db));
    let mut h = harness(opened(&db));
    type_into(&mut h, "where was pid", "100");
    h.get_by_label("pid 100 was on no node at that time.");
    set_slider(&mut h, T0 + 10);
    h.get_by_label("pid 100 was on node 2 (migrated from node 1).");
    set_slider(&mut h, T0);
    h.get_by_label("pid 100 was on node 1 (at home).");
}

#[test]
fn the_filter_narrows_the_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    drop(database(&db));
    let mut h = harness(opened(&db));
    set_slider(&mut h, T0 + 10);
    type_into(&mut h, "filter", "povray");
    assert_eq!(shown(&h), [(100, 2)].into());
    h.get_by_label("1 of 3 processes on 3 nodes");
}

#[test]
fn set_time_shows_the_lists_in_force_then() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    drop(database(&db));
    let mut b = opened(&db);
    b.set_time(T0 + 15);
    assert_eq!(b.time(), T0 + 15);
    // The worker reads the processes; the time changed at once.
    assert!(b.busy());
    assert!(b.wait_loaded(Duration::from_secs(20)));
    let rows: BTreeSet<_> = b.rows().iter().map(|p| (p.pid, p.node)).collect();
    assert_eq!(rows, expected(T0 + 10));
    // Outside the history: clamped to its range.
    b.set_time(T0 - 100);
    assert_eq!(b.time(), T0);
    assert!(b.wait_loaded(Duration::from_secs(20)));
    let mut h = harness(b);
    h.get_by_label(&as_of(T0));
    h.state_mut().set_time(T0 + 12);
    settle(&mut h);
    h.get_by_label(&as_of(T0 + 12));
    h.get_by_label("between snapshots (3 recorded)");
    assert_eq!(shown(&h), expected(T0 + 10));
}

#[test]
fn refresh_follows_the_live_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    let mut store = database(&db);
    let mut h = harness(opened(&db));
    assert!(h.state().refresh());
    let mut t = tick(T0 + 30);
    t.procs[0].1.push(proc_in(400, 1, 'R', "new job"));
    store.write_tick(&t).expect("tick");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    settle(&mut h);
    h.get_by_label(&as_of(T0 + 30));
    assert!(shown(&h).contains(&(400, 1)));
    // With refresh off, new data is not read.
    h.get_by_role_and_label(Role::CheckBox, "refresh").click();
    settle(&mut h);
    assert!(!h.state().refresh());
    store.write_tick(&tick(T0 + 40)).expect("tick");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    settle(&mut h);
    assert_eq!(h.state().time(), T0 + 30);
}

#[test]
fn file_open_reads_another_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("first.db");
    drop(database(&first));
    let second = dir.path().join("second.db");
    saved_history(&second);
    let mut h = harness(opened(&first));
    h.get_by_label("File").click();
    h.run();
    h.get_by_label("open…").click();
    h.run();
    let field = h.get_by_role_and_label(Role::TextInput, "path");
    field.click();
    h.run();
    // Replace the path offered (the current one).
    h.get_by_role_and_label(Role::TextInput, "path")
        .set_text_value_accesskit(&second.display().to_string());
    h.run();
    h.get_by_role_and_label(Role::Button, "open").click();
    settle(&mut h);
    assert_eq!(shown(&h), [(777, 7)].into());
    h.get_by_label(&as_of(T0 + 100));
    assert!(h.query_by_label("open a history").is_none());
}

#[test]
fn a_missing_history_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nothing.db");
    let err = HistoryBrowser::open(&missing).expect_err("missing");
    let h = harness(HistoryBrowser::unopened(&missing, Some(err.clone())));
    h.get_by_label(&err);
    assert!(shown(&h).is_empty());
}

#[test]
fn where_sentences() {
    let row = |node: NodeId, pid: i32, home: NodeId, home_pid: i32| openmosix_store::ProcRow {
        node,
        time: T0,
        pid,
        home,
        home_pid,
        state: 'R',
        cmdline: "x".into(),
    };
    assert_eq!(
        where_sentence(2521, &[row(2, 32521, 1, 2521)]),
        "pid 2521 was on node 2 as pid 32521 (migrated from node 1)."
    );
    assert_eq!(
        where_sentence(7, &[row(1, 7, 1, 7), row(3, 7, 2, 40)]),
        "pid 7 was on node 1 (at home) and node 3 (migrated from node 2, pid 40 there)."
    );
    assert_eq!(
        where_sentence(7, &[row(1, 7, 1, 7), row(2, 7, 2, 7), row(3, 7, 3, 7)]),
        "pid 7 was on node 1 (at home), node 2 (at home) and node 3 (at home)."
    );
    assert_eq!(where_sentence(9, &[]), "pid 9 was on no node at that time.");
}

#[test]
fn refresh_follows_the_live_link_to_a_new_file_after_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("history.db");
    let mut store = Store::open_live(&link).expect("live");
    store
        .set_nodes(&[(1, "a".into()), (2, "b".into()), (3, "c".into())])
        .expect("nodes");
    for t in T0..=T0 + 5 {
        store.write_tick(&tick(t)).expect("tick");
    }
    let mut h = harness(opened(&link));
    let first = h.state().file().expect("file").to_path_buf();
    assert_eq!(shown(&h), expected(T0));
    let (mut store, saved) = store.rotate().expect("rotate");
    assert_eq!(saved, first);
    for t in T0 + 20..=T0 + 22 {
        store.write_tick(&tick(t)).expect("tick");
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The poll finds the link moved on; the new file is opened by the worker.
    settle(&mut h);
    assert_eq!(h.state().file(), Some(store.file()));
    assert_eq!(h.state().range(), Some((T0 + 20, T0 + 22)));
    assert_eq!(shown(&h), expected(T0 + 20));
}

#[test]
fn the_window_draws_while_the_history_is_opened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    drop(database(&db));
    // Another program holds the file locked: the opening thread waits for it.
    let lock = ExclusiveLock::take(&db);
    let start = std::time::Instant::now();
    let mut b = HistoryBrowser::open(&db).expect("open");
    // A time asked for before the history is in (the analyzer's right-click).
    b.set_time(T0 + 15);
    // Frames only: a spinner keeps asking for more, so the harness never settles.
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 600.0))
        .build_ui_state(|ui, b: &mut HistoryBrowser| b.ui(ui), b);
    assert_frames_do_not_wait(&mut h, start, 2);
    assert!(h.state().loading());
    assert!(h.state().file().is_none());
    h.get_by_label("loading…");
    lock.release();
    assert!(
        h.state_mut()
            .wait_loaded(std::time::Duration::from_secs(20))
    );
    h.run();
    assert!(!h.state().loading());
    assert_eq!(h.state().time(), T0 + 15);
    assert_eq!(shown(&h), expected(T0 + 10));
}

#[test]
fn a_file_that_is_not_a_history_shows_its_error_in_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .expect("db")
        .execute_batch("CREATE TABLE t (a);")
        .expect("table");
    let mut h = harness(HistoryBrowser::open(&other).expect("open"));
    assert!(
        h.state_mut()
            .wait_loaded(std::time::Duration::from_secs(20))
    );
    h.run();
    assert!(h.state().file().is_none());
    assert!(
        h.query_by_label_contains("not an openmosixcollector database")
            .is_some()
    );
}

/// Switches the file from WAL to a rollback journal. In WAL mode a reader never waits for
/// a writer, and nobody can lock the file while the browser has it open; with a rollback
/// journal another program's exclusive lock makes every read wait (up to the history's
/// busy timeout).
fn rollback_journal(db: &Path) {
    let mode: String = rusqlite::Connection::open(db)
        .expect("db")
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "delete");
}

#[test]
fn the_window_draws_while_a_query_waits_for_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    drop(database(&db));
    rollback_journal(&db);
    let mut h = harness(opened(&db));
    type_into(&mut h, "where was pid", "100");
    h.get_by_label("pid 100 was on no node at that time.");
    let answers = h.state().answers();
    // Another program holds the file locked: the worker's next query waits for it.
    // The worker may be reading (a "refresh" poll): taking the lock waits for it.
    let lock = ExclusiveLock::take(&db);
    let start = Instant::now();
    // A drag over the slider while the file is locked: frames only (a spinner keeps
    // asking for more, so the harness never settles).
    for t in [T0 + 10, T0 + 20, T0 + 10, T0] {
        h.get_by_role_and_label(Role::Slider, "time")
            .set_value_accesskit(t as f64);
        h.run_steps(2);
    }
    assert_frames_do_not_wait(&mut h, start, 0);
    // The time moved at once; the processes and the where answer are on their way,
    // the list of before stays until they are in.
    assert!(h.state().busy());
    assert_eq!(h.state().time(), T0);
    h.get_by_label(&as_of(T0));
    assert_eq!(h.query_all_by_label("loading…").count(), 2);
    assert_eq!(shown(&h), expected(T0 + 20));
    assert!(h.query_by_label_contains("pid 100 was").is_none());
    lock.release();
    settle(&mut h);
    assert_eq!(shown(&h), expected(T0));
    h.get_by_label("pid 100 was on node 1 (at home).");
    assert!(h.query_by_label("loading…").is_none());
    assert_eq!(h.state().error(), None);
    // Four asked: the query the worker was in when the file was locked (if it got to
    // it before the next came), then only the newest of those asked meanwhile.
    let answered = h.state().answers() - answers;
    assert!((1..=2).contains(&answered), "{answered} answers");
}

#[test]
fn a_query_that_cannot_read_the_file_says_so_in_the_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    drop(database(&db));
    rollback_journal(&db);
    // No "refresh" polls: they would fail too, with a sentence of their own.
    let mut b = opened(&db);
    b.set_refresh(false);
    let mut h = harness(b);
    let lock = ExclusiveLock::take(&db);
    // Held longer than the history waits for a lock (5 s).
    set_slider(&mut h, T0 + 10);
    let error = h.state().error().expect("an error").to_owned();
    assert!(error.starts_with("cannot read the processes: "), "{error}");
    h.get_by_label(&error);
    assert_eq!(shown(&h), expected(T0 + 20));
    lock.release();
    // The next move reads again.
    set_slider(&mut h, T0);
    assert_eq!(h.state().error(), None);
    assert_eq!(shown(&h), expected(T0));
}

#[test]
fn opening_twice_in_a_row_ends_at_the_second_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, second, third) = (
        dir.path().join("first.db"),
        dir.path().join("second.db"),
        dir.path().join("third.db"),
    );
    drop(database(&first));
    drop(database(&second));
    saved_history(&third);
    let mut b = opened(&first);
    b.open_path(&second).expect("second");
    b.open_path(&third).expect("third");
    assert!(b.loading());
    assert!(b.wait_loaded(Duration::from_secs(20)));
    assert_eq!(
        b.file(),
        Some(std::fs::canonicalize(&third).expect("path").as_path())
    );
    assert_eq!(b.range(), Some((T0 + 100, T0 + 100)));
    let rows: BTreeSet<_> = b.rows().iter().map(|p| (p.pid, p.node)).collect();
    assert_eq!(rows, [(777, 7)].into());
    // And the worker reads that file too.
    b.set_time(T0);
    assert!(b.wait_loaded(Duration::from_secs(20)));
    assert_eq!(b.time(), T0 + 100);
    assert_eq!(b.rows().len(), 1);
    assert_eq!(b.error(), None);
}
