//! Whether TCP connections get through on the testbed's bridge: from one node to
//! another, from the machine (root namespace) to a node. Both only ever talk to the
//! testbed's own addresses.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::testbed::Testbed;

/// How long a connection attempt may take before it counts as not getting through.
const CONNECT_WAIT: Duration = Duration::from_secs(3);

impl Testbed {
    /// Whether a process in node `from` opens a TCP connection to node `to`'s `port`
    /// within 3 s (bash's `/dev/tcp` inside node `from`, run by `openmosix-testbed exec`).
    pub fn node_reaches(&self, from: u32, to: u32, port: u16) -> bool {
        let secs = CONNECT_WAIT.as_secs().to_string();
        let addr = self.addr(to);
        let port = port.to_string();
        let connect = r#"exec 3<>"/dev/tcp/$0/$1""#;
        self.exec(
            from,
            &["timeout", &secs, "bash", "-c", connect, &addr, &port],
        )
        .status
        .success()
    }

    /// Whether the machine (this process, in the root namespace) opens a TCP connection
    /// to node `node`'s `port` within 3 s.
    pub fn reaches(&self, node: u32, port: u16) -> bool {
        let Ok(ip) = self.addr(node).parse::<IpAddr>() else {
            return false;
        };
        TcpStream::connect_timeout(&SocketAddr::new(ip, port), CONNECT_WAIT).is_ok()
    }
}
