//! The openMosix node agent: what runs on a node.
//!
//! - [`backend`]: the kernel and linux backends (the /proc readers, the agent's state,
//!   the node side of CRIU migration).
//! - [`server`]: `openmosix-agent serve`, the JSON-lines protocol over stdin/stdout.
//! - [`discovery_daemon`]: `openmosix-agent discover`, omdiscd (HOWTO chapter 5).
//!
//! The words it speaks are in [`openmosix_hpc`]; the client that talks to it is
//! `openmosix-client`.

pub mod backend;
pub mod discovery_daemon;
pub mod server;
