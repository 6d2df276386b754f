//! A cluster handle's node set changes while it runs (as discovery drives it): nodes are
//! added, kept, replaced and removed without a restart. Locally spawned agents.

use std::time::{Duration, Instant};

use openmosix_client::{ClientError, ClientOptions, ClusterHandle, LinkState};
use openmosix_hpc::map::{Cluster, ClusterNode, Dest};
use openmosix_testbed::fixtures::local_agent_options;

fn options(dir: &tempfile::TempDir) -> ClientOptions {
    local_agent_options(dir.path())
}

fn local(id: u32) -> ClusterNode {
    ClusterNode {
        id,
        dest: Dest::Local,
        addresses: vec![format!("localhost{id}")],
    }
}

fn ids(handle: &ClusterHandle) -> Vec<u32> {
    handle.nodes().iter().map(|n| n.id).collect()
}

async fn all_up(handle: &ClusterHandle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while handle.nodes().iter().any(|n| n.state != LinkState::Up) {
        assert!(Instant::now() < deadline, "not up: {:?}", handle.nodes());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn nodes_come_and_go_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let handle = ClusterHandle::connect(&Cluster::local(), &options(&dir));
    all_up(&handle).await;
    assert_eq!(ids(&handle), [1]);
    assert!(handle.discovery().is_none(), "no [discovery], no status");

    let mut changes = handle.changes();
    changes.borrow_and_update();
    handle.add_node(&local(2));
    assert!(
        changes.has_changed().expect("sender alive"),
        "adding notifies"
    );
    assert_eq!(ids(&handle), [1, 2]);
    all_up(&handle).await;
    let conn = handle.conn(2).expect("node 2 connected");

    // The same node again keeps its connection.
    handle.add_node(&local(2));
    assert_eq!(handle.node(2).map(|n| n.state), Some(LinkState::Up));
    assert!(!conn.is_closed());

    // A changed node under the same id is reconnected.
    let mut moved = local(2);
    moved.addresses = vec!["elsewhere".into()];
    handle.add_node(&moved);
    assert_eq!(handle.node(2).map(|n| n.address), Some("elsewhere".into()));
    all_up(&handle).await;

    assert!(handle.remove_node(1));
    assert!(!handle.remove_node(1));
    assert_eq!(ids(&handle), [2]);
    assert!(matches!(handle.conn(1), Err(ClientError::UnknownNode(1))));

    handle.set_nodes(&[local(3), moved.clone()]);
    assert_eq!(ids(&handle), [2, 3]);
    all_up(&handle).await;
    handle.set_nodes(&[local(3)]);
    assert_eq!(ids(&handle), [3]);
}
