//! Fan-out through gateways (docs/fan-out.md) on testbed `fo` (net 177): 12 nodes, nodes
//! 1–3 gateways of 3 nodes each (4–6 via 1, 7–9 via 2, 10–12 via 3). Figures and
//! commands reach the group nodes through their gateway's relay; a gateway whose sshd
//! stops takes its group down within 3 s, and they are back within 5 s of it returning;
//! a process moves between groups. `OPENMOSIX_FANOUT_GROUP=10` runs the same on 3
//! gateways of 10 nodes (testbed `fo10`, net 178).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use openmosix_client::{ClientOptions, ClusterHandle, LinkState};
use openmosix_hpc::map::Cluster;
use openmosix_testbed::{Testbed, serial, wait};
use serde_json::Value;

/// Nodes a gateway relays (3, or `OPENMOSIX_FANOUT_GROUP`, 1 to 20).
fn group() -> u32 {
    std::env::var("OPENMOSIX_FANOUT_GROUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|g| (1..=20).contains(g))
        .unwrap_or(3)
}

/// Every node: 3 gateways and their groups.
fn nodes() -> u32 {
    3 + 3 * group()
}

/// The `k`-th node (from 1) of gateway `g`'s group.
fn member(g: u32, k: u32) -> u32 {
    4 + (g - 1) * group() + (k - 1)
}

fn bed() -> &'static Testbed {
    let tb = if group() == 3 {
        Testbed::shared("fo", 177, nodes())
    } else {
        Testbed::shared(&format!("fo{}", group()), 178, nodes())
    };
    // The relay is the `openmosix` command: put it on the nodes' PATH (the testbed's bin).
    // Copied beside and renamed over: a relay may be running the old copy.
    static COPIED: std::sync::Once = std::sync::Once::new();
    COPIED.call_once(|| {
        let bin = tb.state_dir.join("bin");
        let tmp = bin.join(".openmosix.fanout");
        std::fs::copy(openmosix_testbed::testbed::bin("openmosix"), &tmp).expect("copy openmosix");
        std::fs::rename(&tmp, bin.join("openmosix")).expect("rename openmosix");
    });
    tb
}

/// The gateway of node `i` (none for 1–3).
fn gateway(i: u32) -> Option<u32> {
    (i > 3).then(|| (i - 4) / group() + 1)
}

/// The cluster file: 1–3 direct, the rest via their gateway (reached as the gateway
/// reaches them, with the testbed's ssh config: the file system is shared).
fn fanout_cluster(dir: &Path) -> PathBuf {
    let b = bed();
    let cfg = b.ssh_config().display().to_string();
    let mut text = format!("ssh_config = {cfg:?}\ngateway_ssh_config = {cfg:?}\n");
    for i in 1..=nodes() {
        text.push_str(&format!("\n[[node]]\nid = {i}\ndest = {:?}\n", b.addr(i)));
        if let Some(g) = gateway(i) {
            text.push_str(&format!("via = {g}\n"));
        }
    }
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text).expect("write cluster file");
    path
}

