//! The analyzer on a history written by the collector's own writer: one line per node,
//! the checkpoint, and "find out" equal to plain SQL over the same range.

#![allow(clippy::unwrap_used)]

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_testbed::gui::assert_frames_do_not_wait;
use openmosix_testbed::history::ExclusiveLock;
use openmosixanalyzer::synth::{self, Synth};
use openmosixanalyzer::{Analyzer, Overview, time_text};

const T0: i64 = 1_700_000_000;
const SECONDS: i64 = 2 * 3600;

fn history(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("history.db");
    synth::write(
        &path,
        &Synth {
            nodes: 3,
            t0: T0,
            seconds: SECONDS,
            down: Some((3, 1000, 1300)),
            checkpoints: vec![(3600, "test checkpoint".into())],
            events: vec![(
                1800,
                2,
                "migrate_in".into(),
                "job 77 came from node 1".into(),
            )],
        },
    )
    .unwrap();
    path
}

fn harness(path: &std::path::Path) -> Harness<'static, Analyzer> {
    let analyzer = Analyzer::open(path).unwrap();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 700.0))
        .build_ui_state(|ui, a: &mut Analyzer| a.ui(ui), analyzer);
    h.run_steps(4);
    settle(&mut h);
    h
}

/// Waits for the history thread to answer what the analyzer asked, and draws the answer.
fn settle(h: &mut Harness<'_, Analyzer>) {
    // An answer can make the next frame ask again (a "refresh" poll, then the plot).
    for _ in 0..5 {
        assert!(
            h.state_mut().wait_idle(std::time::Duration::from_secs(20)),
            "the history thread did not answer"
        );
        h.run_steps(2);
        if !h.state().loading() {
            return;
        }
    }
    panic!("the analyzer keeps asking the history");
}

/// min, max, mean of load and mem of `node` (all nodes for `None`) in `from..=to`.
fn sql(
    path: &std::path::Path,
    node: Option<u32>,
    from: i64,
    to: i64,
) -> (f64, f64, f64, f64, f64, f64) {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(
        "SELECT MIN(load), MAX(load), AVG(load), MIN(mem), MAX(mem), AVG(mem) FROM samples_all
         WHERE (?1 IS NULL OR node = ?1) AND time BETWEEN ?2 AND ?3",
        rusqlite::params![node, from, to],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )
    .unwrap()
}

fn check_find_out(h: &Harness<'_, Analyzer>, path: &std::path::Path, node: Option<u32>) {
    let (from, to) = h.state().shown_range();
    let (min, max, mean, mmin, mmax, mmean) = sql(path, node, from, to);
    for label in [
        format!("from: {}", time_text(from)),
        format!("to: {}", time_text(to)),
        format!("load min: {min:.2}"),
        format!("load max: {max:.2}"),
        format!("load mean: {mean:.2}"),
        format!("mem min: {mmin:.1} MiB"),
        format!("mem max: {mmax:.1} MiB"),
        format!("mem mean: {mmean:.1} MiB"),
    ] {
        assert!(h.query_by_label(&label).is_some(), "no label {label:?}");
    }
}

#[test]
fn one_line_per_node_and_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = history(dir.path());
    let h = harness(&path);
    let a = h.state();
    // The default view: the 2 h the history holds, not 12 h (issue #18).
    let last = T0 + SECONDS - 1;
    assert_eq!(a.range(), Some((T0, last)));
    assert_eq!(a.shown_range(), (T0, last));
    h.get_by_label(&format!("from {} to {}", time_text(T0), time_text(last)));
    let series = a.visible_series();
    assert_eq!(
        series.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{series:?}"
    );
    let width = a.plot_width();
    assert!(width > 500.0, "plot width {width}");
    for (node, points) in &series {
        assert!(*points > 10, "node {node}: {points} points");
        assert!(
            *points as f32 <= 2.0 * width,
            "node {node}: {points} points for {width} px"
        );
    }
    // The checkpoint: drawn and listed.
    assert_eq!(a.checkpoints().len(), 1);
    assert_eq!(a.checkpoints()[0].time_ms, (T0 + 3600) * 1000);
    h.get_by_label("checkpoints: 1");
    h.get_by_label(&format!(
        "checkpoint {}: test checkpoint",
        time_text(T0 + 3600)
    ));
    // The event.
    assert_eq!(a.events().len(), 1);
    h.get_by_label("events: 1");
}

