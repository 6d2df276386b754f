//! Auto-discovery, as openMosix's omdiscd did it (HOWTO chapter 5): agents announce
//! themselves by UDP multicast on one interface, and whoever listens there learns where
//! the agents are, without a map file. See docs/discovery.md.
//!
//! - [`packet`]: the announcement datagram (an id, nothing that commands anything);
//! - [`node_set::NodeSet`]: the nodes heard, each dropped when not heard for its hold time;
//! - [`listener::Listener`]: joins the group on an interface and keeps a node set
//!   (the workstation's side: `openmosix showmap -i`, cluster files with `[discovery]`);
//! - [`state_file`]: the map a node's discovery daemon (`openmosix-agent discover`, in
//!   the node-agent crate) writes into its state folder for the node's other programs.
//!
//! Discovery only says where agents are. Commands still go over SSH with checked host
//! keys, to the address a node announced from.

pub mod guard;
pub mod iface;
pub mod listener;
pub mod node_set;
pub mod packet;
pub mod state_file;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::NodeId;

pub use iface::Interface;
pub use listener::Listener;
pub use node_set::{DiscoveredNode, Heard, NodeSet};
pub use state_file::DiscoveryFile;

/// The multicast group announcements go to (organisation-local scope, RFC 2365).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 77, 1);
/// The UDP port announcements go to.
pub const DEFAULT_PORT: u16 = 7770;
/// How often a daemon announces itself by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a workstation listens by default before it prints what it heard: a bit
/// more than two default intervals.
pub const DEFAULT_LISTEN: Duration = Duration::from_millis(2500);

/// Where to listen (and announce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// The interface; `None`: the one of the default route.
    pub interface: Option<String>,
    /// The multicast group.
    pub group: Ipv4Addr,
    /// The UDP port.
    pub port: u16,
}

impl DiscoveryConfig {
    /// The default group and port on `interface`.
    pub fn on(interface: Option<&str>) -> DiscoveryConfig {
        DiscoveryConfig {
            interface: interface.map(str::to_owned),
            group: DEFAULT_GROUP,
            port: DEFAULT_PORT,
        }
    }
}

/// Why discovery cannot run.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// No interface given and no default route to take one from (omdiscd's words).
    #[error(
        "Unable to determine address of default interface. This may happen because there \
         is no default route configured. Without a default route, an interface must be \
         given with -i IFACE"
    )]
    NoDefaultRoute,
    /// The interface does not exist.
    #[error("there is no network interface {name:?} (interfaces with an address: {known})")]
    NoSuchInterface {
        /// The name given.
        name: String,
        /// The interfaces there are.
        known: String,
    },
    /// The interface has no IPv4 address to announce from.
    #[error(
        "interface {name} has no IPv4 address: discovery announces the node's address \
         on it, so give it one (or pick another interface with -i)"
    )]
    NoAddress {
        /// The interface.
        name: String,
    },
    /// The address gives no usable node id.
    #[error(
        "the address {0} gives node id 0 (openMosix takes the id from the last two bytes \
         of the address): give the node an id with --id"
    )]
    NoIdFromAddress(Ipv4Addr),
    /// Another daemon runs with this state folder.
    #[error(
        "a discovery daemon already runs with the state folder {} (see its discovery.json)",
        state_dir.display()
    )]
    AlreadyRunning {
        /// The state folder.
        state_dir: PathBuf,
    },
    /// The map file is not what a daemon writes.
    #[error("{}: not a discovery map: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The node id openMosix derived from an IPv4 address: its last two bytes, so that
/// 192.168.10.220 is node 0x0adc (2780), as in the HOWTO's showmap. `None` for an
/// address ending in `.0.0`.
pub fn id_from_address(address: Ipv4Addr) -> Option<NodeId> {
    let [_, _, high, low] = address.octets();
    let id = NodeId::from(u16::from_be_bytes([high, low]));
    (id != 0).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_the_howto_shows() {
        let id = |a: &str| id_from_address(a.parse().unwrap());
        assert_eq!(id("192.168.10.220"), Some(0x0adc));
        assert_eq!(id("192.168.10.78"), Some(0x0a4e));
        assert_eq!(id("10.0.0.99"), Some(0x63));
        assert_eq!(id("10.1.0.0"), None);
    }

    #[test]
    fn no_default_route_reads_like_omdiscd() {
        let text = DiscoveryError::NoDefaultRoute.to_string();
        assert!(text.starts_with("Unable to determine address of default interface"));
        assert!(text.contains("-i IFACE"));
    }
}
