//! openMosixcollector (HOWTO 10.6): logs the figures, processes and events of every node
//! of the cluster to SQLite through [`openmosix_store`].
//!
//! - [`poll`]: the collecting loop over one [`openmosix_client::ClusterHandle`].
//! - [`daemon`]: pid file, daemonizing, signals, paths.
//! - [`metrics`]: the current figures in the Prometheus text format over HTTP.
//!
//! docs/collector.md describes the command line and the schema.

pub mod daemon;
pub mod metrics;
pub mod poll;
mod sys;
