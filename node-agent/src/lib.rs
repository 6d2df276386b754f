//! The openMosix node agent and its client.
//!
//! - [`model`]: the /proc/hpc vocabulary (nodes, admin switches, processes).
//! - [`protocol`]: the JSON-lines protocol between client and agent.
//! - [`map`]: openmosix.map files and cluster files.
//! - [`discovery`]: auto-discovery by UDP multicast (omdiscd, HOWTO chapter 5).
//! - [`backend`] and [`server`] (feature `server`): the node side.
//! - [`client`]: one connection per node over SSH or locally, and the cluster handle.
//! - [`balance`]: automatic load balancing, one balancer per cluster on the client side.

pub mod bytes;
pub mod clock;
pub mod discovery;
pub mod logging;
pub mod map;
pub mod model;
pub mod protocol;

#[cfg(feature = "server")]
pub mod backend;
pub mod balance;
pub mod client;
#[cfg(feature = "server")]
pub mod server;
