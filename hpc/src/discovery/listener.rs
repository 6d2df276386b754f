//! Joining the discovery group on one interface and keeping the set of nodes heard.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::guard::{RateLimit, WarnLimit};
use super::iface::{self, Interface};
use super::node_set::{DiscoveredNode, Heard, NodeSet};
use super::packet::{Announcement, MAX_DATAGRAM};
use super::{DiscoveryConfig, DiscoveryError};

/// A socket that has joined the discovery group on one interface, and the nodes heard.
///
/// Only announcements from the interface's own subnet are taken, each source at most
/// [`super::guard::PER_SECOND`] a second on average; what is ignored is logged, bounded
/// by [`WarnLimit`].
#[derive(Debug)]
pub struct Listener {
    socket: UdpSocket,
    interface: Interface,
    set: NodeSet,
    rate: RateLimit,
    warned: WarnLimit,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DiscoveryError {
    let what = what.into();
    move |source| DiscoveryError::Io { what, source }
}

/// A UDP socket bound to the group's port that hears the group on `iface` only.
fn group_socket(
    iface: &Interface,
    group: Ipv4Addr,
    port: u16,
) -> Result<std::net::UdpSocket, DiscoveryError> {
    let what = format!("joining {group}:{port} on {}", iface.name);
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io(&what))?;
    // Several listeners on one machine (a daemon and `openmosix showmap -i`) share the port.
    s.set_reuse_address(true).map_err(io(&what))?;
    // Only the groups this socket joined, on the interface it joined them on.
    s.set_multicast_all_v4(false).map_err(io(&what))?;
    s.bind(&SockAddr::from(SocketAddrV4::new(group, port)))
        .map_err(io(&what))?;
    let on = match iface.index {
        Some(index) => InterfaceIndexOrAddress::Index(index),
        None => InterfaceIndexOrAddress::Address(iface.address),
    };
    s.join_multicast_v4_n(&group, &on).map_err(io(&what))?;
    s.set_nonblocking(true).map_err(io(&what))?;
    Ok(s.into())
}

/// A UDP socket that sends to the group from `iface`'s address, on the local link only.
pub fn send_socket(iface: &Interface) -> Result<UdpSocket, DiscoveryError> {
    let what = format!("preparing to announce on {}", iface.name);
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io(&what))?;
    s.bind(&SockAddr::from(SocketAddrV4::new(iface.address, 0)))
        .map_err(io(&what))?;
    s.set_multicast_if_v4(&iface.address).map_err(io(&what))?;
    // TTL 1: announcements never leave the link.
    s.set_multicast_ttl_v4(1).map_err(io(&what))?;
    s.set_multicast_loop_v4(true).map_err(io(&what))?;
    s.set_nonblocking(true).map_err(io(&what))?;
    UdpSocket::from_std(s.into()).map_err(io(what))
}

impl Listener {
    /// Joins the group on the configured interface (or the default route's). Must be
    /// called within a tokio runtime.
    pub fn bind(config: &DiscoveryConfig) -> Result<Listener, DiscoveryError> {
        let interface = iface::resolve(config.interface.as_deref())?;
        let std = group_socket(&interface, config.group, config.port)?;
        let socket = UdpSocket::from_std(std).map_err(io("registering the socket"))?;
        Ok(Listener {
            socket,
            interface,
            set: NodeSet::new(),
            rate: RateLimit::default(),
            warned: WarnLimit::default(),
        })
    }

    /// The interface it listens on.
    pub fn interface(&self) -> &Interface {
        &self.interface
    }

    /// The nodes heard so far.
    pub fn nodes(&self) -> Vec<DiscoveredNode> {
        self.set.nodes()
    }

    /// Puts this machine's own node in the set (a daemon does, a workstation does not).
    pub fn insert_self(&mut self, id: crate::model::NodeId) {
        self.set
            .insert_self(self.interface.address, id, Instant::now());
    }

    /// Waits for one datagram or one expiry; returns whether the node list changed.
    /// Cancel-safe: a `select!` may drop it at any point.
    pub async fn step(&mut self) -> bool {
        let mut buf = [0u8; MAX_DATAGRAM + 1];
        let expiry = self.set.next_expiry();
        let received = tokio::select! {
            r = self.socket.recv_from(&mut buf) => Some(r),
            () = sleep_until(expiry) => None,
        };
        let now = Instant::now();
        match received {
            None => self.set.expire(now),
            Some(Err(e)) => {
                tracing::warn!("discovery on {}: {e}", self.interface.name);
                // Do not spin on a persistent error.
                tokio::time::sleep(Duration::from_millis(200)).await;
                false
            }
            Some(Ok((len, from))) => {
                let expired = self.set.expire(now);
                let heard = self.take(&buf[..len], from, now);
                expired || heard
            }
        }
    }

    /// Reads one datagram; anything that is not an announcement from this subnet, within
    /// its sender's rate, is logged and ignored.
    fn take(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) -> bool {
        let source = match from {
            SocketAddr::V4(v4) => *v4.ip(),
            SocketAddr::V6(_) => return false,
        };
        if source.is_unspecified() || source.is_multicast() || source.is_broadcast() {
            self.warn(
                from.ip(),
                now,
                "a datagram with an impossible source address",
            );
            return false;
        }
        if !self.interface.on_subnet(source) {
            let why = format!(
                "ignored a datagram from outside {}'s subnet {}",
                self.interface.name,
                self.interface.subnet()
            );
            self.warn(from.ip(), now, &why);
            return false;
        }
        if !self.rate.allow(from.ip(), now) {
            self.warn(
                from.ip(),
                now,
                "ignored datagrams beyond the rate of a node",
            );
            return false;
        }
        match Announcement::decode(bytes) {
            Ok(a) => match self.set.heard(source, &a, now) {
                Heard::Changed => true,
                Heard::Unchanged => false,
                Heard::Refused(why) => {
                    self.warn(from.ip(), now, &why);
                    false
                }
            },
            Err(why) => {
                self.warn(from.ip(), now, &format!("ignored a datagram: {why}"));
                false
            }
        }
    }

    fn warn(&mut self, from: IpAddr, now: Instant, what: &str) {
        let w = self.warned.check(from, now);
        let name = &self.interface.name;
        if w.summary > 0 {
            tracing::warn!(
                "discovery on {name}: {} more datagrams were ignored in the last minute \
                 without a line each",
                w.summary
            );
        }
        if w.line {
            tracing::warn!("discovery on {name}: from {from}: {what}");
        }
    }

    /// Listens for `duration` and returns the nodes heard.
    pub async fn listen_for(mut self, duration: Duration) -> Vec<DiscoveredNode> {
        let deadline = tokio::time::Instant::now() + duration;
        while tokio::time::timeout_at(deadline, self.step()).await.is_ok() {}
        self.set.expire(Instant::now());
        self.set.nodes()
    }

    /// Listens for ever on a task; the receiver sees the node list each time it changes.
    /// Dropping every receiver ends the task.
    pub fn spawn(mut self) -> (watch::Receiver<Vec<DiscoveredNode>>, JoinHandle<()>) {
        let (tx, rx) = watch::channel(self.set.nodes());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = self.step() => {
                        if changed && tx.send(self.set.nodes()).is_err() {
                            return;
                        }
                    }
                    () = tx.closed() => return,
                }
            }
        });
        (rx, task)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
