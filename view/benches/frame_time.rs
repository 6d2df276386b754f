//! Frame time of the main window with 16, 64 and 256 nodes of snapshot data: the CPU time
//! egui needs to lay out and paint-list one frame (`Harness::step`, no GPU upload).
//!
//! `cargo bench -p openmosixview --bench frame_time`

use std::time::Instant;

use egui_kittest::Harness;
use openmosix_client::{LinkState, NodeView};
use openmosix_gui::StaticSource;
use openmosix_hpc::model::{NodeInfo, NodeStatus};
use openmosix_testbed::stats::percentile;
use openmosixview::App;

fn nodes(n: u32) -> Vec<NodeView> {
    (1..=n)
        .map(|id| NodeView {
            id,
            address: format!("10.1.{}.{}", id / 200, id % 200 + 10),
            state: if id % 17 == 0 {
                LinkState::Down
            } else {
                LinkState::Up
            },
            reason: None,
            hello: None,
            info: Some(NodeInfo {
                id,
                cpus: 1 + id % 8,
                speed: 500 + id * 37 % 5000,
                load: f64::from(id * 13 % 400),
                util: f64::from(id % 100),
                mem: 1 << 30,
                rmem: 1 << 29,
                tmem: 8 << 30,
                status: if id % 11 == 0 {
                    NodeStatus::Blocked
                } else {
                    NodeStatus::Up
                },
            }),
            updated: None,
        })
        .collect()
}

fn main() {
    println!("# main window frame time (egui layout, no GPU), window 1100x700");
    for n in [16, 64, 256] {
        let source = StaticSource {
            nodes: nodes(n),
            ..StaticSource::default()
        };
        let app = App::new(Box::new(source), "bench");
        let mut h = Harness::builder()
            .with_size(egui::vec2(1100.0, 700.0))
            .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
        for _ in 0..20 {
            h.step();
        }
        let mut times = Vec::with_capacity(500);
        for i in 0..500 {
            // Move the pointer so every frame does real hit-testing.
            h.hover_at(egui::pos2(
                100.0 + (i % 50) as f32 * 10.0,
                150.0 + (i % 30) as f32 * 15.0,
            ));
            let t = Instant::now();
            h.step();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{n:>4} nodes: median {:>8.3?}  p99 {:>8.3?}",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
}
