//! Opening 12 h × 64 nodes at 1 Hz (2.76 M samples) in the analyzer, and the frame time
//! while panning it: the CPU time of one `Harness::step` (egui layout and paint list, no
//! GPU upload), with the history asked again after each pan (debounced).
//!
//! `cargo bench -p openmosixanalyzer --bench frame_time`

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use openmosix_testbed::stats::{ms, percentile};
use openmosixanalyzer::Analyzer;
use openmosixanalyzer::synth::{self, Synth};

const NODES: u32 = 64;
const SECONDS: i64 = 12 * 3600;
const T0: i64 = 1_700_000_000;

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort_unstable();
    println!(
        "{what}: n={} median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap())
    );
}

/// The frame times of pans: frames while dragging, and the frames that asked the history
/// again after the pause that follows a drag.
#[derive(Default)]
struct Pan {
    frames: Vec<Duration>,
    requery: Vec<Duration>,
}

impl Pan {
    /// Prints the frame times of the pans of the `span` view.
    fn report(self, span: &str) {
        report(&format!("frame while panning, {span} view"), self.frames);
        if !self.requery.is_empty() {
            report(
                &format!("frame that asks the history again ({span}, 64 nodes)"),
                self.requery,
            );
        }
    }

    /// One drag across the plot (at height 380) from `x0`, `dx` pixels a frame for
    /// `moves` frames, then the pause and the frame after it.
    fn drag(&mut self, h: &mut Harness<'_, Analyzer>, x0: f32, dx: f32, moves: u32) {
        let y = 380.0;
        h.drag_at(egui::pos2(x0, y));
        h.step();
        for i in 1..=moves {
            h.hover_at(egui::pos2(x0 + dx * i as f32, y));
            let t = Instant::now();
            h.step();
            self.frames.push(t.elapsed());
        }
        h.drop_at(egui::pos2(x0 + dx * moves as f32, y));
        h.step();
        std::thread::sleep(openmosixanalyzer::DEBOUNCE);
        let q = h.state().queries();
        let t = Instant::now();
        h.step();
        let d = t.elapsed();
        if h.state().queries() > q {
            self.requery.push(d);
        }
        h.step();
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let start = Instant::now();
    synth::write(
        &path,
        &Synth {
            nodes: NODES,
            t0: T0,
            seconds: SECONDS,
            down: Some((3, 3600, 4800)),
            checkpoints: vec![(4 * 3600, "a".into()), (8 * 3600, "b".into())],
            events: (0..40)
                .map(|i| {
                    (
                        i * 1000,
                        1 + (i as u32) % NODES,
                        "run".into(),
                        format!("event {i}"),
                    )
                })
                .collect(),
        },
    )
    .unwrap();
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "# openmosixanalyzer: {NODES} nodes × 12 h at 1 Hz ({} samples, {:.0} MiB), written in {:.1} s",
        i64::from(NODES) * SECONDS,
        size as f64 / f64::from(1 << 20),
        start.elapsed().as_secs_f64()
    );

    // Open: History::open, then frames until the first query is drawn.
    let start = Instant::now();
    let analyzer = Analyzer::open(&path).unwrap();
    let opened = start.elapsed();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 700.0))
        .build_ui_state(|ui, a: &mut Analyzer| a.ui(ui), analyzer);
    h.step();
    while h.state().queries() == 0 {
        h.step();
    }
    h.step();
    let first = start.elapsed();
    let points: usize = h.state().visible_series().iter().map(|s| s.1).sum();
    println!(
        "open: Analyzer::open (the UI thread's part: a stat) {:.1} ms; to the first full \
         12 h frame (the history thread opens and reads the file) {:.0} ms \
         ({} lines, {points} points, plot {:.0} px wide)",
        ms(opened),
        ms(first),
        h.state().visible_series().len(),
        h.state().plot_width()
    );

    // Still frames (12 h view).
    let mut still = Vec::new();
    for _ in 0..60 {
        let t = Instant::now();
        h.step();
        still.push(t.elapsed());
    }
    report("still frame, 12 h view", still);

    // Panning: 10 drags of 30 frames (4 px a frame), each followed by a pause and the
    // re-query frame.
    let mut pan = Pan::default();
    for round in 0..10 {
        let dir = if round % 2 == 0 { 1.0 } else { -1.0 };
        pan.drag(&mut h, 650.0, dir * 4.0, 30);
    }
    pan.report("12 h");

    // Zoomed to 1 h: the same, with finer buckets.
    let (_, to) = h.state().shown_range();
    h.state_mut().set_view(to - 3600, to);
    h.step();
    h.step();
    // Drags of 400 px (25 min) towards the past, each leaving the range in hand: the
    // frame after the pause asks the history again.
    let mut pan = Pan::default();
    for _ in 0..8 {
        pan.drag(&mut h, 450.0, 4.0, 100);
    }
    pan.report("1 h");
    println!("queries made: {}", h.state().queries());
}
