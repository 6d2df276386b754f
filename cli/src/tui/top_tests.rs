use std::time::{Duration, Instant};

use openmosix_client::LinkState;
use openmosix_testbed::fixtures::{node_view, proc_info};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::super::table::{CHROME, frame, plain};
use super::*;

fn press(top: &mut Top, code: KeyCode) -> Flow {
    top.key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(top: &mut Top, text: &str) {
    for c in text.chars() {
        press(top, KeyCode::Char(c));
    }
}

/// Node 1 with a busy `cruncher` (pid 10) and an idle `sleeper` (pid 11); node 2 with a
/// big `database` (pid 20) that cannot move. Two lists one second apart.
fn cluster() -> Top {
    let mut top = Top::default();
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(1);
    let mut busy = proc_info(10, 1, "cruncher --hard");
    let sleeper = proc_info(11, 1, "sleeper 1000");
    let mut db = proc_info(20, 2, "database");
    db.rss = 3 << 30;
    db.cantmove = "it uses a device".into();
    top.take_list(1, Ok(vec![busy.clone(), sleeper.clone()]), t0);
    top.take_list(2, Ok(vec![db.clone()]), t0);
    busy.utime += 50;
    top.take_list(1, Ok(vec![busy, sleeper]), t1);
    top.take_list(2, Ok(vec![db]), t1);
    top
}

fn pids(top: &Top) -> Vec<i32> {
    top.rows().iter().map(|r| r.p.pid).collect()
}

#[test]
fn cpu_share_comes_from_two_lists_and_sorts() {
    let mut top = cluster();
    let cpu = top.rows()[0].cpu;
    assert_eq!(pids(&top), [10, 11, 20], "busiest first");
    assert!((cpu.unwrap() - 50.0).abs() < 1e-6, "{cpu:?}");
    assert_eq!(press(&mut top, KeyCode::Char('m')), Flow::Redraw);
    assert_eq!(pids(&top)[0], 20, "largest first");
    press(&mut top, KeyCode::Char('n'));
    assert_eq!(pids(&top), [10, 11, 20]);
    press(&mut top, KeyCode::Char('p'));
    assert_eq!(press(&mut top, KeyCode::Char('p')), Flow::Same);
}

#[test]
fn the_filter_matches_command_or_pid_and_escape_keeps_it() {
    let mut top = cluster();
    press(&mut top, KeyCode::Char('/'));
    typed(&mut top, "SLEEP");
    assert_eq!(pids(&top).len(), 3, "applied on Enter only");
    press(&mut top, KeyCode::Enter);
    assert_eq!(pids(&top), [11]);
    press(&mut top, KeyCode::Char('/'));
    press(&mut top, KeyCode::Backspace);
    press(&mut top, KeyCode::Esc);
    assert_eq!(top.filter, "SLEEP", "Esc leaves the filter as it was");
    press(&mut top, KeyCode::Char('/'));
    for _ in 0..5 {
        press(&mut top, KeyCode::Backspace);
    }
    typed(&mut top, "20");
    press(&mut top, KeyCode::Enter);
    assert_eq!(pids(&top), [20]);
}

#[test]
fn keys_act_on_the_selected_process() {
    let mut top = cluster();
    press(&mut top, KeyCode::Down);
    assert_eq!(top.selected, Some((1, 11)));
    press(&mut top, KeyCode::End);
    assert_eq!(top.selected, Some((2, 20)));
    press(&mut top, KeyCode::Home);
    press(&mut top, KeyCode::Char('s'));
    assert_eq!(
        press(&mut top, KeyCode::Char('k')),
        Flow::Act(Command::Signal(1, 10, Signal::Kill))
    );
    press(&mut top, KeyCode::Char('r'));
    typed(&mut top, "25");
    assert_eq!(press(&mut top, KeyCode::Enter), Flow::Redraw);
    assert!(top.status.error && top.status.text.contains("not a nice value"));
    press(&mut top, KeyCode::Char('r'));
    typed(&mut top, "-5");
    assert_eq!(
        press(&mut top, KeyCode::Enter),
        Flow::Act(Command::Renice(1, 10, -5))
    );
    press(&mut top, KeyCode::Char('g'));
    typed(&mut top, "3");
    assert_eq!(
        press(&mut top, KeyCode::Enter),
        Flow::Act(Command::Migrate(1, 10, Target::Node(3)))
    );
    press(&mut top, KeyCode::Char('g'));
    typed(&mut top, "1");
    press(&mut top, KeyCode::Enter);
    assert_eq!(top.status.text, "process 10 already runs on node 1");
    assert_eq!(
        press(&mut top, KeyCode::Char('b')),
        Flow::Act(Command::Migrate(1, 10, Target::Best))
    );
    assert_eq!(
        press(&mut top, KeyCode::Char('l')),
        Flow::Act(Command::Lock(1, 10, true))
    );
    assert_eq!(press(&mut top, KeyCode::Char('q')), Flow::Quit);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    press(&mut top, KeyCode::Char('/'));
    assert_eq!(top.key(ctrl_c), Flow::Quit, "Ctrl-C quits even in a prompt");
}

#[test]
fn a_frame_fits_80_by_24_with_details_of_the_selection() {
    let mut top = cluster();
    // Many processes on a third node: the page scrolls to keep the selection shown.
    let many: Vec<ProcInfo> = (100..200)
        .map(|pid| proc_info(pid, 3, &format!("worker {pid} {}", "x".repeat(80))))
        .collect();
    top.take_list(3, Ok(many), Instant::now());
    press(&mut top, KeyCode::Char('n'));
    press(&mut top, KeyCode::End);
    let mut nodes = vec![node_view(1), node_view(2), node_view(3)];
    nodes[1].state = LinkState::Down;
    top.take_list(2, Err("node 2: gone".into()), Instant::now());
    let text = plain(&frame(&mut top, &nodes, 80, Some(24 - CHROME)));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 24, "{text}");
    assert!(lines.iter().all(|l| l.chars().count() <= 80), "{text}");
    assert!(lines[0].contains("2 of 3 nodes up") && lines[0].contains("no list from 2"));
    assert!(
        lines[1].starts_with("NODE     PID WHERE HOME NMIGS"),
        "{text}"
    );
    assert!(
        lines[20].starts_with("   3     199"),
        "the last row shown:\n{text}"
    );
    assert!(lines[21].starts_with("199 on node 3: home 3/199"), "{text}");
    top.selected = Some((2, 20));
    let text = plain(&frame(&mut top, &nodes, 80, Some(24 - CHROME)));
    assert!(
        text.contains("cantmove: it uses a device"),
        "why the selection cannot move:\n{text}"
    );
    assert!(text.contains("   2      20     2    2     0   0.0   3.0G S database"));
}
