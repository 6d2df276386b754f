//! What wakes the monitor (the program's [`openmosix_gui::Wake`]): an idle cluster's nodes
//! report new figures every second and their process lists come in every second with new
//! CPU times, none of which changes a penguin or a square; woken only when one does, the
//! monitor is painted once a second (its poll) instead of twice, which at 250 nodes is
//! most of what it costs (docs/benchmarks.md). Moves and their progress always wake it.

use std::collections::HashMap;
use std::sync::Mutex;

use openmosix_client::{LinkState, NodeView};
use openmosix_gui::{Outcome, Wake};
use openmosix_hpc::model::NodeId;

use crate::circles::{Square, squares_of};

/// The last nodes and lists seen, as the monitor draws them.
#[derive(Debug, Default)]
pub struct Unchanged {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    nodes: Vec<(NodeId, LinkState, String)>,
    lists: HashMap<NodeId, Result<Vec<Square>, String>>,
}

impl Unchanged {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Wake for Unchanged {
    fn nodes(&self, nodes: &[NodeView]) -> bool {
        let drawn: Vec<_> = nodes
            .iter()
            .map(|n| (n.id, n.state, n.address.clone()))
            .collect();
        let mut seen = self.seen();
        let new = seen.nodes != drawn;
        seen.nodes = drawn;
        new
    }

    fn outcome(&self, outcome: &Outcome) -> bool {
        let Outcome::Procs { node, result } = outcome else {
            return true;
        };
        let drawn = result
            .as_ref()
            .map(|list| squares_of(list, *node))
            .map_err(Clone::clone);
        self.seen().lists.insert(*node, drawn.clone()) != Some(drawn)
    }
}

#[cfg(test)]
mod tests {
    use openmosix_client::migrate::Progress;
    use openmosix_testbed::fixtures::{node_view, proc_info};

    use super::*;

    #[test]
    fn new_figures_do_not_wake_the_monitor_and_new_squares_do() {
        let wake = Unchanged::default();
        let mut nodes = vec![node_view(1), node_view(2)];
        assert!(wake.nodes(&nodes), "the first snapshot is new");
        nodes[1].updated = Some(std::time::Instant::now());
        assert!(!wake.nodes(&nodes), "a new report is not drawn");
        nodes[1].state = LinkState::Down;
        assert!(wake.nodes(&nodes), "a node down is");

        let list = |utime| {
            let mut p = proc_info(300, 2, "sleep 100");
            p.utime = utime;
            Outcome::Procs {
                node: 2,
                result: Ok(vec![p]),
            }
        };
        assert!(wake.outcome(&list(1)), "the first list is new");
        assert!(!wake.outcome(&list(5)), "CPU time is not drawn");
        let more = Outcome::Procs {
            node: 2,
            result: Ok(vec![
                proc_info(300, 2, "sleep 100"),
                proc_info(301, 2, "sleep 200"),
            ]),
        };
        assert!(wake.outcome(&more), "a new process is a new square");
        let failed = Outcome::Procs {
            node: 2,
            result: Err("gone".to_owned()),
        };
        assert!(wake.outcome(&failed) && !wake.outcome(&failed));
        let progress = Outcome::Progress {
            progress: Progress::Freeze,
        };
        assert!(wake.outcome(&progress), "a move always wakes it");
    }
}