/// `openmosix --cluster FILE --timeout 30 ARGS`: a one-shot command to a node behind a
/// gateway pays two ssh handshakes in a row (to the gateway, then the gateway's to the
/// node), more than the default 5 s on a busy machine.
fn cli(cluster: &Path, args: &[&str]) -> std::process::Output {
    Command::new(openmosix_testbed::testbed::bin("openmosix"))
        .arg("--cluster")
        .arg(cluster)
        .args(["--timeout", "30"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openmosix")
}

fn cli_ok(cluster: &Path, args: &[&str]) -> String {
    let out = cli(cluster, args);
    assert!(
        out.status.success(),
        "openmosix {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn figures_and_commands_go_through_the_gateways() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = fanout_cluster(dir.path());

    let nodes = json_lines(&cli_ok(&cluster, &["--json", "nodes"]));
    assert_eq!(nodes.len(), self::nodes() as usize);
    for n in &nodes {
        assert_eq!(n["status"], "up", "{n}");
        assert!(n["cpus"].as_u64().unwrap_or(0) > 0, "{n}");
        let id = u32::try_from(n["id"].as_u64().expect("an id")).expect("a node id");
        assert_eq!(n["via"].as_u64(), gateway(id).map(u64::from), "{n}");
    }
    // The table says it too, beside the address.
    let table = cli_ok(&cluster, &["nodes"]);
    let n5 = member(1, 2);
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{n5} ")) && l.contains(" via 1 ")),
        "{table}"
    );

    // mosctl on a node of gateway 2's group, read back through it.
    let (n5, n8) = (member(1, 2).to_string(), member(2, 2).to_string());
    cli_ok(&cluster, &["mosctl", &n8, "setspeed", "4321"]);
    let speed = cli_ok(&cluster, &["mosctl", &n8, "getspeed"]);
    assert!(speed.contains("4321"), "{speed}");

    // A job started on node 5 (gateway 1), listed by ps, then killed by a signal.
    let pid = cli_ok(&cluster, &["run", &n5, "--nomig", "--", "sleep", "177"]);
    let pid: i64 = pid.trim().parse().expect("a pid");
    let listed = |c: &Path| {
        json_lines(&cli_ok(c, &["--json", "ps", &n5]))
            .iter()
            .any(|p| p["pid"] == pid)
    };
    assert!(listed(&cluster), "pid {pid} not in ps {n5}");
    cli_ok(&cluster, &["signal", &n5, &pid.to_string(), "KILL"]);
    wait::until(Duration::from_secs(5), "the job gone", || !listed(&cluster));
}

/// Node `i`'s snapshot state in `h`.
fn state(h: &ClusterHandle, i: u32) -> LinkState {
    h.node(i).map_or(LinkState::Connecting, |n| n.state)
}

async fn until(
    h: &ClusterHandle,
    within: Duration,
    what: &str,
    cond: impl Fn(&ClusterHandle) -> bool,
) -> Duration {
    let start = Instant::now();
    while !cond(h) {
        assert!(
            start.elapsed() < within,
            "{what}: not within {within:?}: {:?}",
            h.nodes()
                .iter()
                .map(|n| (n.id, n.state, n.reason.clone()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[test]
fn a_lost_gateway_takes_its_group_down_and_back() {
    let _g = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(lost_gateway());
}

async fn lost_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::from_file(&fanout_cluster(dir.path())).expect("cluster file");
    let h = ClusterHandle::connect(&cluster, &ClientOptions::for_cluster(&cluster));
    until(&h, Duration::from_secs(60), "every node up", |h| {
        (1..=nodes()).all(|i| state(h, i) == LinkState::Up)
    })
    .await;

    // Node 4's agent was started by gateway 1's relay: its ssh client is node 1.
    let b = bed();
    let env = b.exec(member(1, 1), &["sh", "-c", "for p in $(pgrep -f 'openmosix-agent serve'); do tr '\\0' '\\n' < /proc/$p/environ | grep ^SSH_CONNECTION=; done"]);
    let env = String::from_utf8_lossy(&env.stdout).into_owned();
    assert!(
        env.contains(&format!("SSH_CONNECTION={} ", b.addr(1))),
        "{env}"
    );

    // One SSH connection from this process to each gateway: the relay runs on the
    // gateway node's own master (other tests' masters may linger a while: wait).
    let bridge = openmosix_testbed::addr::bridge_addr(b.net, 0);
    let ours = |i: u32| -> usize {
        let out = b.exec(
            i,
            &["ss", "-tnH", "state", "established", "( sport = :22 )"],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .any(|w| w.starts_with(&format!("{bridge}:")))
            })
            .count()
    };
    wait::until_ok(
        Duration::from_secs(40),
        "one connection to each gateway",
        || {
            let counts: Vec<usize> = (1..=3).map(ours).collect();
            if counts == [1, 1, 1] {
                Ok(())
            } else {
                Err(format!("connections from here on gateways 1-3: {counts:?}"))
            }
        },
    );

    let group: Vec<u32> = (1..=self::group()).map(|k| member(1, k)).collect();
    b.sshd_stop(1);
    let down = until(&h, Duration::from_secs(3), "gateway 1's group down", |h| {
        group.iter().all(|&i| state(h, i) == LinkState::Down)
    })
    .await;
    eprintln!("group of gateway 1 down after {down:?}");
    for i in (2..=3).chain(member(2, 1)..=nodes()) {
        assert_eq!(state(&h, i), LinkState::Up, "node {i} stays up");
    }
    let reason = h.node(5).and_then(|n| n.reason).unwrap_or_default();
    assert!(!reason.is_empty(), "a reason for node 5");

    b.sshd_start(1);
    let up = until(&h, Duration::from_secs(5), "gateway 1's group back", |h| {
        std::iter::once(1)
            .chain(group.iter().copied())
            .all(|i| state(h, i) == LinkState::Up)
    })
    .await;
    eprintln!("group of gateway 1 back after {up:?}");
}

/// The number a counter file holds (0 while it is empty).
fn count(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_process_moves_between_groups_every_way_and_comes_home() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = fanout_cluster(dir.path());
    let file = dir.path().join("counter");
    let script = format!(
        "i=0; while true; do i=$((i+1)); echo $i > {}; sleep 0.2; done",
        file.display()
    );
    let [n5, n8, n11] = [1, 2, 3].map(|g| member(g, 2).to_string());
    let pid: i64 = cli_ok(&cluster, &["run", &n5, "--", "sh", "-c", &script])
        .trim()
        .parse()
        .expect("a pid");
    wait::until(Duration::from_secs(5), "the counter counts", || {
        count(&file) >= 3
    });

    // A node of gateway 1's group to one of gateway 2's.
    let out = cli_ok(&cluster, &["--json", "migrate", &n5, &pid.to_string(), &n8]);
    let moved: Value = serde_json::from_str(out.trim()).expect("migrate --json");
    eprintln!("moved across groups: {moved}");
    let new = moved["new_pid"].as_i64().expect("new pid");
    let on = |node: &str, pid: i64| {
        json_lines(&cli_ok(&cluster, &["--json", "ps", node]))
            .into_iter()
            .find(|p| p["pid"] == pid && p["state"] != "Z")
    };
    let p = on(&n8, new).expect("on the target");
    assert_eq!(
        (p["where"].as_u64(), p["home"].as_u64()),
        (Some(u64::from(member(2, 2))), Some(u64::from(member(1, 2)))),
        "{p}"
    );
    assert!(on(&n5, pid).is_none(), "still on node {n5}");
    let n = count(&file);
    wait::until(Duration::from_secs(5), "the counter goes on", || {
        count(&file) > n + 3
    });

    // On to gateway 3's group with the pages relayed through both gateways and this
    // machine, then home with the whole image on disk first (an images stream).
    let mut at = (n8, new);
    for (to, flag, mode, route) in [
        (n11.as_str(), "--relay", "disk-less", "relayed"),
        ("home", "--disk", "disk", "relayed"),
    ] {
        let pid = at.1.to_string();
        let out = cli_ok(&cluster, &["--json", "migrate", &at.0, &pid, to, flag]);
        let moved: Value = serde_json::from_str(out.trim()).expect("migrate --json");
        assert_eq!(
            (moved["mode"].as_str(), moved["route"].as_str()),
            (Some(mode), Some(route)),
            "{moved}"
        );
        let node = if to == "home" {
            n5.clone()
        } else {
            to.to_owned()
        };
        let new = moved["new_pid"].as_i64().expect("new pid");
        assert!(on(&node, new).is_some(), "on node {node}: {moved}");
        let n = count(&file);
        wait::until(Duration::from_secs(5), "the counter goes on", || {
            count(&file) > n + 3
        });
        at = (node, new);
    }
    cli_ok(&cluster, &["signal", &n5, &at.1.to_string(), "KILL"]);
}
