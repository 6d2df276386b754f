//! The window harness (feature `gui`): egui_kittest driving a real window, over a live
//! cluster source or made-up data. Generic over what the harness holds, so that each
//! test brings its own window (this crate depends on no window crate).
//!
//! The real programs, too: [`program`] starts one on an X server or a Wayland
//! compositor with folders of its own, [`x11`] points and types at its window with real
//! X events, [`wayland`] runs weston headless, [`shot`] reads their screenshots.
//!
//! Checks every window's test shares, over a [`made_up`] cluster: [`bounds`] (nothing clipped or overlapping, at any
//! scale), [`theme`] (the theme setting switches and is remembered).

pub mod bounds;
pub mod made_up;
pub mod program;
pub mod shot;
pub mod theme;
pub mod wayland;
pub mod x11;

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use openmosix_client::{ClientOptions, LinkState};
use openmosix_gui::{ClusterSource as _, LiveCluster};
use openmosix_hpc::map::Cluster;

use crate::wait;

/// How long the harness waits between two frames while it waits for something.
const FRAME_PAUSE: Duration = Duration::from_millis(30);

/// What a standalone window program holds: the live source of its cluster and the window.
#[derive(Debug)]
pub struct LiveApp<W> {
    /// Connections to every node of the cluster file.
    pub source: LiveCluster,
    /// The window under test.
    pub window: W,
}

impl<W> LiveApp<W> {
    /// The live source of the cluster in `cluster_file` (with the client options it
    /// names) and `window`.
    pub fn start(cluster_file: &Path, window: W) -> Self {
        let cluster = Cluster::from_file(cluster_file).expect("cluster file");
        let options = ClientOptions::for_cluster(&cluster);
        LiveApp {
            source: LiveCluster::start(cluster, &options).expect("live source"),
            window,
        }
    }

    /// Whether the source has `nodes` nodes, every one up.
    pub fn all_up(&self, nodes: usize) -> bool {
        let views = self.source.nodes();
        views.len() == nodes && views.iter().all(|n| n.state == LinkState::Up)
    }
}

/// Steps the UI until `cond` holds, failing after `secs` seconds with `what`.
pub fn wait<'a, S>(
    h: &mut Harness<'a, S>,
    secs: u64,
    what: &str,
    cond: impl FnMut(&Harness<'a, S>) -> bool,
) {
    wait_explained(h, secs, what, cond, |_| String::new());
}

/// [`wait()`] whose failure also says `explain` of the harness (e.g. the window's status
/// line, or the labels on screen).
pub fn wait_explained<'a, S>(
    h: &mut Harness<'a, S>,
    secs: u64,
    what: &str,
    mut cond: impl FnMut(&Harness<'a, S>) -> bool,
    explain: impl Fn(&Harness<'a, S>) -> String,
) {
    wait::poll(Duration::from_secs(secs), FRAME_PAUSE, what, || {
        h.step();
        if cond(h) { Ok(()) } else { Err(explain(h)) }
    });
}

/// Drags with the mouse from `from` to `to` in `moves` moves, two frames each, and drops
/// there (the frames after the drop are the caller's).
pub fn drag<S>(h: &mut Harness<'_, S>, from: egui::Pos2, to: egui::Pos2, moves: u32) {
    h.drag_at(from);
    h.run_steps(2);
    for i in 1..=moves {
        h.hover_at(from.lerp(to, i as f32 / moves as f32));
        h.run_steps(2);
    }
    h.drop_at(to);
}

/// Double-clicks the widget labelled `label` after 20 frames of pause (0.4 s at 0.02 s
/// a frame, so that it is no triple click with a click before), then lets 3 frames pass.
pub fn double_click<S>(h: &mut Harness<'_, S>, label: &str) {
    h.run_steps(20);
    h.get_by_label(label).click();
    h.step();
    h.get_by_label(label).click();
    h.run_steps(3);
}

/// Clicks `item` of the menu `menu`, opening the menu first (again, up to three times:
/// a click may first close what is open).
pub fn menu_item<S>(h: &mut Harness<'_, S>, menu: &str, item: &str) {
    for _ in 0..3 {
        if h.query_by_label(item).is_some() {
            break;
        }
        h.get_by_label(menu).click();
        h.run_steps(3);
    }
    h.get_by_label(item).click();
}

/// Focuses the text field labelled `field` and types `text` into it, two frames after each.
pub fn type_into<S>(h: &mut Harness<'_, S>, field: &str, text: &str) {
    let role = egui::accesskit::Role::TextInput;
    h.get_by_role_and_label(role, field).focus();
    h.run_steps(2);
    h.get_by_role_and_label(role, field).type_text(text);
    h.run_steps(2);
}

/// The text of the (one) widget whose label contains `part`: its value, or its label.
pub fn text_containing<S>(h: &Harness<'_, S>, part: &str) -> String {
    let node = h.get_by_label_contains(part);
    node.value()
        .or_else(|| node.accesskit_node().label())
        .unwrap_or_default()
}

/// Runs `before` frames, half a second of pause (time enough to read an unlocked file)
/// and two frames more, and fails unless all of it since `start` took less than 2 s: the
/// frames did not wait for a file another program holds locked.
pub fn assert_frames_do_not_wait<S>(h: &mut Harness<'_, S>, start: Instant, before: usize) {
    h.run_steps(before);
    std::thread::sleep(Duration::from_millis(500));
    h.run_steps(2);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the frames waited for the file: {:?}",
        start.elapsed()
    );
}
