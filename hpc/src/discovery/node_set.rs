//! The nodes a listener has heard, each kept until its hold time passes without news.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::packet::{Announcement, Kind};
use crate::model::{MapNode, NodeId};

/// The most nodes a set keeps (a flood of forged senders cannot grow it further).
pub const MAX_NODES: usize = 4096;

/// A node heard on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DiscoveredNode {
    /// Its openMosix id.
    pub id: NodeId,
    /// The address it announces from.
    pub address: Ipv4Addr,
}

impl DiscoveredNode {
    /// The node as a line of an openMosix map.
    pub fn to_map_node(self) -> MapNode {
        MapNode {
            id: self.id,
            addresses: vec![self.address.to_string()],
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    id: NodeId,
    first_heard: Instant,
    expires: Option<Instant>,
}

/// What an announcement did to a [`NodeSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// The node list changed (a node joined or said goodbye).
    Changed,
    /// Nothing changed (a node still there).
    Unchanged,
    /// Refused, with why (a sentence for the log).
    Refused(String),
}

/// Nodes by address. Two addresses claiming one id: the one heard first keeps it, the
/// other is refused until the first one goes; an address keeps its first id likewise.
#[derive(Debug, Clone, Default)]
pub struct NodeSet {
    entries: BTreeMap<Ipv4Addr, Entry>,
}

impl NodeSet {
    /// An empty set.
    pub fn new() -> NodeSet {
        NodeSet::default()
    }

    /// Puts this machine's own node in the set; it never expires.
    pub fn insert_self(&mut self, address: Ipv4Addr, id: NodeId, now: Instant) {
        self.entries.insert(
            address,
            Entry {
                id,
                first_heard: now,
                expires: None,
            },
        );
    }

    /// Takes in an announcement heard from `from`: whether the node list changed, or
    /// why it was refused.
    ///
    /// An address keeps the id it announced first until it expires or says goodbye with
    /// that id: a datagram from a known address with another id (a spoofed one, sent
    /// from a real node's address) changes nothing. An id held by another live address
    /// is not given to a second one until the first goes.
    pub fn heard(&mut self, from: Ipv4Addr, a: &Announcement, now: Instant) -> Heard {
        if let Some(entry) = self.entries.get_mut(&from) {
            if entry.expires.is_none() {
                // Our own announcement, looped back (or one claiming our address).
                return if entry.id == a.id {
                    Heard::Unchanged
                } else {
                    Heard::Refused(format!(
                        "claims node id {} from this node's own address",
                        a.id
                    ))
                };
            }
            if entry.id != a.id {
                return Heard::Refused(format!(
                    "claims node id {} but this address is node {} until it goes (not heard \
                     for its hold time, or a goodbye)",
                    a.id, entry.id
                ));
            }
            if a.kind == Kind::Bye {
                self.entries.remove(&from);
                return Heard::Changed;
            }
            entry.expires = Some(now + a.hold());
            return Heard::Unchanged;
        }
        if a.kind == Kind::Bye {
            return Heard::Unchanged;
        }
        if let Some((holder, _)) = self
            .entries
            .iter()
            .find(|(_, e)| e.id == a.id && e.expires.is_none_or(|x| x > now))
        {
            return Heard::Refused(format!(
                "claims node id {} held by {holder}; {holder} keeps it until it goes",
                a.id
            ));
        }
        if self.entries.len() >= MAX_NODES {
            return Heard::Refused(format!("ignored: already {MAX_NODES} nodes"));
        }
        self.entries.insert(
            from,
            Entry {
                id: a.id,
                first_heard: now,
                expires: Some(now + a.hold()),
            },
        );
        Heard::Changed
    }

    /// Drops the nodes whose hold has passed; returns whether any went.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| e.expires.is_none_or(|expires| expires > now));
        self.entries.len() != before
    }

    /// When the next node would expire.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.entries.values().filter_map(|e| e.expires).min()
    }

    /// The nodes, sorted by id; of two addresses with one id, the one heard first.
    pub fn nodes(&self) -> Vec<DiscoveredNode> {
        let mut by_id: BTreeMap<NodeId, (Instant, Ipv4Addr)> = BTreeMap::new();
        for (&address, e) in &self.entries {
            match by_id.get(&e.id) {
                Some(&(first, other)) if (first, other) <= (e.first_heard, address) => {
                    tracing::warn!(
                        "discovery: {address} and {other} both claim node id {}; {other} keeps it",
                        e.id
                    );
                }
                _ => {
                    by_id.insert(e.id, (e.first_heard, address));
                }
            }
        }
        by_id
            .into_iter()
            .map(|(id, (_, address))| DiscoveredNode { id, address })
            .collect()
    }

    /// The number of addresses heard (conflicting ones included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing has been heard.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// How long an announcement holds by default: four intervals, so that one or two lost
