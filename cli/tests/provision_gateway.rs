//! `openmosix node add` of a gateway and of a node behind it (docs/fan-out.md,
//! docs/provisioning.md): nodes 1 and 4 of a 4-node testbed are bare (`up --bare 1,4`:
//! neither the agent nor `openmosix` on their PATH); nodes 2 and 3 are reached through
//! node 1. Adding node 1 installs the agent and the relay, after which its group answers
//! through it; node 4, added `--via 1` by a name only the gateway's ssh config knows, gets
//! its agent from the gateway. Real sshd, real relay, real agents.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use openmosix_client::install;
use openmosix_testbed::{Testbed, serial};

fn bed() -> &'static Testbed {
    Testbed::shared_with("tprovw", 244, 4, &["--bare", "1,4"])
}

/// `openmosix --cluster FILE args…`.
fn cli(cluster: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_openmosix"))
        .arg("--cluster")
        .arg(cluster)
        .args(["--timeout", "30"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run openmosix")
}

use openmosix_testbed::output_text as text;

/// A cluster file in `dir`: node 1, and nodes 2 and 3 `via = 1` when `group`.
fn cluster_file(dir: &Path, group: bool) -> PathBuf {
    let cfg = bed().ssh_config().display().to_string();
    let mut text = format!(
        "ssh_config = {cfg:?}\ngateway_ssh_config = {cfg:?}\n\n[[node]]\nid = 1\ndest = {:?}\n",
        bed().addr(1)
    );
    if group {
        for id in [2, 3] {
            text.push_str(&format!(
                "\n[[node]]\nid = {id}\ndest = {:?}\nvia = 1\n",
                bed().addr(id)
            ));
        }
    }
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).expect("write cluster file");
    path
}

/// The `--json` lines of `openmosix nodes`: (id, up, via).
fn nodes(cluster: &Path) -> Vec<(u64, bool, Option<u64>)> {
    let out = cli(cluster, &["--json", "nodes"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["id"].as_u64().unwrap_or(0),
                v["status"] == "up",
                v["via"].as_u64(),
            )
        })
        .collect()
}

/// Node 1's copies of the agent and the relay (SHA-256 and name per line), and whether
/// a temporary upload is left.
fn installed_on_node1() -> (String, bool) {
    installed_on(1)
}

