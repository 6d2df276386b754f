//! The real `openmosixmigmon` in a real X server (Xvfb) on a 3-node testbed, driven by
//! real X pointer events (xdotool): a process square dragged onto node 3's penguin moves
//! the process there, as `openmosix ps` says.
//!
//! Where to point comes from the monitor's own geometry (`layout`, `circles`) over the
//! canvas as the screenshot shows it; the test waits until the screenshot has the
//! squares where the geometry puts them before it presses the button.

use std::collections::BTreeMap;
use std::time::Duration;

use egui::{Color32, Pos2, Rect};
use openmosix_hpc::model::{NodeId, ProcInfo};
use openmosix_testbed::gui::program::{Screen, WindowProgram};
use openmosix_testbed::gui::shot::{Shot, near};
use openmosix_testbed::gui::x11::XWindow;
use openmosix_testbed::process::Xvfb;
use openmosix_testbed::session::AgentSession;
use openmosix_testbed::{KillAllAtEnd, Testbed, serial, wait};
use openmosixmigmon::circles::circles;
use openmosixmigmon::layout::{node_places, square_places};
use openmosixmigmon::monitor::{LOCAL, MIGRATED};

/// The canvas's background (canvas.rs paints it so, whatever the theme).
const CANVAS: Color32 = Color32::from_rgb(226, 234, 242);
/// The watched node.
const MAIN: NodeId = 2;

fn bed() -> &'static Testbed {
    Testbed::shared("ptmig", 171, 3)
}

/// Sessions with the agents of nodes 1, 2 and 3: every node's process list as the
/// window gets it.
struct Agents(Vec<AgentSession>);

impl Agents {
    fn open() -> Agents {
        Agents((1..=3).map(|n| AgentSession::open(bed(), n)).collect())
    }

    fn lists(&mut self) -> BTreeMap<NodeId, Vec<ProcInfo>> {
        (1..=3)
            .zip(&mut self.0)
            .map(|(n, a)| (n, a.procs()))
            .collect()
    }
}

/// Where the square of `pid` is drawn (and every square by its penguin) when the
/// monitor's canvas is `canvas`, given the lists; `None` when it has no square.
fn squares(
    canvas: Rect,
    lists: &BTreeMap<NodeId, Vec<ProcInfo>>,
    pid: i32,
) -> Option<(Pos2, Vec<Pos2>)> {
    let places = node_places(canvas, &[1, 2, 3], MAIN);
    let circles = circles(lists, MAIN);
    circles.iter().find_map(|(node, circle)| {
        let i = circle.shown.iter().position(|s| s.pid == pid)?;
        let place = places.iter().find(|p| p.id == *node)?;
        let at = square_places(place, circle.shown.len());
        Some((at[i], at))
    })
}

/// The canvas on the screenshot.
fn canvas(shot: &Shot) -> Result<Rect, String> {
    shot.bounds(|c| near(c, CANVAS, 3))
        .filter(|r| r.width() > 300.0 && r.height() > 300.0)
        .ok_or_else(|| "no canvas on the screen yet".to_owned())
}

/// Waits until the screenshot shows `pid`'s square, and all its neighbours, in `colour`
/// where the geometry puts them; the canvas and the square's centre.
fn wait_for_square(
    agents: &mut Agents,
    window: &XWindow,
    program: &mut WindowProgram,
    pid: i32,
    colour: Color32,
    what: &str,
) -> (Rect, Pos2) {
    window.wait_for(60, what, |shot| {
        program.check_running();
        let canvas = canvas(shot)?;
        let lists = agents.lists();
        let (at, all) = squares(canvas, &lists, pid).ok_or("no square in the lists".to_owned())?;
        let seen: Vec<_> = all.iter().map(|p| shot.pixel(*p)).collect();
        if seen.iter().all(|c| c.is_some_and(|c| near(c, colour, 12))) {
            Ok((canvas, at))
        } else {
            Err(format!(
                "squares at {all:?} show {seen:?} on the canvas {canvas:?}"
            ))
        }
    })
}

#[test]
fn a_square_dragged_with_the_x_pointer_onto_a_penguin_migrates_there() {
    let _g = serial();
    let marker = "sleep 4721";
    let _k = KillAllAtEnd(bed(), marker);
    let pid = i32::try_from(bed().run_job(MAIN, &[], &["sleep", "4721"])).expect("a pid");

    let x = Xvfb::start_in(70..80, "1280x900x24");
    let cluster = bed().cluster_file.display().to_string();
    let mut program = WindowProgram::start(
        env!("CARGO_BIN_EXE_openmosixmigmon"),
        &["--cluster", &cluster, "--watch", "2"],
        Screen::X11(&x.display),
    );
    let window = XWindow::find(&x.display, "openMosixmigmon");
    let mut agents = Agents::open();
    let (canvas, from) = wait_for_square(
        &mut agents,
        &window,
        &mut program,
        pid,
        LOCAL,
        "the marker's square by node 2",
    );
    let places = node_places(canvas, &[1, 2, 3], MAIN);
    let node3 = places.iter().find(|p| p.id == 3).expect("node 3's place");
    let on3 = || {
        bed()
            .ps(3)
            .into_iter()
            .find(|p| p["home"] == MAIN && p["home_pid"].as_i64() == Some(i64::from(pid)))
    };
    // A machine loaded by other tests may draw the window too slowly to see a quick
    // drag as one: the hand tries again while the square is still by node 2 and no
    // move was started (a second drag during a move would be refused by the agent).
    let mut guest = None;
    for _ in 0..4 {
        window.drag(from, node3.center, 12);
        guest = wait::some_within(Duration::from_secs(30), on3);
        if guest.is_some() {
            break;
        }
    }
    // The agent on node 3 reports it as a guest from node 2; node 2 has it no more.
    let guest = guest
        .unwrap_or_else(|| wait::until_some(Duration::from_secs(60), "the marker on node 3", on3));
    assert_eq!(guest["cmdline"], marker);
    assert!(
        bed().find(MAIN, i64::from(pid)).is_none(),
        "still on node 2"
    );
    // The window shows it green by node 3.
    let new_pid = i32::try_from(guest["pid"].as_i64().expect("pid")).expect("pid");
    let (_, by3) = wait_for_square(
        &mut agents,
        &window,
        &mut program,
        new_pid,
        MIGRATED,
        "the marker's square green by node 3",
    );
    assert!(
        by3.distance(node3.center) < by3.distance(from),
        "the green square at {by3:?} is not by node 3 at {:?}",
        node3.center
    );
}
