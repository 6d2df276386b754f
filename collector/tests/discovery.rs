//! openmosixcollector on a cluster that takes its nodes from discovery: a node whose
//! discovery daemon starts while the collector runs is collected from then on, without a
//! restart. Real testbed (`openmosix-testbed up 3 --discovery`); needs root and the
//! workspace's binaries (`cargo build --workspace --bins`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use openmosix_store::History;
use openmosix_testbed::process::KillOnDrop;
use openmosix_testbed::wait::until_some;
use openmosix_testbed::{Testbed, history, serial};

const BIN: &str = env!("CARGO_BIN_EXE_openmosixcollector");

fn bed() -> &'static Testbed {
    Testbed::shared_with("tdisc2", 232, 3, &["--discovery"])
}

/// The pid (inside its node) of node i's discovery daemon, if it runs.
fn daemon_pid(tb: &Testbed, i: u32) -> Option<u32> {
    let text = std::fs::read_to_string(tb.node_state(i).join("discovery.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["pid"].as_u64().and_then(|p| u32::try_from(p).ok())
}

/// Sample rows and node-table rows per node 1..=3.
fn seen(db: &Path) -> ([i64; 3], Vec<u32>) {
    let Ok(h) = History::open(db) else {
        return ([0; 3], Vec::new());
    };
    let counts = history::sample_counts(&h, "samples");
    let nodes = h
        .nodes()
        .expect("nodes")
        .into_iter()
        .map(|n| n.id)
        .collect();
    (counts, nodes)
}

#[test]
fn a_node_that_joins_is_collected_without_a_restart() {
    let tb = bed();
    let _serial = serial();
    // Node 3's daemon is not running when the collector starts.
    if let Some(pid) = daemon_pid(tb, 3) {
        let out = tb.exec(3, &["kill", "-TERM", &pid.to_string()]);
        assert!(out.status.success());
    }
    until_some(Duration::from_secs(5), "node 3's daemon to stop", || {
        (!tb.node_state(3).join("discovery.json").exists()).then_some(())
    });

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("history.db");
    let log = std::fs::File::create(dir.path().join("log")).expect("log");
    let child = Command::new(BIN)
        .arg("--foreground")
        .arg("--cluster")
        .arg(tb.state_dir.join("cluster-discovery.toml"))
        .arg("--db")
        .arg(&db)
        .arg("--pid-file")
        .arg(dir.path().join("pid"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start the collector");
    let _collector = KillOnDrop(child);
    let log_text = || std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();

    let (counts, nodes) = until_some(Duration::from_secs(20), "samples of nodes 1 and 2", || {
        let (c, n) = seen(&db);
        (c[0] >= 2 && c[1] >= 2).then_some((c, n))
    });
    assert_eq!(counts[2], 0, "node 3 is not there yet: {}", log_text());
    assert_eq!(nodes, [1, 2], "{}", log_text());

    tb.start_discovery(3);
    let (_, nodes) = until_some(Duration::from_secs(20), "samples of node 3", || {
        let (c, n) = seen(&db);
        (c[2] >= 2).then_some((c, n))
    });
    assert_eq!(
        nodes,
        [1, 2, 3],
        "node 3 is in the node table: {}",
        log_text()
    );
    let h = History::open(&db).expect("history");
    let address = h
        .nodes()
        .expect("nodes")
        .into_iter()
        .find(|n| n.id == 3)
        .map(|n| n.address);
    assert_eq!(address, Some(tb.addr(3)));
}
