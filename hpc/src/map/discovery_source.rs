//! A cluster file's `[discovery]` section (docs/cluster-files.md): take nodes from
//! auto-discovery on an interface.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::cluster_file::{ClusterNode, Dest};
use crate::discovery::{
    DEFAULT_GROUP, DEFAULT_LISTEN, DEFAULT_PORT, DiscoveredNode, DiscoveryConfig,
};

/// A cluster file's `[discovery]` section: where to listen, and how to reach a node heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverySource {
    /// Interface, group and port.
    pub config: DiscoveryConfig,
    /// The SSH user for discovered nodes (`user@ADDRESS`); `None`: the ssh config's.
    pub user: Option<String>,
    /// How long a one-shot command (`openmosix nodes`) listens before it starts.
    pub listen: Duration,
}

impl DiscoverySource {
    /// Discovery on `interface` (or the default route's) with the default settings.
    pub fn on(interface: Option<&str>) -> DiscoverySource {
        DiscoverySource {
            config: DiscoveryConfig::on(interface),
            user: None,
            listen: DEFAULT_LISTEN,
        }
    }

    /// How to reach a node heard: SSH at the address it announced from.
    pub fn node(&self, found: &DiscoveredNode) -> ClusterNode {
        let address = found.address.to_string();
        let dest = match &self.user {
            Some(user) => format!("{user}@{address}"),
            None => address.clone(),
        };
        ClusterNode {
            id: found.id,
            dest: Dest::Ssh(dest),
            addresses: vec![address],
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiscovery {
    interface: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    listen: Option<Spanned<f64>>,
}

/// Reads a `[discovery]` section; an error is (offset in the file, message).
pub(super) fn discovery_section(raw: RawDiscovery) -> Result<DiscoverySource, (usize, String)> {
    let interface = match raw.interface {
        None => None,
        Some(v) => {
            let name = v.get_ref();
            // Linux interface names: 1 to 15 bytes, no '/', no white space.
            if name.is_empty()
                || name.len() > 15
                || name.contains('/')
                || name.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err((
                    v.span().start,
                    format!("discovery: {name:?} is not a network interface name"),
                ));
            }
            Some(v.into_inner())
        }
    };
    let user = match raw.user {
        None => None,
        Some(v) => {
            let user = v.get_ref();
            let ok = !user.is_empty()
                && !user.starts_with('-')
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !ok {
                return Err((
                    v.span().start,
                    format!("discovery: user {user:?} is not a user name"),
                ));
            }
            Some(v.into_inner())
        }
    };
    let group = match raw.group {
        None => DEFAULT_GROUP,
        Some(v) => match v.get_ref().parse::<Ipv4Addr>() {
            Ok(g) if g.is_multicast() => g,
            _ => {
                return Err((
                    v.span().start,
                    format!(
                        "discovery: group {:?} is not an IPv4 multicast address",
                        v.get_ref()
                    ),
                ));
            }
        },
    };
    let port = match raw.port {
        None => DEFAULT_PORT,
        Some(v) => u16::try_from(*v.get_ref())
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| {
                (
                    v.span().start,
                    format!("discovery: port {} is not 1 to 65535", v.get_ref()),
                )
            })?,
    };
    let listen = match raw.listen {
        None => DEFAULT_LISTEN,
        Some(v) => {
            let secs = *v.get_ref();
            if !(secs.is_finite() && (0.1..=600.0).contains(&secs)) {
                return Err((
                    v.span().start,
                    format!("discovery: listen {secs} is not 0.1 to 600 seconds"),
                ));
            }
            Duration::from_secs_f64(secs)
        }
    };
    Ok(DiscoverySource {
        config: DiscoveryConfig {
            interface,
            group,
            port,
        },
        user,
        listen,
    })
}
