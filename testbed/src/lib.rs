//! The test support of the whole workspace: every crate's integration tests, benches and
//! examples use it, none copies a helper of its own (docs/testbed.md, "In tests").
//!
//! - [`testbed`]: the one-machine test cluster (`openmosix-testbed`) — a shared
//!   [`Testbed`] per test binary, its CLI and SSH, node state, jobs, host-key scenarios;
//!   TCP reachability between nodes and from the machine (`reach`).
//! - [`options`]: asking for a testbed ([`Options`]: size, `--isolated`, more `up`
//!   options), shared or of a test's own ([`OwnTestbed`], taken down when dropped).
//! - [`addr`]: the nodes' addresses (10.77.K.(10+I), beyond 244 nodes 10.78.K.0/24).
//! - [`wait`]: waiting with a deadline ([`wait::until`], [`wait::until_some`],
//!   [`wait::until_ok`]) that fails naming what it waited for.
//! - [`fixtures`]: made-up nodes, figures and processes for tests without a cluster.
//! - [`process`]: child processes killed when a test ends, stopped with SIGTERM; Xvfb.
//! - [`history`]: reading back a history file a test had written; holding one locked.
//! - [`stats`]: percentiles and medians for benches.
//! - [`tmux`]: a real terminal for terminal programs: keys typed, the screen read.
//! - `gui` (feature `gui`): the egui_kittest window harness — a live app over the
//!   testbed, waiting frame by frame, drags, double clicks, menus, text fields. Generic
//!   over the window, so that this crate depends on no window crate.
//!
//! The `openmosix-testbed` binary (src/bin) builds and tears down the cluster itself.

pub mod addr;
pub mod copies;
pub mod fixtures;
#[cfg(feature = "gui")]
pub mod gui;
pub mod history;
pub mod modes;
pub mod options;
pub mod process;
mod reach;
pub mod session;
pub mod stats;
pub mod testbed;
pub mod tmux;
pub mod wait;

pub use options::{Options, OwnTestbed};
pub use testbed::{
    FullFolder, KillAllAtEnd, Testbed, describe, output_text, serial, shell_quote, stdout_ok,
};
