//! The CLI's side of auto-discovery: `showmap -i IFACE`, the map a node's discovery
//! daemon keeps, and cluster files whose nodes come from discovery.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use openmosix_hpc::discovery::{
    DiscoveryConfig, DiscoveryFile, Listener, state_file::state_dir_from_env,
};
use openmosix_hpc::map::{self, Cluster, DiscoverySource};
use openmosix_hpc::model::{MapNode, NodeId};

/// Prints a map as showmap did (or as JSON).
pub fn print_map(my_id: Option<NodeId>, nodes: &[MapNode], json: bool) {
    if json {
        outln!("{}", serde_json::json!({ "my_id": my_id, "nodes": nodes }));
    } else {
        out!("{}", map::render_showmap(my_id, nodes));
    }
}

/// The map of this node's running discovery daemon, if one runs.
pub fn local_map() -> Result<Option<DiscoveryFile>> {
    Ok(DiscoveryFile::read_live(&state_dir_from_env())?)
}

/// `showmap -i IFACE`: listens for `secs` seconds and prints the nodes heard.
pub async fn showmap_listen(interface: &str, secs: f64, json: bool) -> Result<ExitCode> {
    if !(secs.is_finite() && (0.1..=600.0).contains(&secs)) {
        bail!("--listen must be between 0.1 and 600 seconds");
    }
    let listener = Listener::bind(&DiscoveryConfig::on(Some(interface)))?;
    let found = listener.listen_for(Duration::from_secs_f64(secs)).await;
    // This machine's own id, when its daemon announces on that interface.
    let my_id = local_map()
        .ok()
        .flatten()
        .filter(|m| m.interface == interface)
        .map(|m| m.my_id);
    let nodes: Vec<MapNode> = found.iter().map(|n| n.to_map_node()).collect();
    print_map(my_id, &nodes, json);
    Ok(ExitCode::SUCCESS)
}

/// A cluster with `[discovery]` as the nodes heard within its `listen` time (plus its
/// listed nodes): a one-shot command works on the nodes there are now.
pub async fn resolve(cluster: &Cluster, source: &DiscoverySource) -> Result<Cluster> {
    let listener = Listener::bind(&source.config).context("discovery")?;
    let found = listener.listen_for(source.listen).await;
    let mut resolved = cluster.with_discovered(&found);
    resolved.discovery = None;
    if resolved.nodes.is_empty() {
        bail!(
            "no node announced itself on {} within {:?} (is `openmosix-agent discover` running on the nodes?)",
            source
                .config
                .interface
                .as_deref()
                .unwrap_or("the default interface"),
            source.listen
        );
    }
    Ok(resolved)
}
