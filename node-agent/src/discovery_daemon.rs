//! The discovery daemon of a node (`openmosix-agent discover`, omdiscd's part): announces
//! this node every interval, listens for the others, and keeps the map it hears in the
//! state folder. When it stops it says goodbye, so the others drop it at once; a daemon
//! that is killed is dropped when its hold time passes. The map is written at most once
//! every [`MAP_WRITE_EVERY`]: changes in between are written together.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::UdpSocket;

use openmosix_hpc::discovery::listener::{Listener, send_socket};
use openmosix_hpc::discovery::node_set::{DiscoveredNode, default_hold};
use openmosix_hpc::discovery::packet::{Announcement, Kind};
use openmosix_hpc::discovery::state_file::{DaemonLock, DiscoveryFile};
use openmosix_hpc::discovery::{DiscoveryConfig, DiscoveryError, id_from_address};
use openmosix_hpc::model::NodeId;

/// The shortest time between two writes of the map (changes are coalesced).
pub const MAP_WRITE_EVERY: Duration = Duration::from_secs(1);

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Interface, group and port.
    pub discovery: DiscoveryConfig,
    /// This node's id; `None`: derived from the interface's address.
    pub id: Option<NodeId>,
    /// How often to announce.
    pub interval: Duration,
    /// Where to keep the map (the agent's state folder).
    pub state_dir: PathBuf,
}

/// A daemon that has joined the group and holds its state folder.
#[derive(Debug)]
pub struct Daemon {
    listener: Listener,
    sender: UdpSocket,
    interval: Duration,
    hold: Duration,
    file: DiscoveryFile,
    lock: DaemonLock,
}

impl Daemon {
    /// Finds the interface and the id, joins the group, takes the state folder's lock
    /// and writes the first map (this node alone). Must be called within a tokio runtime.
    pub fn start(config: &DaemonConfig) -> Result<Daemon, DiscoveryError> {
        let mut listener = Listener::bind(&config.discovery)?;
        let iface = listener.interface().clone();
        let id = match config.id {
            Some(id) => id,
            None => id_from_address(iface.address)
                .ok_or(DiscoveryError::NoIdFromAddress(iface.address))?,
        };
        let sender = send_socket(&iface)?;
        let lock = DaemonLock::acquire(&config.state_dir)?;
        listener.insert_self(id);
        let file = DiscoveryFile {
            pid: std::process::id(),
            interface: iface.name.clone(),
            address: iface.address,
            my_id: id,
            group: config.discovery.group,
            port: config.discovery.port,
            interval_ms: u64::try_from(config.interval.as_millis()).unwrap_or(u64::MAX),
            nodes: listener.nodes(),
        };
        file.write(&config.state_dir)?;
        Ok(Daemon {
            listener,
            sender,
            interval: config.interval,
            hold: default_hold(config.interval),
            file,
            lock,
        })
    }

    /// What the daemon has written last.
    pub fn file(&self) -> &DiscoveryFile {
        &self.file
    }

    async fn announce(&self, kind: Kind) -> std::io::Result<()> {
        let a = Announcement::new(kind, self.file.my_id, self.interval, self.hold);
        let to = (self.file.group, self.file.port);
        self.sender.send_to(&a.encode(), to).await.map(|_| ())
    }

    /// Announces and listens until `shutdown` completes, then says goodbye and removes
    /// its map.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), DiscoveryError> {
        tracing::info!(
            "openMosix #{} is at IP address {} ({}), announcing on {}:{} every {:?}",
            self.file.my_id,
            self.file.address,
            self.file.interface,
            self.file.group,
            self.file.port,
            self.interval
        );
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut send_failed = false;
        // When the map was last written (start wrote the first one), and whether the
        // list changed since.
        let mut written = tokio::time::Instant::now();
        let mut dirty = false;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = tick.tick() => match self.announce(Kind::Here).await {
                    Ok(()) => send_failed = false,
                    Err(e) if !send_failed => {
                        send_failed = true;
                        tracing::warn!("cannot announce on {}: {e}", self.file.interface);
                    }
                    Err(_) => {}
                },
                changed = self.listener.step() => dirty |= changed,
                () = write_due(dirty, written + MAP_WRITE_EVERY) => {
                    self.publish();
                    dirty = false;
                    written = tokio::time::Instant::now();
                }
                () = &mut shutdown => break,
            }
        }
        if let Err(e) = self.announce(Kind::Bye).await {
            tracing::debug!("goodbye not sent: {e}");
        }
        tracing::info!("discovery on {} stopped", self.file.interface);
        drop(self.lock);
        Ok(())
    }

    /// Logs who joined and left, and writes the new map.
    fn publish(&mut self) {
        let nodes = self.listener.nodes();
        for n in diff(&nodes, &self.file.nodes) {
            tracing::info!("openMosix #{} is at IP address {}", n.id, n.address);
        }
        for n in diff(&self.file.nodes, &nodes) {
            tracing::info!("openMosix #{} at {} is gone", n.id, n.address);
        }
        self.file.nodes = nodes;
        if let Err(e) = self.file.write(self.lock.state_dir()) {
            tracing::warn!("{e}");
        }
    }
}

/// Completes at `at` if the map has changes to write; never otherwise.
async fn write_due(dirty: bool, at: tokio::time::Instant) {
    if dirty {
        tokio::time::sleep_until(at).await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// The nodes of `a` that are not in `b`.
fn diff<'a>(a: &'a [DiscoveredNode], b: &[DiscoveredNode]) -> Vec<&'a DiscoveredNode> {
    a.iter().filter(|n| !b.contains(n)).collect()
}