/// datagrams do not drop a node.
pub fn default_hold(interval: Duration) -> Duration {
    interval * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here(id: NodeId, hold_ms: u64) -> Announcement {
        Announcement::new(
            Kind::Here,
            id,
            Duration::from_secs(1),
            Duration::from_millis(hold_ms),
        )
    }

    #[test]
    fn join_refresh_expire_and_bye() {
        let t0 = Instant::now();
        let a: Ipv4Addr = "10.0.0.1".parse().unwrap();
        let b: Ipv4Addr = "10.0.0.2".parse().unwrap();
        let mut set = NodeSet::new();
        set.insert_self(a, 1, t0);
        assert_eq!(set.heard(b, &here(2, 3000), t0), Heard::Changed);
        assert_eq!(
            set.heard(b, &here(2, 3000), t0 + Duration::from_secs(2)),
            Heard::Unchanged
        );
        assert!(!set.expire(t0 + Duration::from_secs(4)), "refreshed at 2 s");
        assert_eq!(set.next_expiry(), Some(t0 + Duration::from_secs(5)));
        assert!(set.expire(t0 + Duration::from_secs(5)));
        assert_eq!(
            set.nodes(),
            vec![DiscoveredNode { id: 1, address: a }],
            "self never expires"
        );
        assert_eq!(set.heard(b, &here(2, 3000), t0), Heard::Changed);
        let bye = |id| Announcement::new(Kind::Bye, id, Duration::from_secs(1), Duration::ZERO);
        assert!(
            matches!(set.heard(b, &bye(9), t0), Heard::Refused(_)),
            "a goodbye with another id is not b's"
        );
        assert_eq!(set.heard(b, &bye(2), t0), Heard::Changed);
        assert_eq!(set.len(), 1);
        assert!(
            matches!(set.heard(a, &bye(2), t0), Heard::Refused(_)),
            "a bye for ourselves is ignored"
        );
        assert_eq!(set.heard(a, &bye(1), t0), Heard::Unchanged);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn id_conflict_first_heard_wins() {
        let t0 = Instant::now();
        let a: Ipv4Addr = "10.0.0.5".parse().unwrap();
        let b: Ipv4Addr = "10.0.0.4".parse().unwrap();
        let mut set = NodeSet::new();
        set.heard(a, &here(7, 3000), t0);
        let refused = set.heard(b, &here(7, 9000), t0 + Duration::from_millis(1));
        assert!(matches!(&refused, Heard::Refused(why) if why.contains("held by 10.0.0.5")));
        assert_eq!(set.nodes(), vec![DiscoveredNode { id: 7, address: a }]);
        set.expire(t0 + Duration::from_secs(4));
        assert_eq!(set.nodes(), vec![]);
        set.heard(b, &here(7, 9000), t0 + Duration::from_secs(4));
        assert_eq!(set.nodes(), vec![DiscoveredNode { id: 7, address: b }]);
    }

    #[test]
    fn a_live_address_keeps_its_id() {
        let t0 = Instant::now();
        let a: Ipv4Addr = "10.0.0.5".parse().unwrap();
        let mut set = NodeSet::new();
        set.heard(a, &here(7, 3000), t0);
        // A spoofed datagram from a's address claiming id 8, again and again.
        for i in 0..10 {
            let t = t0 + Duration::from_millis(100 * i);
            assert!(matches!(set.heard(a, &here(8, 3000), t), Heard::Refused(_)));
        }
        assert_eq!(set.nodes(), vec![DiscoveredNode { id: 7, address: a }]);
        // The spoofed datagrams do not keep a's entry alive; a's own do.
        assert!(set.expire(t0 + Duration::from_secs(3)));
        assert_eq!(
            set.heard(a, &here(8, 3000), t0 + Duration::from_secs(3)),
            Heard::Changed,
            "after it went, the address may come back with another id"
        );
    }
}
