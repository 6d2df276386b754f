//! What the openMosixview windows share: the cluster [`source`] they draw from (live agents
//! behind a background runtime, or fixed data in tests and benchmarks), the small
//! [`widgets`] of the original look (lamps, bars, LCD numbers, result lines), the window
//! that asks for a file ([`path_dialog`]), how a window program starts ([`launch`]) and
//! how it presents itself to the desktop ([`desktop`]: app ids and the icon).

pub mod desktop;
pub mod launch;
pub mod path_dialog;
pub mod source;
pub mod widgets;

pub use source::{Action, ClusterSource, LiveCluster, Outcome, StaticSource, Ticket};
