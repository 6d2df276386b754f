//! One dead node never delays the others: kill node 3's sshd and watch the cluster handle.

use std::time::{Duration, Instant};

use openmosix_client::{ClientOptions, ClusterHandle, LinkState};
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::NodeInfo;
use openmosix_hpc::protocol::Request;
use openmosix_testbed::Testbed;

async fn wait_for(
    handle: &ClusterHandle,
    node: u32,
    state: LinkState,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if handle.node(node).is_some_and(|n| n.state == state) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "node {node} not {state:?} within {within:?}: {:?}",
            handle.node(node)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_turns_down_and_comes_back() {
    let bed = Testbed::shared("tfail", 203, 3);
    let cluster = Cluster::from_file(&bed.cluster_file).expect("cluster file");
    let options = ClientOptions::for_cluster(&cluster);
    let handle = ClusterHandle::connect(&cluster, &options);
    handle.settled(Duration::from_secs(10)).await;
    for n in 1..=3 {
        assert_eq!(
            handle.node(n).expect("node").state,
            LinkState::Up,
            "{:?}",
            handle.node(n)
        );
    }

    // Baseline: how long a request to node 1 takes while all is well.
    let mut before = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let _: NodeInfo = handle.request(1, Request::Node).await.expect("node 1");
        before.push(t.elapsed());
    }

    bed.sshd_stop(3);
    let down_after = wait_for(&handle, 3, LinkState::Down, Duration::from_secs(3)).await;
    eprintln!("node 3 down after {down_after:?}");

    // While node 3 is down, nodes 1 and 2 answer as fast as before.
    let mut during = Vec::new();
    for _ in 0..10 {
        for n in [1, 2] {
            let t = Instant::now();
            let _: NodeInfo = handle
                .request(n, Request::Node)
                .await
                .expect("nodes 1-2 keep answering");
            during.push(t.elapsed());
        }
    }
    // Medians, so one slow moment of a busy machine does not decide: a request that
    // waited on the dead node's time-outs would take seconds.
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (mb, md) = (median(&mut before), median(&mut during));
    assert!(
        md < mb * 5 + Duration::from_millis(100),
        "requests to nodes 1-2 slowed down while node 3 was down: median {md:?} vs {mb:?}"
    );
    let err = handle
        .request::<NodeInfo>(3, Request::Node)
        .await
        .expect_err("node 3 is down");
    assert!(err.to_string().contains("node 3 is down"), "{err}");

    bed.sshd_start(3);
    let up_after = wait_for(&handle, 3, LinkState::Up, Duration::from_secs(5)).await;
    eprintln!("node 3 up again after {up_after:?}");
    let _: NodeInfo = handle
        .request(3, Request::Node)
        .await
        .expect("node 3 again");
}
