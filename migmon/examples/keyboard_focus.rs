//! The monitor over made-up process lists, no cluster needed: for trying the keys out
//! (Tab, a node's number, Enter; docs/procs-and-migmon.md "Without a mouse") and for the
//! screenshot of the focus ring:
//! `cargo run -p openmosixmigmon --example keyboard_focus`, then Tab, Tab, 3.
//! Migrations asked for here go nowhere: the source only records them.

use openmosix_gui::widgets::SAID_OK;
use openmosix_gui::{Outcome, StaticSource};
use openmosix_hpc::model::ProcInfo;
use openmosix_testbed::fixtures::{node_view, proc_info};
use openmosixmigmon::MigMon;

struct Demo {
    source: StaticSource,
    monitor: MigMon,
}

impl eframe::App for Demo {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default_margins().show(ui, |ui| {
            let asked = self.source.actions.lock().map_or(0, |a| a.len());
            if asked > 0 {
                ui.colored_label(SAID_OK, format!("{asked} migration(s) asked for"));
            }
            self.monitor.ui(ui, &self.source);
        });
    }
}

fn job(pid: i32, at: u32, home: u32, cmd: &str) -> ProcInfo {
    ProcInfo {
        home,
        nmigs: u32::from(at != home),
        ..proc_info(pid, at, cmd)
    }
}

fn main() -> eframe::Result {
    let source = StaticSource {
        nodes: (1..=4).map(node_view).collect(),
        ..StaticSource::default()
    };
    let mut monitor = MigMon::new(1);
    let mut locked = job(3015, 1, 1, "postgres: checkpointer");
    locked.cantmove = "it holds a file lock".into();
    let lists = [
        (
            1,
            vec![
                job(3012, 1, 1, "povray -i scene.pov"),
                job(3013, 1, 1, "make -j4"),
                job(3014, 1, 1, "python3 train.py"),
                locked,
                job(3016, 1, 1, "sleep 600"),
            ],
        ),
        (3, vec![job(911, 3, 1, "gzip -9 big.tar")]),
    ];
    for (node, list) in lists {
        monitor.on_outcome(
            0,
            &Outcome::Procs {
                node,
                result: Ok(list),
            },
        );
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("openMosixmigmon (keyboard)")
            .with_inner_size([900.0, 640.0]),
        ..Default::default()
    };
    eframe::run_native(
        "openmosixmigmon-keyboard",
        options,
        Box::new(|_cc| Ok(Box::new(Demo { source, monitor }))),
    )
}