/// What `installed_on_node1` says, for node `node`.
fn installed_on(node: u32) -> (String, bool) {
    let out = bed().ssh(
        node,
        &[
            "sh",
            "-c",
            "cd \"$HOME/.local/lib/openmosix\" && sha256sum openmosix-agent openmosix; ls -A",
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let left = said.contains(".upload");
    (said, left)
}

#[test]
fn a_gateway_gets_the_relay_and_its_group_answers_through_it() {
    let _g = serial();
    // The test's node 1 starts bare: what an earlier run installed goes.
    let _ = bed().ssh(1, &["sh", "-c", "rm -rf \"$HOME/.local/lib/openmosix\""]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = cluster_file(dir.path(), true);
    // Before: the gateway has no relay, so its group is down.
    let before = nodes(&cluster);
    assert!(
        before.iter().all(|&(_, up, _)| !up),
        "up without a relay: {before:?}"
    );

    // Node 1 is in the file, and 2 and 3 are via it: it is a gateway without --gateway.
    let out = cli(&cluster, &["node", "add", &bed().addr(1), "--id", "1"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for step in [
        "[3/9] agent: ok, no compatible agent",
        "[6/9] run agent: ok",
        "[7/9] gateway relay: ok, ",
        "0.1.0 installed in ~/.local/lib/openmosix/openmosix (",
        "none was there",
        "[8/9] cluster file: skipped, already node 1",
        "[9/9] answers: ok",
    ] {
        assert!(said.contains(step), "missing {step:?} in:\n{said}");
    }
    let (copies, left) = installed_on_node1();
    let sum = |p: &str| install::sha256_hex(&std::fs::read(p).expect("read a program"));
    assert!(
        copies.contains(&format!(
            "{}  openmosix\n",
            sum(env!("CARGO_BIN_EXE_openmosix"))
        )),
        "{copies}"
    );
    assert!(
        copies.contains(&sum(&openmosix_testbed::testbed::bin("openmosix-agent"))),
        "{copies}"
    );
    assert!(!left, "a temporary upload is left: {copies}");

    // The group answers through the relay that node add installed.
    let after = nodes(&cluster);
    assert_eq!(
        after,
        vec![(1, true, None), (2, true, Some(1)), (3, true, Some(1))],
        "{after:?}"
    );

    // Again: both are there, nothing is installed.
    let out = cli(&cluster, &["node", "add", &bed().addr(1), "--id", "1"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("[7/9] gateway relay: ok, ")
            && said.contains("0.1.0 is there for the gateway's relay"),
        "{said}"
    );
    assert!(said.contains("[5/9] copy agent: skipped"), "{said}");
}

#[test]
fn a_node_that_is_no_gateway_gets_no_relay_unless_asked() {
    let _g = serial();
    let _ = bed().ssh(1, &["sh", "-c", "rm -rf \"$HOME/.local/lib/openmosix\""]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = cluster_file(dir.path(), false);
    let out = cli(&cluster, &["node", "add", &bed().addr(1), "--id", "1"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("[7/9] gateway relay: skipped, not a gateway"),
        "{said}"
    );
    let (copies, _) = installed_on_node1();
    assert!(!copies.contains("  openmosix\n"), "{copies}");
    // --gateway: a gateway before any node is via it.
    let out = cli(
        &cluster,
        &["node", "add", &bed().addr(1), "--id", "1", "--gateway"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("0.1.0 installed in ~/.local/lib/openmosix/openmosix ("),
        "{said}"
    );
}

#[test]
fn a_node_behind_the_gateway_is_provisioned_through_it() {
    let _g = serial();
    let _ = bed().ssh(4, &["sh", "-c", "rm -rf \"$HOME/.local/lib/openmosix\""]);
    let dir = tempfile::tempdir().expect("tempdir");
    // The gateway's ssh config knows node 4 as `grp4`; the workstation's does not.
    let testbed_cfg = std::fs::read_to_string(bed().ssh_config()).expect("ssh config");
    let gw_cfg = dir.path().join("gateway_ssh_config");
    std::fs::write(
        &gw_cfg,
        format!("Host grp4\n    HostName {}\n\n{testbed_cfg}", bed().addr(4)),
    )
    .expect("write the gateway's ssh config");
    let cluster = dir.path().join("cluster.toml");
    std::fs::write(
        &cluster,
        format!(
            "ssh_config = {:?}\ngateway_ssh_config = {:?}\n\n[[node]]\nid = 1\ndest = {:?}\n",
            bed().ssh_config().display().to_string(),
            gw_cfg.display().to_string(),
            bed().addr(1)
        ),
    )
    .expect("write cluster file");
    let out = cli(
        &cluster,
        &["node", "add", &bed().addr(1), "--id", "1", "--gateway"],
    );
    assert!(out.status.success(), "{}", text(&out));

    let out = cli(
        &cluster,
        &["node", "add", "grp4", "--via", "1", "--id", "4"],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for step in [
        "[2/9] connect: running, ssh ",
        "(gateway node 1)",
        "[1/9] host key: ok, ED25519",
        "[3/9] agent: ok, no compatible agent",
        "[6/9] run agent: ok",
        "[8/9] cluster file: ok, node 4 = grp4",
        "[9/9] answers: ok, node 4 answers",
    ] {
        assert!(said.contains(step), "missing {step:?} in:\n{said}");
    }
    let file = std::fs::read_to_string(&cluster).expect("read");
    assert!(
        file.contains("id = 4\ndest = \"grp4\"\nvia = 1\n"),
        "{file}"
    );
    // Node 4 has the gateway's agent (the one node add put on node 1).
    let (copies, left) = installed_on(4);
    let agent = install::sha256_hex(
        &std::fs::read(openmosix_testbed::testbed::bin("openmosix-agent")).expect("agent"),
    );
    assert!(
        copies.contains(&format!("{agent}  openmosix-agent")),
        "{copies}"
    );
    assert!(!left, "{copies}");
    assert_eq!(
        nodes(&cluster),
        vec![(1, true, None), (4, true, Some(1))],
        "node 4 through node 1"
    );
}
