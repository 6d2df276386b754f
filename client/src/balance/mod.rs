//! Automatic load balancing (docs/balancing.md): one balancer per cluster, on the client
//! side, reads every node's figures, switches and processes through the
//! [`ClusterHandle`](crate::ClusterHandle) and moves candidates from overloaded
//! nodes to less loaded ones with the migration core.
//!
//! - [`rule`]: the decision, pure — node pressure, the gain of a move, the plan;
//! - [`stats`]: per-process decayed statistics, where each process is, hold-offs;
//! - [`run`]: the loop that reads the nodes, applies the rule and moves processes.
//!
//! Why on the client side: on the linux backend a process's image streams through the
//! client that holds channels to both nodes, and a single decision maker cannot
//! ping-pong a process with another one deciding on stale figures of its own.

pub mod rule;
pub mod run;
pub mod stats;

pub use rule::{Move, NodeLoad, ProcLoad, efficiency, plan};
pub use run::{BalanceConfig, Balancer, NodeReport, Report, Summary};
