//! The real `openmosixprocs` in a real X server (Xvfb) on a 3-node testbed, driven by
//! real X pointer and key events (xdotool): the filter typed, a pid double-clicked for
//! its migrator, node 3 double-clicked there — and `openmosix ps` finds the process on
//! node 3.
//!
//! Where to point comes from egui's own layout of the same window: the same
//! `ProcsWindow`, drawn by egui_kittest at the real window's size over the same cluster,
//! says where each widget is (by its label). The test waits until the screenshot shows
//! something there before it clicks.

use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui::{Pos2, Rect};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_testbed::gui::program::{Screen, WindowProgram};
use openmosix_testbed::gui::shot::Shot;
use openmosix_testbed::gui::x11::XWindow;
use openmosix_testbed::gui::{LiveApp, double_click, type_into, wait};
use openmosix_testbed::process::Xvfb;
use openmosix_testbed::{KillAllAtEnd, Testbed, serial};
use openmosixprocs::ProcsWindow;

fn bed() -> &'static Testbed {
    Testbed::shared("ptproc", 172, 3)
}

type App = LiveApp<ProcsWindow>;

/// The layout oracle: the window as the program draws it (`root_ui`, as main.rs), at
/// the real window's size.
fn oracle(window: &XWindow) -> Harness<'static, App> {
    let app = LiveApp::start(&bed().cluster_file, ProcsWindow::new());
    let mut h = Harness::builder()
        .with_size(window.size)
        .with_step_dt(0.02)
        .build_ui_state(
            |ui, app: &mut App| app.window.root_ui(ui, &app.source, Instant::now()),
            app,
        );
    wait(&mut h, 15, "every node connected", |h| h.state().all_up(3));
    h
}

/// The rectangle of the widget labelled `label` (with `role`, if given) in the oracle.
fn rect(h: &Harness<'static, App>, role: Option<Role>, label: &str) -> Rect {
    let node = match role {
        Some(r) => h.get_by_role_and_label(r, label),
        None => h.get_by_label(label),
    };
    node.rect()
}

/// Waits until `rect` on the real window shows something drawn (text: several colours)
/// that differs from `before` there; the program must keep running.
fn wait_for_drawing(
    window: &XWindow,
    program: &mut WindowProgram,
    rect: Rect,
    before: Option<&Shot>,
    what: &str,
) {
    window.wait_for(30, what, |shot| {
        program.check_running();
        let colours = shot.colours_in(rect);
        let changed = before.is_none_or(|b| differs(b, shot, rect));
        if colours > 4 && changed {
            Ok(())
        } else {
            Err(format!("{colours} colours in {rect:?}, changed: {changed}"))
        }
    });
}

fn differs(a: &Shot, b: &Shot, rect: Rect) -> bool {
    let (x0, y0) = (rect.min.x as i32, rect.min.y as i32);
    let (x1, y1) = (rect.max.x as i32, rect.max.y as i32);
    (y0..y1).any(|y| {
        (x0..x1).any(|x| {
            let p = Pos2::new(x as f32, y as f32);
            a.pixel(p) != b.pixel(p)
        })
    })
}

#[test]
fn a_node_double_clicked_with_the_x_pointer_in_the_migrator_gets_the_process() {
    let _g = serial();
    // A command no pid or uid matches: the filter leaves the marker alone.
    let marker = "sleep 987654";
    let _k = KillAllAtEnd(bed(), marker);
    let pid = i32::try_from(bed().run_job(2, &[], &["sleep", "987654"])).expect("a pid");

    let x = Xvfb::start_in(70..80, "1280x900x24");
    let cluster = bed().cluster_file.display().to_string();
    let mut program = WindowProgram::start(
        env!("CARGO_BIN_EXE_openmosixprocs"),
        &["--cluster", &cluster],
        Screen::X11(&x.display),
    );
    let window = XWindow::find(&x.display, "openMosixprocs");
    let mut h = oracle(&window);

    // The filter: clicked, typed into with the keyboard.
    let filter = rect(&h, Some(Role::TextInput), "filter");
    wait_for_drawing(&window, &mut program, filter, None, "the filter field");
    window.click(filter.center());
    window.type_text("987654");
    type_into(&mut h, "filter", "987654");
    let row = format!("pid {pid} on node 2");
    wait(&mut h, 15, "the marker alone in the box", |h| {
        h.query_by_label(&row).is_some() && h.state().window.rows().len() == 1
    });

    // Its pid, double-clicked: the migrator opens.
    let pid_cell = rect(&h, None, &row);
    wait_for_drawing(&window, &mut program, pid_cell, None, "the marker's row");
    let before = window.shot();
    window.double_click(pid_cell.center());
    double_click(&mut h, &row);
    h.get_by_label(&format!("migrator: pid {pid} on node 2"));

    // Node 3 in the migrator, double-clicked: the process moves there.
    let node3 = rect(&h, Some(Role::Button), "node 3");
    wait_for_drawing(
        &window,
        &mut program,
        node3,
        Some(&before),
        "node 3 in the migrator",
    );
    // On a loaded machine the window may see the two clicks too far apart for a double
    // click; a hand would double-click again. A move under way ignores a second one.
    let on3 = || {
        bed()
            .ps(3)
            .into_iter()
            .find(|p| p["home"] == 2 && p["home_pid"].as_i64() == Some(i64::from(pid)))
    };
    let mut guest = None;
    for _ in 0..4 {
        window.double_click(node3.center());
        let deadline = std::time::Instant::now() + Duration::from_secs(25);
        while guest.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            guest = on3();
        }
        if guest.is_some() {
            break;
        }
    }
    let guest = guest.unwrap_or_else(|| panic!("the marker never came to node 3"));
    assert_eq!(guest["cmdline"], marker);
    assert!(bed().find(2, i64::from(pid)).is_none(), "still on node 2");
}
