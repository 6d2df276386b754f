//! Which changes of a [`crate::LiveCluster`] wake its window. By default every one does
//! (coalesced, [`crate::repaint`]); a window that draws only part of what changes can say
//! which, so that an idle cluster, whose nodes report every second with new figures the
//! window does not show, does not have it painted again and again (the migration monitor
//! at 250 nodes, docs/benchmarks.md). What does not wake the window still reaches it, at
//! its next frame.

use crate::source::Outcome;
use openmosix_client::NodeView;

/// Decides, on the source's runtime, whether a change is worth a frame.
pub trait Wake: Send + Sync + std::fmt::Debug {
    /// The nodes' snapshot changed (`nodes`, ordered by id): does the window draw it
    /// differently?
    fn nodes(&self, nodes: &[NodeView]) -> bool;
    /// An outcome arrived: does the window draw it differently?
    fn outcome(&self, outcome: &Outcome) -> bool;
}
