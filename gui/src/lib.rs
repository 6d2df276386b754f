//! What the openMosixview windows share: the cluster [`source`] they draw from (live agents
//! behind a background runtime, or fixed data in tests and benchmarks) and the small
//! [`widgets`] of the original look — lamps, bars and LCD numbers.

pub mod launch;
pub mod source;
pub mod widgets;

pub use source::{Action, ClusterSource, LiveCluster, Outcome, StaticSource, Ticket};
