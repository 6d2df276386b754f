//! The client every program of the suite uses to talk to agents.
//!
//! - [`conn::AgentConn`]: one protocol channel (requests matched to responses by id,
//!   subscription pushes routed to their receivers) over any byte stream;
//! - [`transport`]: how that stream is made — an `openssh` session per node
//!   (ControlMaster multiplexing, the user's ssh config, host keys checked) with one
//!   long-lived `openmosix-agent serve` channel, or a locally spawned agent;
//! - [`hostkey`], [`install`] and [`provision`]: adding a node by its ssh destination
//!   (host key shown and accepted by choice, the agent copied over when missing);
//! - [`cluster::ClusterHandle`]: N nodes, each kept connected by its own task with
//!   reconnect and back-off, so one dead node never delays another;
//! - [`procwatch`]: a node's process list kept by one subscription (deltas from agents of
//!   protocol 2), which [`ClusterHandle::procs`] serves the windows from;
//! - [`actions`]: signal, renice, lock and unlock a process, answered in sentences;
//! - [`migrate`]: moving a process between two nodes through their channels;
//! - [`balance`]: automatic load balancing, one balancer per cluster.

pub mod actions;
pub mod balance;
pub mod cluster;
pub mod cluster_entry;
pub mod conn;
pub mod gateway;
pub mod hostkey;
pub mod install;
pub mod migrate;
pub mod procwatch;
pub mod provision;
pub mod summary;
pub mod transport;

use std::time::Duration;

use openmosix_hpc::model::NodeId;
use openmosix_hpc::protocol::AgentError;

pub use cluster::{ClusterHandle, DiscoveryStatus, LinkState, NodeView};
pub use conn::AgentConn;
pub use migrate::Unsettled;
pub use procwatch::{ProcWatch, ProcsModel};
pub use transport::{ClientOptions, connect_node};

/// What can go wrong talking to an agent.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The channel could not be opened.
    #[error("cannot reach node {node}: {reason}")]
    Connect {
        /// The node.
        node: NodeId,
        /// One line: ssh's or the agent's own words.
        reason: String,
    },
    /// The agent at the node's address answered with another node's id (a moved or
    /// re-numbered machine, a wrong cluster file, a spoofed discovery datagram): nothing
    /// is sent to it.
    #[error("wrong node at {address} (it says it is node {says})")]
    WrongNode {
        /// The node the client meant to reach.
        node: NodeId,
        /// Where it looked for it.
        address: String,
        /// The id the agent there gave in `hello`.
        says: NodeId,
    },
    /// No answer in time.
    #[error("no answer from the agent within {0:?}")]
    Timeout(Duration),
    /// The channel closed (node down, agent exited).
    #[error("the connection to the agent closed")]
    Closed,
    /// The agent answered with an error.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The agent sent something that is not the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The node is not in the cluster.
    #[error("node {0} is not in the cluster")]
    UnknownNode(NodeId),
    /// The node is down (with the last reason known).
    #[error("node {node} is down: {reason}")]
    NodeDown {
        /// The node.
        node: NodeId,
        /// Why, as last seen.
        reason: String,
    },
}
