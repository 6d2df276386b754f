//! What the openMosixview windows share: the cluster [`source`] they draw from (live agents
//! behind a background runtime, or fixed data in tests and benchmarks), the small
//! [`widgets`] of the original look (lamps, bars, LCD numbers, result lines), the window
//! that asks for a file ([`path_dialog`]), how a window program starts ([`launch`]), how it
//! presents itself to the desktop ([`desktop`]: app ids and the icon), how a source's
//! changes wake a window a few times a second at most ([`repaint`]), and what a window
//! remembers between runs ([`state`], [`remember`]) with its [`theme`] setting;
//! [`framelog`] records its frames for measurements.

pub mod desktop;
pub mod framelog;
pub mod launch;
pub mod path_dialog;
pub mod remember;
pub mod repaint;
pub mod source;
pub mod state;
pub mod theme;
pub mod wake;
pub mod widgets;

pub use source::{Action, ClusterSource, LiveCluster, Outcome, StaticSource, Ticket};
pub use wake::Wake;