#[test]
fn find_out_matches_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = history(dir.path());
    let mut h = harness(&path);
    // A narrower view: 30 minutes, across node 3's gap.
    h.state_mut().set_view(T0 + 900, T0 + 2700);
    h.run_steps(4);
    settle(&mut h);
    assert_eq!(h.state().shown_range(), (T0 + 900, T0 + 2700));
    let queries = h.state().queries();
    assert!(queries >= 2, "the narrower view asked again ({queries})");
    for (_, points) in h.state().visible_series() {
        assert!(points as f32 <= 2.0 * h.state().plot_width());
    }

    h.get_by_role_and_label(Role::Button, "find out node 2")
        .click();
    h.run_steps(3);
    settle(&mut h);
    check_find_out(&h, &path, Some(2));
    h.get_by_label("CPUs: 3");
    h.get_by_label("avail. mem: 8192.0 MiB");
    h.get_by_label("speed: 1500");
    h.get_by_role_and_label(Role::Button, "close").click();
    h.run_steps(3);
    assert!(h.state().find_outs().is_empty());

    h.get_by_role_and_label(Role::Button, "find out node 3")
        .click();
    h.run_steps(3);
    settle(&mut h);
    check_find_out(&h, &path, Some(3));
    h.get_by_role_and_label(Role::Button, "close").click();
    h.run_steps(3);

    h.get_by_role_and_label(Role::Button, "find out cluster")
        .click();
    h.run_steps(3);
    settle(&mut h);
    check_find_out(&h, &path, None);
    h.get_by_label("CPUs: 9");
}

#[test]
fn memory_overview_and_panning() {
    let dir = tempfile::tempdir().unwrap();
    let path = history(dir.path());
    let mut h = harness(&path);
    h.get_by_label("memory overview").click();
    h.run_steps(3);
    settle(&mut h);
    assert_eq!(h.state().overview(), Overview::Memory);
    let series = h.state().visible_series();
    assert_eq!(series.len(), 3);
    assert!(series.iter().all(|s| s.1 > 10), "{series:?}");

    // Drag the plot to the right: the view moves back in time, the history is asked again
    // once it stands still.
    h.state_mut().set_view(T0 + 3600, T0 + 5400);
    h.run_steps(3);
    settle(&mut h);
    let before = h.state().shown_range();
    let q = h.state().queries();
    let y = 400.0;
    h.drag_at(egui::pos2(700.0, y));
    h.run_steps(2);
    for x in [750.0, 800.0, 850.0, 900.0, 950.0] {
        h.hover_at(egui::pos2(x, y));
        h.run_steps(1);
    }
    h.drop_at(egui::pos2(950.0, y));
    h.run_steps(1);
    let after = h.state().shown_range();
    assert!(after.0 < before.0, "panned back: {before:?} -> {after:?}");
    std::thread::sleep(openmosixanalyzer::DEBOUNCE);
    h.run_steps(2);
    settle(&mut h);
    assert!(h.state().queries() > q, "asked again after the pan");
    // Back to the load overview: same nodes.
    h.get_by_label("load overview").click();
    h.run_steps(2);
    assert_eq!(h.state().visible_series().len(), 3);
}

#[test]
fn open_another_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = history(dir.path());
    let other = dir.path().join("older.db");
    synth::write(
        &other,
        &Synth {
            nodes: 2,
            t0: T0 - 86400,
            seconds: 600,
            down: None,
            checkpoints: vec![],
            events: vec![],
        },
    )
    .unwrap();
    let mut h = harness(&path);
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("open another history…").click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::TextInput, "history file")
        .set_text_value_accesskit(&other.display().to_string());
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "open").click();
    h.run_steps(4);
    settle(&mut h);
    assert_eq!(h.state().path(), other.as_path());
    assert_eq!(h.state().nodes().len(), 2);
    assert_eq!(h.state().visible_series().len(), 2);
    assert!(h.state().checkpoints().is_empty());
}

#[test]
fn refresh_follows_the_live_database() {
    use openmosix_hpc::model::{NodeInfo, NodeStatus};
    use openmosix_store::store::{Store, Tick};

    let dir = tempfile::tempdir().unwrap();
    let path = history(dir.path());
    let mut h = harness(&path);
    h.get_by_label("refresh").click();
    h.run_steps(2);
    assert!(h.state().refresh());
    let last = T0 + SECONDS - 1;
    assert_eq!(h.state().shown_range().1, last);

    // The collector writes ten more seconds.
    let mut store = Store::open_file(&path).unwrap();
    for i in 0..10 {
        let samples = (1..=3)
            .map(|n| {
                (
                    n,
                    NodeInfo {
                        id: n,
                        cpus: 1,
                        speed: 1000,
                        load: 90.0,
                        util: 50.0,
                        mem: 1 << 30,
                        rmem: 1 << 29,
                        tmem: 4 << 30,
                        status: NodeStatus::Up,
                    },
                )
            })
            .collect();
        store
            .write_tick(&Tick {
                time: last + 1 + i,
                samples,
                ..Tick::default()
            })
            .unwrap();
    }
    std::thread::sleep(openmosixanalyzer::POLL_EVERY);
    h.run_steps(4);
    settle(&mut h);
    assert_eq!(h.state().range(), Some((T0, last + 10)));
    // The view followed the newest sample.
    assert_eq!(h.state().shown_range().1, last + 10);
}

