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
            via: None,
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
    let interface = checked(
        raw.interface,
        None,
        |name| is_interface_name(name).then(|| Some(name.clone())),
        |name| format!("discovery: {name:?} is not a network interface name"),
    )?;
    let user = checked(
        raw.user,
        None,
        |user| is_user_name(user).then(|| Some(user.clone())),
        |user| format!("discovery: user {user:?} is not a user name"),
    )?;
    let group = checked(
        raw.group,
        DEFAULT_GROUP,
        |g| g.parse::<Ipv4Addr>().ok().filter(Ipv4Addr::is_multicast),
        |g| format!("discovery: group {g:?} is not an IPv4 multicast address"),
    )?;
    let port = checked(
        raw.port,
        DEFAULT_PORT,
        |&p| u16::try_from(p).ok().filter(|&p| p != 0),
        |p| format!("discovery: port {p} is not 1 to 65535"),
    )?;
    let listen = checked(
        raw.listen,
        DEFAULT_LISTEN,
        |&secs| {
            (secs.is_finite() && (0.1..=600.0).contains(&secs))
                .then(|| Duration::from_secs_f64(secs))
        },
        |secs| format!("discovery: listen {secs} is not 0.1 to 600 seconds"),
    )?;
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

/// One key of the section: `default` when it is absent, else what `read` makes of its
/// value; a value `read` refuses is an error at its offset, in the words of `why`.
fn checked<T, U>(
    value: Option<Spanned<T>>,
    default: U,
    read: impl FnOnce(&T) -> Option<U>,
    why: impl FnOnce(&T) -> String,
) -> Result<U, (usize, String)> {
    let Some(value) = value else {
        return Ok(default);
    };
    read(value.get_ref()).ok_or_else(|| (value.span().start, why(value.get_ref())))
}

/// A Linux interface name: 1 to 15 bytes, no '/', no white space.
fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && !name.contains('/')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A user name for `user@ADDRESS`: letters, digits, `.`, `_` and `-` (`-` not first).
fn is_user_name(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('-')
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}
