//! Launch time of the main window on a 3-node testbed: from starting `openmosixview` to
//! its first frame on the screen, and to every node's lamp lit green, under X11 (Xvfb)
//! and under Wayland (weston, headless) — the median of 5 launches each (docs/benchmarks.md).
//!
//! `cargo bench -p openmosixview --bench launch_time [-- RUNS] [-- --screenshot PNG]`
//! (as root: it builds a 3-node testbed; the testbed's binaries come from the same
//! profile: `cargo build --release --workspace --bins` first). `--screenshot` saves the
//! window as weston shows it once its lamps are lit.
//!
//! The program is looked at by screenshots of the whole screen, one after another with
//! 25 ms between them: the times are good to about one screenshot (Xvfb: `import` of the
//! root window; weston: its screenshooter). The screen servers start before the clock.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::Rect;
use openmosix_gui::widgets::LAMP_UP;
use openmosix_testbed::Testbed;
use openmosix_testbed::gui::program::{Screen, WindowProgram};
use openmosix_testbed::gui::shot::{Shot, near};
use openmosix_testbed::gui::wayland::{BACKGROUND, Weston};
use openmosix_testbed::gui::x11::screen_shot;
use openmosix_testbed::process::Xvfb;
use openmosix_testbed::stats::median;

const NODES: usize = 3;
const LOOK_EVERY: Duration = Duration::from_millis(25);
const GIVE_UP: Duration = Duration::from_secs(60);

/// How long one launch took to its first frame and to all lamps lit.
#[derive(Debug, Clone, Copy)]
struct Launch {
    first_frame: Duration,
    lamps: Duration,
    /// How long one screenshot took (the median): the times' resolution.
    look: Duration,
}

/// How many lamps are lit green: round patches of the lamp's colour, a lamp's size.
fn lamps_lit(shot: &Shot) -> usize {
    let lamp = 6.0..=20.0;
    shot.blobs(|c| near(c, LAMP_UP, 8))
        .iter()
        .filter(|r| lamp.contains(&r.width()) && lamp.contains(&r.height()))
        .count()
}

/// Looks at the screen with `shoot` until the window in it (`window` of a shot) is
/// drawn, then until every lamp is lit; the times from `t0`.
fn watch(
    t0: Instant,
    program: &mut WindowProgram,
    mut shoot: impl FnMut() -> Shot,
    window: impl Fn(&Shot) -> Option<Rect>,
) -> (Launch, Shot) {
    let mut first_frame = None;
    let mut looks = Vec::new();
    loop {
        program.check_running();
        assert!(t0.elapsed() < GIVE_UP, "no lit lamps within {GIVE_UP:?}");
        let before = Instant::now();
        let shot = shoot();
        looks.push(before.elapsed().as_secs_f64());
        let at = t0.elapsed();
        if let Some(w) = window(&shot).filter(|w| shot.colours_in(*w) > 50) {
            let first_frame = *first_frame.get_or_insert(at);
            if lamps_lit(&shot.crop(w)) >= NODES {
                return (
                    Launch {
                        first_frame,
                        lamps: at,
                        look: Duration::from_secs_f64(median(looks)),
                    },
                    shot.crop(w),
                );
            }
        }
        std::thread::sleep(LOOK_EVERY);
    }
}

fn x11(cluster: &str) -> Launch {
    let x = Xvfb::start_in(70..80, "1280x800x24");
    let screen = egui::vec2(1280.0, 800.0);
    let t0 = Instant::now();
    let mut program = WindowProgram::start(
        env!("CARGO_BIN_EXE_openmosixview"),
        &["--cluster", cluster],
        Screen::X11(&x.display),
    );
    // The whole screen: Xvfb's root has two colours, an undrawn window none more.
    let full = Rect::from_min_size(egui::Pos2::ZERO, screen);
    watch(
        t0,
        &mut program,
        || screen_shot(&x.display, screen),
        |_| Some(full),
    )
    .0
}

fn wayland(cluster: &str) -> (Launch, Shot) {
    let mut weston = Weston::start(1280, 800);
    let t0 = Instant::now();
    let mut program = WindowProgram::start(
        env!("CARGO_BIN_EXE_openmosixview"),
        &["--cluster", cluster],
        Screen::Wayland(&weston),
    );
    let (launch, _) = watch(
        t0,
        &mut program,
        || weston.shot(),
        |s| s.bounds(|c| !near(c, BACKGROUND, 2)),
    );
    // The figures of every node filled in, for the picture.
    std::thread::sleep(Duration::from_secs(3));
    weston.check_running();
    let shot = weston.shot();
    let window = shot
        .bounds(|c| !near(c, BACKGROUND, 2))
        .expect("the window");
    (launch, shot.crop(window))
}

fn row(name: &str, launches: &[Launch]) {
    let ms = |d: Vec<f64>| {
        let (lo, hi) = d
            .iter()
            .fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        format!("{:.0} ms ({lo:.0}–{hi:.0})", median(d))
    };
    let first: Vec<f64> = launches
        .iter()
        .map(|l| l.first_frame.as_secs_f64() * 1000.0)
        .collect();
    let lamps: Vec<f64> = launches
        .iter()
        .map(|l| l.lamps.as_secs_f64() * 1000.0)
        .collect();
    let looks: Vec<f64> = launches
        .iter()
        .map(|l| l.look.as_secs_f64() * 1000.0)
        .collect();
    println!(
        "| {name} | {} | {} | {} | {:.0} ms |",
        launches.len(),
        ms(first),
        ms(lamps),
        median(looks)
    );
}

fn main() {
    let mut runs = 5;
    let mut screenshot: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--screenshot" => screenshot = args.next().map(PathBuf::from),
            "--bench" => {}
            n => runs = n.parse().unwrap_or(runs),
        }
    }
    let bed = Testbed::shared("ptlnch", 173, 3);
    let cluster = bed.cluster_file.display().to_string();
    let x: Vec<Launch> = (0..runs).map(|_| x11(&cluster)).collect();
    let mut last = None;
    let w: Vec<Launch> = (0..runs)
        .map(|_| {
            let (l, shot) = wayland(&cluster);
            last = Some(shot);
            l
        })
        .collect();
    println!("# openmosixview launch on {NODES} testbed nodes, median (min–max) of {runs}");
    println!("| screen | runs | first frame | every lamp lit | one screenshot |");
    println!("| --- | --- | --- | --- | --- |");
    row("X11 (Xvfb)", &x);
    row("Wayland (weston, headless)", &w);
    if let (Some(path), Some(shot)) = (screenshot, last) {
        shot.save(&path);
        println!("the window under Wayland: {}", path.display());
    }
}