#[test]
fn right_click_asks_for_the_history_at_that_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = history(dir.path());
    let mut h = harness(&path);
    h.state_mut().set_view(T0 + 900, T0 + 2700);
    h.run_steps(3);
    settle(&mut h);
    assert_eq!(h.state_mut().take_history_request(), None);
    let pos = egui::pos2(700.0, 400.0);
    h.hover_at(pos);
    h.run_steps(1);
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Secondary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        h.run_steps(1);
    }
    let (from, to) = h.state().shown_range();
    let t = h.state_mut().take_history_request();
    assert!(
        t.is_some_and(|t| (from..=to).contains(&t)),
        "{t:?} not in {from}..={to}"
    );
    // Only once.
    assert_eq!(h.state_mut().take_history_request(), None);
}

#[test]
fn the_window_draws_while_the_history_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = history(dir.path());
    // Another program holds the file locked: the history thread waits for it.
    let lock = ExclusiveLock::take(&path);
    let start = std::time::Instant::now();
    let analyzer = Analyzer::open(&path).unwrap();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 700.0))
        .build_ui_state(|ui, a: &mut Analyzer| a.ui(ui), analyzer);
    assert_frames_do_not_wait(&mut h, start, 4);
    assert!(h.state().nodes().is_empty());
    assert!(h.state().loading());
    assert!(h.state().file().is_none());
    h.get_by_label("loading…");
    h.get_by_label(&format!("opening {}", path.display()));
    lock.release();
    settle(&mut h);
    assert_eq!(h.state().nodes().len(), 3);
    assert_eq!(h.state().range(), Some((T0, T0 + SECONDS - 1)));
    assert_eq!(
        h.state().file(),
        Some(std::fs::canonicalize(&path).unwrap().as_path())
    );
    assert_eq!(h.state().visible_series().len(), 3);
}

#[test]
fn a_file_that_is_not_a_history_shows_its_error_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (a);")
        .unwrap();
    assert!(Analyzer::open(dir.path().join("missing.db")).is_err());
    let mut h = harness(&other);
    h.run_steps(2);
    assert!(h.state().nodes().is_empty());
    assert!(
        h.query_by_label_contains("not an openmosixcollector database")
            .is_some()
    );
}

/// A history the collector started because the one before was damaged says so.
#[test]
fn a_history_started_after_a_damaged_one_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("history.db");
    drop(openmosix_store::Store::open_live(&link).unwrap());
    let damaged = openmosix_store::store::link_target(&link).unwrap();
    std::fs::write(&damaged, vec![0x5Au8; 4096]).unwrap();
    let (store, aside) = openmosix_store::store::open_live_healing(&link).unwrap();
    assert!(aside.is_some());
    drop(store);
    let h = harness(&link);
    let note = h.state().set_aside_note().expect("a note");
    assert!(note.contains(".corrupt-"), "{note}");
    assert!(
        h.query_by_label(&note).is_some(),
        "the note is shown: {note}"
    );

    // A history that started normally shows none.
    let other = tempfile::tempdir().unwrap();
    let h = harness(&history(other.path()));
    assert_eq!(h.state().set_aside_note(), None);
}

#[test]
fn a_history_of_a_few_minutes_opens_on_those_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, seconds| {
        let path = dir.path().join(name);
        synth::write(
            &path,
            &Synth {
                nodes: 2,
                t0: T0,
                seconds,
                down: None,
                checkpoints: vec![],
                events: vec![],
            },
        )
        .unwrap();
        path
    };
    let h = harness(&write("short.db", 120));
    let last = T0 + 120 - 1;
    assert_eq!(h.state().range(), Some((T0, last)));
    // Less than five minutes: five minutes up to the newest sample.
    assert_eq!(h.state().shown_range(), (last - 5 * 60, last));
    let h = harness(&write("twenty-minutes.db", 1200));
    let last = T0 + 1200 - 1;
    assert_eq!(h.state().shown_range(), (T0, last));
}
