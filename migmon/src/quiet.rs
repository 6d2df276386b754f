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
