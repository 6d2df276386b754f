//! A node's agent must say it is the node the client meant (docs/cluster-files.md): a
//! cluster file that names node 2's address as node 3 gets "wrong node", and no command
//! reaches node 2 through it.

use std::path::PathBuf;
use std::process::Command;

use openmosix_testbed::{Testbed, serial};
use serde_json::Value;

fn bed() -> &'static Testbed {
    Testbed::shared("tident", 236, 3)
}

/// A cluster file: node 1 as it is, node 3 at node 2's address.
fn misnamed_cluster(dir: &tempfile::TempDir) -> PathBuf {
    let b = bed();
    let text = format!(
        "ssh_config = {:?}\n\n[[node]]\nid = 1\ndest = {:?}\n\n[[node]]\nid = 3\ndest = {:?}\n",
        b.ssh_config().display().to_string(),
        b.addr(1),
        b.addr(2),
    );
    let path = dir.path().join("cluster.toml");
    std::fs::write(&path, text).expect("write cluster file");
    path
}

fn cli(cluster: &PathBuf, args: &[&str]) -> std::process::Output {
    Command::new(openmosix_testbed::testbed::bin("openmosix"))
        .arg("--cluster")
        .arg(cluster)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openmosix")
}

#[test]
fn a_node_answering_with_another_id_is_the_wrong_node_and_gets_no_command() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = misnamed_cluster(&dir);

    let out = cli(&cluster, &["--json", "nodes"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let nodes: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(nodes.len(), 2, "{text}");
    assert_eq!(nodes[0]["status"], "up", "{}", nodes[0]);
    assert_eq!(nodes[1]["id"], 3);
    assert_eq!(nodes[1]["status"], "down", "{}", nodes[1]);
    let want = format!("wrong node at {} (it says it is node 2)", bed().addr(2));
    assert!(
        nodes[1]["reason"].as_str().unwrap_or("").contains(&want),
        "{}",
        nodes[1]
    );
    // The table says it too.
    let table = String::from_utf8_lossy(&cli(&cluster, &["nodes"]).stdout).into_owned();
    assert!(table.contains(&want), "{table}");

    // A process of node 2; `signal 3 PID TERM` through the wrong file must not reach it.
    let pid = bed().run_job(2, &[], &["sleep", "4236.5"]);
    let out = cli(&cluster, &["signal", "3", &pid.to_string(), "TERM"]);
    assert!(!out.status.success(), "the signal was sent");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&want), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let p = bed().find(2, pid).expect("node 2's process is still there");
    assert_ne!(p["state"], "Z", "{p}");
    bed().kill(2, pid);
}
