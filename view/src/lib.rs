//! openMosixview: the main window of the suite (HOWTO 10.4) — a row per node with its
//! lamp, configuration button, speed slider, load and memory bars — with the
//! configuration dialogs and advanced execution.
//!
//! [`App`] owns the state and draws from a [`openmosix_gui::ClusterSource`]: live agents
//! in the program, fixed data in benchmarks. Actions taken while drawing are handed to
//! the source and their outcomes come back on later frames, so the UI never waits.

pub mod add_node;
pub mod advanced;
pub mod app;
pub mod collector_control;
pub mod config_dialog;
pub mod first_run;
pub mod host_chooser;
mod menu;
pub mod remembered;
mod rows;
/// The cluster-wide figures (they live in the client, shared with `openmosix mon`).
pub use openmosix_client::summary;

pub use app::App;
pub use remembered::ViewState;
