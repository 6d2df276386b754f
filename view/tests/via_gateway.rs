//! A node reached through a gateway (docs/fan-out.md): its address button says through
//! which one when the pointer rests on it.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_gui::StaticSource;
use openmosix_gui::source::{Action, ClusterSource, Outcome, Ticket};
use openmosix_hpc::model::NodeId;
use openmosix_testbed::fixtures::{node_info, node_view};
use openmosixview::App;

/// Made-up nodes of which node 2 is reached via node 1.
struct Behind(StaticSource);

impl ClusterSource for Behind {
    fn nodes(&self) -> Vec<openmosix_client::NodeView> {
        self.0.nodes()
    }
    fn act(&self, action: Action) -> Ticket {
        self.0.act(action)
    }
    fn outcomes(&self) -> Vec<(Ticket, Outcome)> {
        self.0.outcomes()
    }
    fn set_repaint(&self, ctx: &egui::Context) {
        self.0.set_repaint(ctx);
    }
    fn via(&self, node: NodeId) -> Option<NodeId> {
        (node == 2).then_some(1)
    }
}

#[test]
fn the_address_of_a_node_behind_a_gateway_names_it() {
    let nodes = (1..=2)
        .map(|i| openmosix_client::NodeView {
            info: Some(node_info(i)),
            ..node_view(i)
        })
        .collect();
    let source = Behind(StaticSource {
        nodes,
        ..StaticSource::default()
    });
    let address = node_view(2).address;
    let app = App::new(Box::new(source), "made up");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 400.0))
        .build_ui_state(|ui, app: &mut App| app.ui(ui), app);
    h.run_steps(3);
    assert!(h.query_by_label_contains("via gateway node").is_none());
    h.get_by_label(&address).hover();
    for _ in 0..60 {
        h.step();
        if h.query_by_label_contains("via gateway node 1").is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("no tooltip saying via gateway node 1 over {address}");
}
