//! The test support of the whole workspace: every crate's integration tests and benches
//! use it, none copies a helper of its own.
//!
//! - [`testbed`]: the one-machine test cluster (`openmosix-testbed`, docs/testbed.md) —
//!   a shared [`Testbed`] per test binary, its CLI and SSH, node state, jobs.
//! - [`wait`]: waiting with a deadline ([`wait::until`], [`wait::until_some`],
//!   [`wait::until_ok`]) that fails naming what it waited for.
//! - [`fixtures`]: made-up nodes, figures and processes for tests without a cluster.
//! - [`history`]: reading back a history file a test had written.
//! - [`process`]: child processes killed when a test ends, stopped with SIGTERM.
//! - [`stats`]: percentiles and medians for benches.
//! - `gui` (feature `gui`): the egui_kittest window harness — a live app over the
//!   testbed, waiting frame by frame, drags, double clicks, menus, text fields.
//!
//! The `openmosix-testbed` binary (src/bin) builds and tears down the cluster itself.

pub mod fixtures;
#[cfg(feature = "gui")]
pub mod gui;
pub mod history;
pub mod process;
pub mod stats;
pub mod testbed;
pub mod wait;

pub use testbed::{Testbed, describe, serial, shell_quote, stdout_ok};
