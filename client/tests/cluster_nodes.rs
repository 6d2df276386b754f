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
        via: None,
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

/// The windows' process lists come from one watched list per node: the first ask
/// subscribes (with deltas: the local agent speaks protocol 2), later ones are answered
/// from it, and a process started meanwhile shows up through the deltas.
#[tokio::test]
async fn process_lists_come_from_a_watched_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let handle = ClusterHandle::connect(&Cluster::local(), &options(&dir));
    all_up(&handle).await;
    let me = i32::try_from(std::process::id()).expect("pid");
    let first = handle.procs(1).await.expect("procs");
    assert!(first.iter().any(|p| p.pid == me), "this test is listed");
    assert!(
        first.windows(2).all(|w| w[0].pid < w[1].pid),
        "ordered by pid"
    );
    let watch = handle.watched_procs(1).expect("a watched list");
    assert!(watch.delta, "deltas from an agent of protocol 2");
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = i32::try_from(child.id()).expect("pid");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = handle.procs(1).await.expect("procs");
        if list.iter().any(|p| p.pid == pid) {
            break;
        }
        assert!(Instant::now() < deadline, "the new process never showed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let model = watch.model();
    assert_eq!(model.resyncs, 0);
    assert!(model.pushes >= 2, "{} pushes", model.pushes);
    assert_eq!(
        handle.watched_procs(1).map(|w| w.sub()),
        Some(watch.sub()),
        "one watch, kept"
    );
}
