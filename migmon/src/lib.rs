//! openMosixmigmon (HOWTO 10.8): the cluster's nodes as penguins sitting in a circle; the
//! watched node is the large penguin, its processes a circle of small squares around it.
//! A process that migrated sits, green, in a circle around the penguin it went to, with a
//! line back to its home. Drag a square onto a penguin and the process moves there (for
//! real, through the agents' migration core); double-click a green square and it goes home.
//! Without a mouse: Tab or the arrows focus a square, a node's number or PageDown picks the
//! target penguin, Enter sends the process there, H sends it home.
//!
//! [`MigMon`] draws from a [`openmosix_gui::ClusterSource`]: live agents in the program,
//! fixed data in tests. Its [`MigMon::poll`] asks for every node's process list once a
//! second, with the clock injected; outcomes come back through [`MigMon::on_outcome`].

mod canvas;
pub mod circles;
pub mod crowd;
mod keys;
pub mod layout;
pub mod monitor;
pub mod penguin;
mod quiet;
mod root;
mod settling;
mod sprite;

pub use monitor::MigMon;
pub use quiet::Unchanged;
