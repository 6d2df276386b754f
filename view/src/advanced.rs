//! STUB written by the lead so the crate compiles: overwrite freely.
use openmosix_agent::client::NodeView;
use openmosix_gui::{ClusterSource, Outcome, Ticket};
/// Stub.
#[derive(Debug, Default)]
pub struct AdvancedExecution { open: bool }
impl AdvancedExecution {
    /// Stub.
    pub fn new() -> Self { Self::default() }
    /// Stub.
    pub fn open(&mut self) { self.open = true; }
    /// Stub.
    pub fn show(&mut self, _ctx: &egui::Context, _s: &dyn ClusterSource, _n: &[NodeView]) {}
    /// Stub.
    pub fn on_outcome(&mut self, _t: Ticket, _o: &Outcome) -> bool { false }
}
