//! `via = ID` in a cluster file: nodes reached through a gateway node's relay
//! (docs/fan-out.md).

use toml::Spanned;

use super::MapError;
use super::cluster_file::{ClusterNode, Dest, Via};
use crate::model::NodeId;

/// Sets each node's [`Via`] from the `via` keys read (node id, the key's value): the
/// gateway must be another node of the file, reached over SSH and not itself through a
/// gateway (one level), and the node's own `dest` must be SSH (the gateway runs no local
/// agent for it). `gateway_ssh_config` is a path on the gateways, passed as it is.
pub(super) fn resolve(
    fail_at: impl Fn(usize, String) -> MapError,
    nodes: &mut [ClusterNode],
    vias: Vec<(i64, Spanned<i64>)>,
    gateway_ssh_config: Option<&str>,
) -> Result<(), MapError> {
    if let Some(cfg) = gateway_ssh_config
        && (cfg.starts_with('-') || cfg.chars().any(char::is_control))
    {
        return Err(fail_at(
            0,
            format!("gateway_ssh_config {cfg:?} is not a path"),
        ));
    }
    let via_ids: Vec<i64> = vias.iter().map(|(id, _)| *id).collect();
    for (id, via) in vias {
        let at = via.span().start;
        let gw = *via.get_ref();
        let gateway = nodes
            .iter()
            .find(|n| i64::from(n.id) == gw)
            .ok_or_else(|| {
                fail_at(
                    at,
                    format!("node {id}: via = {gw} names no node of this file"),
                )
            })?;
        if gw == id {
            return Err(fail_at(at, format!("node {id}: via names the node itself")));
        }
        if via_ids.contains(&gw) {
            return Err(fail_at(
                at,
                format!(
                    "node {id}: its gateway {gw} is itself reached through a gateway (one level only)"
                ),
            ));
        }
        let Dest::Ssh(gw_dest) = &gateway.dest else {
            return Err(fail_at(
                at,
                format!("node {id}: gateway {gw} is `local`; a gateway is reached over SSH"),
            ));
        };
        let via = Via {
            id: gateway.id,
            dest: gw_dest.clone(),
            ssh_config: gateway_ssh_config.map(str::to_owned),
        };
        let Some(node) = nodes.iter_mut().find(|n| i64::from(n.id) == id) else {
            continue;
        };
        if node.dest == Dest::Local {
            return Err(fail_at(
                at,
                format!("node {id}: a node reached via a gateway needs an ssh dest, not `local`"),
            ));
        }
        node.via = Some(via);
    }
    Ok(())
}

/// The gateway of `node`, if it has one (for display: "via gw 3").
pub fn gateway_of(node: &ClusterNode) -> Option<NodeId> {
    node.via.as_ref().map(|v| v.id)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Cluster;

    fn read(body: &str) -> Result<Cluster, String> {
        Cluster::from_text(Path::new("c.toml"), body).map_err(|e| e.to_string())
    }

    const GW: &str = "[[node]]\nid = 1\ndest = \"root@gw1\"\n";

    #[test]
    fn a_node_via_a_gateway_gets_its_dest_and_ssh_config() {
        let c = read(&format!(
            "gateway_ssh_config = \"/etc/om/group\"\n{GW}[[node]]\nid = 5\ndest = \"n5\"\nvia = 1\n"
        ))
        .expect("valid");
        let via = c.node(5).and_then(|n| n.via.clone()).expect("via");
        assert_eq!(
            (via.id, via.dest.as_str(), via.ssh_config.as_deref()),
            (1, "root@gw1", Some("/etc/om/group"))
        );
        assert!(c.node(1).is_some_and(|n| n.via.is_none()));
        assert_eq!(c.node(5).and_then(super::gateway_of), Some(1));
    }

    #[test]
    fn bad_vias_are_refused_naming_the_line() {
        for (body, want) in [
            (
                format!("{GW}[[node]]\nid = 5\ndest = \"n5\"\nvia = 9\n"),
                "names no node",
            ),
            (
                format!("{GW}[[node]]\nid = 5\ndest = \"n5\"\nvia = 5\n"),
                "the node itself",
            ),
            (
                format!("{GW}[[node]]\nid = 5\ndest = \"local\"\nvia = 1\n"),
                "needs an ssh dest",
            ),
            (
                "[[node]]\nid = 1\ndest = \"local\"\n[[node]]\nid = 5\ndest = \"n5\"\nvia = 1\n"
                    .to_owned(),
                "reached over SSH",
            ),
            (
                format!(
                    "{GW}[[node]]\nid = 5\ndest = \"n5\"\nvia = 1\n[[node]]\nid = 6\ndest = \"n6\"\nvia = 5\n"
                ),
                "one level only",
            ),
            (
                format!("gateway_ssh_config = \"-oProxyCommand=x\"\n{GW}"),
                "not a path",
            ),
        ] {
            let err = read(&body).expect_err(want);
            assert!(err.contains(want) && err.contains("c.toml"), "{err}");
        }
    }
}
