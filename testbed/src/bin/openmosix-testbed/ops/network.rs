//! The testbed's network: its bridge (an address on each subnet it uses), per node a
//! network namespace joined to the bridge by a veth pair, and with `--isolated` the
//! bridge's port isolation; and removing all of it.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail};
use openmosix_testbed::addr;

use crate::layout::Layout;
use crate::pool;
use crate::sys;

/// Fails if another interface of the root namespace already has an address in one of
/// the subnets the testbed would use.
pub(super) fn check_subnets_free(l: &Layout, nodes: u32) -> Result<()> {
    let taken = sys::ipv4_addrs()?;
    for subnet in 0..addr::subnet_count(nodes) {
        let prefix = l.subnet_prefix(subnet);
        if let Some((link, a)) = taken.iter().find(|(_, a)| a.starts_with(&prefix)) {
            bail!("{prefix}0/24 is taken: {link} has {a} (another testbed? pick another --net)");
        }
    }
    Ok(())
}

/// The bridge, then every node's namespace and veth (several nodes at a time). With
/// `isolated`, the bridge forwards nothing from one node's port to another's: the nodes
/// cannot reach each other, the root namespace (the bridge itself) reaches them all.
pub(super) fn build(l: &Layout, nodes: u32, isolated: bool) -> Result<()> {
    let br = l.bridge();
    // Without multicast snooping the bridge floods multicast to every port, as a hub
    // would: discovery announcements reach every node without an IGMP querier.
    sys::ip(["link", "add", &br, "type", "bridge", "mcast_snooping", "0"])?;
    for subnet in 0..addr::subnet_count(nodes) {
        let a = format!("{}/24", l.bridge_addr(subnet));
        sys::ip(["addr", "add", &a, "dev", &br])?;
    }
    sys::ip(["link", "set", &br, "up"])?;
    pool::each_node(nodes, |i| {
        build_node(l, nodes, i, isolated).with_context(|| format!("node {i}"))
    })
}

fn build_node(l: &Layout, nodes: u32, i: u32, isolated: bool) -> Result<()> {
    let (ns, veth, br) = (l.netns(i), l.veth(i), l.bridge());
    sys::ip(["netns", "add", &ns])?;
    // The peer is born inside the namespace, already named eth0.
    sys::ip([
        "link", "add", &veth, "master", &br, "up", "type", "veth", "peer", "name", "eth0", "netns",
        &ns,
    ])?;
    if isolated {
        sys::ip([
            "link",
            "set",
            &veth,
            "type",
            "bridge_slave",
            "isolated",
            "on",
        ])?;
    }
    let own = addr::subnet_of(i);
    let mut lines = vec![
        format!("addr add {}/24 dev eth0", l.addr(i)),
        "link set lo up".to_owned(),
        "link set eth0 up".to_owned(),
    ];
    // The other subnets of the testbed are on the same bridge: reached directly.
    lines.extend(
        (0..addr::subnet_count(nodes))
            .filter(|&s| s != own)
            .map(|s| format!("route add {}0/24 dev eth0", l.subnet_prefix(s))),
    );
    sys::ip_batch(Some(&ns), &lines, false)
}

/// The node numbers of this testbed's namespaces (`NAME-nI`) among `namespaces`.
pub(super) fn node_numbers<'a>(
    l: &Layout,
    namespaces: impl IntoIterator<Item = &'a String>,
) -> BTreeSet<u32> {
    let prefix = format!("{}-n", l.name);
    namespaces
        .into_iter()
        .filter_map(|ns| ns.strip_prefix(&prefix)?.parse().ok())
        .collect()
}

/// Deletes the testbed's namespaces, veths and bridge (those that are there), in one
/// `ip -batch`.
pub(super) fn remove(l: &Layout, namespaces: &BTreeSet<String>) -> Result<()> {
    let mut lines: Vec<String> = node_numbers(l, namespaces)
        .into_iter()
        .map(|i| format!("netns delete {}", l.netns(i)))
        .collect();
    let links = sys::links()?;
    let veth = format!("{}-v", l.name);
    // Deleting one end deletes the pair; it may be gone already with its namespace.
    lines.extend(
        links
            .iter()
            .filter(|link| {
                link.strip_prefix(&veth)
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .map(|link| format!("link delete {link}")),
    );
    if links.contains(&l.bridge()) {
        lines.push(format!("link delete {}", l.bridge()));
    }
    if lines.is_empty() {
        return Ok(());
    }
    sys::ip_batch(None, &lines, true)?;
    // -force hides which line failed: check that what matters is gone.
    let left_ns = node_numbers(l, &sys::netns_list()?);
    let bridge_left = sys::links()?.contains(&l.bridge());
    if !left_ns.is_empty() || bridge_left {
        bail!(
            "could not remove the network of {}: namespaces of nodes {left_ns:?} left{}",
            l.name,
            if bridge_left { ", and the bridge" } else { "" }
        );
    }
    Ok(())
}
