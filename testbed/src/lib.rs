//! The test support of the whole workspace: every crate's integration tests and benches
//! use it, none copies a helper of its own.
//!
//! - [`testbed`]: the one-machine test cluster (`openmosix-testbed`, docs/testbed.md) —
//!   a shared [`Testbed`] per test binary, its CLI and SSH, node state.
//!
//! The `openmosix-testbed` binary (src/bin) builds and tears down the cluster itself.

pub mod testbed;

pub use testbed::{Testbed, serial, shell_quote};
