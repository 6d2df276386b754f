//! openmosixhistory at a scale factor of 2 (and 1), at its first-start size, over a
//! minute of a made-up four-node history: nothing named is clipped or covers something
//! else; and its theme setting.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use egui_kittest::Harness;
use openmosix_gui::desktop::HISTORY;
use openmosix_gui::remember::Remember;
use openmosix_hpc::model::NodeId;
use openmosix_store::store::{Store, Tick};
use openmosix_testbed::fixtures::{node_info, proc_in};
use openmosix_testbed::gui::bounds::assert_layout_fits;
use openmosix_testbed::gui::theme::assert_theme_setting;
use openmosixhistory::HistoryBrowser;

const T0: i64 = 1_795_000_100;

/// The program's app, as its main.rs has it.
struct App(HistoryBrowser);

impl Remember for App {
    type State = ();

    fn remembered(&self) {}

    fn ui(&mut self, ui: &mut egui::Ui) {
        egui::CentralPanel::default_margins().show(ui, |ui| self.0.ui(ui));
    }
}

/// A sample of nodes 1, 2 and 4 every second for a minute; a raytracer from node 1 on
/// node 2 after half a minute, a build on node 1, a daemon on node 4.
fn history(path: &Path) {
    let mut s = Store::open_file(path).unwrap();
    let nodes: Vec<(NodeId, String)> = [1, 2, 3, 4]
        .iter()
        .map(|&id| (id, format!("10.0.0.{id}")))
        .collect();
    s.set_nodes(&nodes).unwrap();
    let povray = "/usr/local/povray/bin/x-pvmpov +I scene.pov";
    for t in T0..=T0 + 60 {
        let moved = t >= T0 + 30;
        let (one, two) = if moved {
            (vec![], vec![proc_in(1809, 1, 'R', povray)])
        } else {
            (vec![proc_in(1809, 1, 'R', povray)], vec![])
        };
        let mut one = one;
        one.push(proc_in(200, 1, 'R', "make -j4 world"));
        s.write_tick(&Tick {
            time: t,
            samples: [1, 2, 4].iter().map(|&id| (id, node_info(id))).collect(),
            procs: vec![
                (1, one),
                (2, two),
                (4, vec![proc_in(80, 4, 'S', "/usr/sbin/cron -f")]),
            ],
            ..Tick::default()
        })
        .unwrap();
    }
}

fn opened(path: &Path) -> App {
    let mut b = HistoryBrowser::open(path).unwrap();
    assert!(b.wait_loaded(Duration::from_secs(20)), "not opened in 20 s");
    App(b)
}

fn size() -> egui::Vec2 {
    HISTORY.size.into()
}

#[test]
fn nothing_is_clipped_or_overlaps_at_scale_2_or_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    history(&path);
    for scale in [2.0, 1.0] {
        let mut h = Harness::builder()
            .with_size(size())
            .with_pixels_per_point(scale)
            .build_ui_state(|ui, app: &mut App| app.ui(ui), opened(&path));
        h.run_steps(5);
        // The menus, the file line, the time slider and its buttons, the processes.
        assert_layout_fits(&h, size(), 15);
    }
}

#[test]
fn the_theme_is_a_setting_and_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    history(&path);
    assert_theme_setting(HISTORY, size(), || opened(&path));
}
