//! The testbed beyond a handful of nodes, and `--isolated` (issue #16). Each test brings
//! up a testbed of its own and takes it down at the end. Runs as root; fails (never
//! skips) if the testbed cannot be built.

use std::time::Instant;

use openmosix_testbed::{Options, OwnTestbed, stdout_ok as ok};

fn own(options: &Options) -> OwnTestbed {
    options.own().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn forty_nodes_come_up_and_every_one_answers() {
    let _serial = openmosix_testbed::serial();
    let started = Instant::now();
    let tb = own(&Options::new("b16big", 160, 40));
    eprintln!("up 40: {:?}", started.elapsed());

    // Every node's sshd lets us in, and it is the right node.
    for i in 1..=tb.nodes {
        let id = ok(
            &format!("ssh n{i} printenv"),
            &tb.ssh(i, &["printenv", "OPENMOSIX_NODE_ID"]),
        );
        assert_eq!(id.trim(), i.to_string(), "node {i} answers as another");
    }
    // Every node's agent answers the client: `openmosix nodes` asks each of them, all at
    // once. 40 SSH handshakes at a time take longer than the default 5 s on a busy
    // 2-core machine: this is about the testbed, so give them time.
    let nodes = tb.cli_ok(&["--timeout", "60", "--json", "nodes"]);
    let lines: Vec<serde_json::Value> = nodes
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 40, "{nodes}");
    for (node, i) in lines.iter().zip(1..) {
        assert_eq!(node["id"], i, "{nodes}");
        assert_eq!(node["address"], tb.addr(i), "{nodes}");
        assert_eq!(node["status"], "up", "node {i} is not up:\n{nodes}");
    }
    let down = Instant::now();
    drop(tb);
    eprintln!("down 40: {:?}", down.elapsed());
}

#[test]
fn without_isolated_nodes_reach_each_other() {
    let _serial = openmosix_testbed::serial();
    let tb = own(&Options::new("b16con", 161, 2));
    assert!(!tb.isolated);
    assert!(tb.node_reaches(1, 2, 22), "node 1 cannot reach node 2");
    assert!(tb.node_reaches(2, 1, 22), "node 2 cannot reach node 1");
    assert!(tb.reaches(1, 22), "the machine cannot reach node 1");
    assert!(tb.reaches(2, 22), "the machine cannot reach node 2");
}

#[test]
fn isolated_nodes_cannot_reach_each_other_but_the_machine_reaches_them() {
    let _serial = openmosix_testbed::serial();
    let tb = own(&Options::new("b16iso", 162, 2).isolated());
    assert!(tb.isolated);
    assert!(!tb.node_reaches(1, 2, 22), "node 1 reaches node 2");
    assert!(!tb.node_reaches(2, 1, 22), "node 2 reaches node 1");
    // The connector itself works: a node reaches its own sshd.
    assert!(tb.node_reaches(1, 1, 22), "node 1 cannot reach itself");
    assert!(tb.reaches(1, 22), "the machine cannot reach node 1");
    assert!(tb.reaches(2, 22), "the machine cannot reach node 2");
    // And the client, on the machine, still gets to both agents over SSH.
    for i in 1..=2 {
        let id = ok(
            &format!("ssh n{i} printenv"),
            &tb.ssh(i, &["printenv", "OPENMOSIX_NODE_ID"]),
        );
        assert_eq!(id.trim(), i.to_string());
    }
}
