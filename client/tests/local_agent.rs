//! The client against a locally spawned agent (the default cluster: this machine alone).

use std::time::Duration;

use openmosix_client::{AgentConn, ClientOptions, ClusterHandle, LinkState, connect_node};
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::{AdminChange, AdminState, NodeInfo, ProcInfo, Signal, Switch};
use openmosix_hpc::protocol::{ErrorKind, Request};
use openmosix_testbed::fixtures::local_agent_options;

fn options(dir: &tempfile::TempDir) -> ClientOptions {
    local_agent_options(dir.path())
}

/// A channel to this machine's agent, started with its state in `dir`; `who` names it in
/// a failure.
async fn connect(dir: &tempfile::TempDir, who: &str) -> AgentConn {
    connect_node(&Cluster::local().nodes[0], &options(dir))
        .await
        .expect(who)
}

/// Switches `block` on.
fn block() -> Request {
    Request::AdminSet {
        change: AdminChange::Switch {
            switch: Switch::Block,
            on: true,
        },
    }
}

#[tokio::test]
async fn local_cluster_comes_up_with_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::local();
    let handle = ClusterHandle::connect(&cluster, &options(&dir));
    handle.settled(Duration::from_secs(10)).await;
    let nodes = handle.nodes();
    assert_eq!(nodes.len(), 1);
    let n = &nodes[0];
    assert_eq!(n.state, LinkState::Up, "{:?}", n.reason);
    let info = n.info.as_ref().expect("figures");
    assert!(info.cpus >= 1 && info.tmem > 0 && info.mem <= info.tmem);
    assert!((0.0..=100.0).contains(&info.util));
    let hello = n.hello.as_ref().expect("hello");
    assert_eq!(hello.backend, "linux");
    assert_eq!(hello.node_id, 1);
}

#[tokio::test]
async fn requests_subscriptions_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = connect(&dir, "connect").await;

    // Admin switches round-trip and persist in the state file (a second agent reads them).
    let st: AdminState = conn.request(block()).await.expect("block");
    assert!(st.block);
    let conn2 = connect(&dir, "connect again").await;
    let st2: AdminState = conn2.request(Request::AdminGet).await.expect("admin");
    assert!(st2.block);
    let info: NodeInfo = conn2.request(Request::Node).await.expect("node");
    assert_eq!(info.status, openmosix_hpc::model::NodeStatus::Blocked);

    // Out-of-range values are refused with a reason.
    let err = conn
        .request::<AdminState>(Request::AdminSet {
            change: AdminChange::Speed { speed: 0 },
        })
        .await
        .expect_err("speed 0");
    assert!(err.to_string().contains("speed 0"), "{err}");

    // A dead pid is an error, not a crash.
    let me = i32::try_from(std::process::id()).expect("pid");
    let err = conn
        .request::<ProcInfo>(Request::Proc { pid: i32::MAX - 1 })
        .await
        .expect_err("dead pid");
    match err {
        openmosix_client::ClientError::Agent(e) => {
            assert_eq!(e.kind, ErrorKind::NoSuchProcess);
        }
        other => panic!("unexpected {other}"),
    }
    let p: ProcInfo = conn
        .request(Request::Proc { pid: me })
        .await
        .expect("own process");
    assert_eq!(p.pid, me);
    let err = conn
        .request::<serde_json::Value>(Request::Signal {
            pid: 0,
            signal: Signal::Kill,
        })
        .await
        .expect_err("pid 0 is refused");
    assert!(err.to_string().contains("not a process id"), "{err}");

    // Subscriptions push at their interval with the process list, until unsubscribed.
    let (sub, mut rx) = conn
        .subscribe(Duration::from_millis(100), true)
        .await
        .expect("subscribe");
    for _ in 0..3 {
        let update = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .expect("a push in time")
            .expect("open")
            .expect("no error");
        assert!(update.node.tmem > 0);
        let procs = update.procs.expect("procs");
        assert!(procs.iter().any(|p| p.pid == me));
    }
    conn.unsubscribe(sub).await.expect("unsubscribe");
    // The client drops its side at once (so the receiver ends); the agent must have
    // stopped the subscription too: it no longer knows it.
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while rx.recv().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the client kept the subscription open");
    let again = conn
        .unsubscribe(sub)
        .await
        .expect_err("the agent forgot the subscription");
    assert!(
        again
            .to_string()
            .contains(&format!("no subscription {sub}")),
        "{again}"
    );
}

/// Every SSH channel has its own agent process; they share the node's state file. A
/// long-lived agent (the GUI's) must see what a short-lived one (the CLI's) changed, and
/// must not overwrite it with what it read before.
#[tokio::test]
async fn agents_of_one_node_share_their_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gui = connect(&dir, "gui agent").await;
    let before: AdminState = gui.request(Request::AdminGet).await.expect("admin");
    assert!(!before.block);

    let cli = connect(&dir, "cli agent").await;
    let _: AdminState = cli.request(block()).await.expect("block");
    let job: openmosix_hpc::protocol::Started = cli
        .request(Request::Run {
            argv: vec!["sleep".into(), "30".into()],
            options: openmosix_hpc::model::RunOptions {
                nomig: true,
                ..Default::default()
            },
        })
        .await
        .expect("run");

    // The long-lived agent sees both changes …
    let seen: AdminState = gui.request(Request::AdminGet).await.expect("admin");
    assert!(seen.block, "the GUI's agent missed the CLI's block");
    let p: ProcInfo = gui
        .request(Request::Proc { pid: job.pid })
        .await
        .expect("job");
    assert!(p.lock, "the GUI's agent missed the job's nomig lock");
    // … and its own change keeps them.
    let _: AdminState = gui
        .request(Request::AdminSet {
            change: AdminChange::Speed { speed: 3333 },
        })
        .await
        .expect("speed");
    let after: AdminState = cli.request(Request::AdminGet).await.expect("admin");
    assert!(after.block && after.speed == 3333, "{after:?}");
    let _: serde_json::Value = cli
        .request(Request::Signal {
            pid: job.pid,
            signal: Signal::Kill,
        })
        .await
        .expect("kill");
}

/// Each subscription reads the node every interval: one connection may hold 16, and a
/// 17th is refused with a sentence while the others keep pushing.
#[tokio::test]
async fn subscriptions_per_connection_are_capped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = connect(&dir, "connect").await;
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(
            conn.subscribe(Duration::from_secs(3600), false)
                .await
                .expect("one of the first 16"),
        );
    }
    let err = conn
        .subscribe(Duration::from_secs(3600), false)
        .await
        .expect_err("a 17th subscription");
    assert!(
        err.to_string().contains("already has 16 subscriptions"),
        "{err}"
    );
    // Freeing one makes room; the connection still answers.
    let (sub, _rx) = held.pop().expect("held");
    conn.unsubscribe(sub).await.expect("unsubscribe");
    held.push(
        conn.subscribe(Duration::from_millis(100), false)
            .await
            .expect("room again"),
    );
    let (_, rx) = held.last_mut().expect("the new one");
    let update = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("a push in time")
        .expect("open")
        .expect("no error");
    assert!(update.node.tmem > 0);
}
