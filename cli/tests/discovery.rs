//! Auto-discovery on the real testbed: three nodes run `openmosix-agent discover` on their
//! eth0 (started by `openmosix-testbed up 3 --discovery`), find each other, and the
//! workstation side of the bridge hears them. Needs root (`cargo build --workspace --bins`
//! first is not needed: node-agent's own binaries are enough).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::Output;
use std::time::Duration;

use openmosix_client::{ClientOptions, ClusterHandle, LinkState};
use openmosix_hpc::discovery::{DEFAULT_GROUP, DEFAULT_PORT, DiscoveryFile, state_file};
use openmosix_hpc::map::Cluster;
use openmosix_testbed::{Testbed, describe, serial, wait};

/// Announcements every second, a node dropped 4 s after its last one: a node that
/// stops is gone from every map within this bound.
const GONE_WITHIN: Duration = Duration::from_secs(7);

fn bed() -> &'static Testbed {
    Testbed::shared_with("tdisc", 231, 3, &["--discovery"])
}

const CLI: &str = env!("CARGO_BIN_EXE_openmosix");

/// The agent binary the testbed's nodes run.
fn agent_bin(tb: &Testbed) -> String {
    tb.agent_path().to_str().expect("utf-8 path").to_owned()
}

/// `openmosix-agent discover ARGS --state-dir STATE` inside node 1.
fn discover_in_node_1(tb: &Testbed, args: &[&str], state: &str) -> Output {
    let agent = agent_bin(tb);
    let mut argv = vec![agent.as_str(), "discover"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--state-dir", state]);
    tb.exec(1, &argv)
}

/// The node ids in node i's discovery map (empty when the daemon does not run).
fn heard_by(tb: &Testbed, i: u32) -> Vec<u32> {
    DiscoveryFile::read_live(&tb.node_state(i))
        .expect("a readable map")
        .map(|m| m.nodes.iter().map(|n| n.id).collect())
        .unwrap_or_default()
}

fn wait_all_three(tb: &Testbed) {
    for i in 1..=3 {
        let ok = wait::within(Duration::from_secs(10), || heard_by(tb, i) == [1, 2, 3]);
        assert!(ok.is_some(), "node {i} hears {:?}", heard_by(tb, i));
    }
}

/// The pid (inside its node) of node i's discovery daemon.
fn daemon_pid(tb: &Testbed, i: u32) -> u32 {
    DiscoveryFile::read_live(&tb.node_state(i))
        .expect("a readable map")
        .unwrap_or_else(|| panic!("node {i} runs no discovery daemon"))
        .pid
}

fn stop_daemon(tb: &Testbed, i: u32, signal: &str) {
    let pid = daemon_pid(tb, i).to_string();
    let out = tb.exec(i, &["kill", signal, &pid]);
    assert!(out.status.success(), "{}", describe("kill", &out));
    let gone = wait::within(Duration::from_secs(5), || {
        !state_file::daemon_running(&tb.node_state(i))
    });
    assert!(gone.is_some(), "node {i}'s daemon still runs");
}

/// Restarts a stopped daemon even when the test fails half-way.
struct Restart<'a>(&'a Testbed, u32);

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        if !state_file::daemon_running(&self.0.node_state(self.1)) {
            self.0.start_discovery(self.1);
        }
    }
}

/// `openmosix showmap -i BRIDGE --listen 2.5`: the workstation side of the bridge
/// listening for announcements.
fn workstation_listener(tb: &Testbed) -> std::process::Command {
    let mut cmd = std::process::Command::new(CLI);
    cmd.args([
        "showmap",
        "-i",
        &format!("{}-br", tb.name),
        "--listen",
        "2.5",
    ]);
    cmd
}

/// `openmosix showmap -i BRIDGE` on the workstation side: the map heard there.
fn workstation_showmap(tb: &Testbed) -> String {
    let out = workstation_listener(tb).output().expect("run openmosix");
    assert!(out.status.success(), "{}", describe("showmap -i", &out));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn three_agents_find_each_other_and_showmap_lists_them() {
    let tb = bed();
    let _serial = serial();
    wait_all_three(tb);

    // On a node, `openmosix showmap` (no cluster file) prints its daemon's map; the
    // testbed put the command on the nodes' PATH.
    for i in 1..=3 {
        let out = tb.ssh(i, &["openmosix", "showmap"]);
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("showmap on node {i}"), &out)
        );
        let map = String::from_utf8_lossy(&out.stdout);
        assert!(
            map.starts_with(&format!("My Node-Id: 0x{i:04x}\n")),
            "node {i}: {map}"
        );
        // Consecutive ids at consecutive addresses make one range line, as in a map file.
        assert!(
            map.contains(&format!("0x0001       {}     3\n", tb.addr(1))),
            "node {i}: {map}"
        );
    }

    // The node's serve agent answers get-map with the discovered map too.
    let out = tb.cli(&["--json", "showmap", "--node", "2"]);
    assert!(
        out.status.success(),
        "{}",
        describe("showmap --node 2", &out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["my_id"], 2);
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(3), "{v}");

    // The workstation side of the bridge hears all three, without a cluster file.
    let map = workstation_showmap(tb);
    assert!(map.starts_with("My Node-Id: unknown\n"), "{map}");
    assert!(
        map.contains(&format!("0x0001       {}     3\n", tb.addr(1))),
        "{map}"
    );

    // A cluster file with only [discovery] drives the nodes over SSH.
    let file = tb.state_dir.join("cluster-discovery.toml");
    let out = std::process::Command::new(CLI)
        .arg("--cluster")
        .arg(&file)
        .args(["--json", "nodes"])
        .output()
        .expect("run openmosix");
    assert!(out.status.success(), "{}", describe("nodes", &out));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (row, i) in rows.iter().zip(1..) {
        assert_eq!(row["id"], i, "{row}");
        assert_eq!(row["status"], "up", "{row}");
    }
}

#[test]
fn a_stopped_node_is_gone_within_the_bound() {
    let tb = bed();
    let _serial = serial();
    wait_all_three(tb);
    let _restart = Restart(tb, 3);

    // Killed (no goodbye): dropped when its hold time passes.
    stop_daemon(tb, 3, "-KILL");
    for i in [1, 2] {
        let took = wait::within(GONE_WITHIN, || heard_by(tb, i) == [1, 2]);
        assert!(took.is_some(), "node {i} still hears {:?}", heard_by(tb, i));
    }
    let map = workstation_showmap(tb);
    assert!(map.contains(&format!("{}     2\n", tb.addr(1))), "{map}");
    assert!(!map.contains(&tb.addr(3)), "{map}");

    // Back again: it joins without anyone restarting.
    tb.start_discovery(3);
    wait_all_three(tb);

    // Stopped properly (SIGTERM): it says goodbye and is dropped at once.
    stop_daemon(tb, 3, "-TERM");
    let took = wait::within(Duration::from_secs(2), || heard_by(tb, 1) == [1, 2]);
    assert!(took.is_some(), "node 1 still hears {:?}", heard_by(tb, 1));
    assert!(
        !DiscoveryFile::path(&tb.node_state(3)).exists(),
        "a stopped daemon leaves no map"
    );
    tb.start_discovery(3);
    wait_all_three(tb);
}

#[test]
fn cluster_handle_follows_discovery() {
    let tb = bed();
    let _serial = serial();
    wait_all_three(tb);
    let _restart = Restart(tb, 2);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cluster = Cluster::from_file(&tb.state_dir.join("cluster-discovery.toml"))
        .expect("cluster-discovery.toml");
    assert!(cluster.nodes.is_empty() && cluster.discovery.is_some());
    let handle = rt.block_on(async {
        ClusterHandle::connect(&cluster, &ClientOptions::for_cluster(&cluster))
    });
    let ids = |state: Option<LinkState>| -> Vec<u32> {
        handle
            .nodes()
            .iter()
            .filter(|n| state.is_none_or(|s| n.state == s))
            .map(|n| n.id)
            .collect()
    };
    let up = wait::within(Duration::from_secs(15), || {
        ids(Some(LinkState::Up)) == [1, 2, 3]
    });
    assert!(up.is_some(), "nodes up: {:?}", handle.nodes());
    let status = handle.discovery().expect("a discovery status");
    assert!(status.listening && status.error.is_none(), "{status:?}");

    stop_daemon(tb, 2, "-KILL");
    let gone = wait::within(GONE_WITHIN, || ids(None) == [1, 3]);
    assert!(gone.is_some(), "nodes: {:?}", ids(None));
    assert_eq!(ids(Some(LinkState::Up)), [1, 3], "the others stay up");

    tb.start_discovery(2);
    let back = wait::within(Duration::from_secs(15), || {
        ids(Some(LinkState::Up)) == [1, 2, 3]
    });
    assert!(back.is_some(), "nodes: {:?}", handle.nodes());
    drop(handle);
}

#[test]
fn no_default_route_or_no_address_is_a_clear_error() {
    let tb = bed();
    let _serial = serial();
    let scratch = tempfile::tempdir().expect("tempdir");
    let scratch = scratch.path().to_str().expect("utf-8 path");

    // A testbed node has no default route: without -i, omdiscd's words.
    let out = discover_in_node_1(tb, &["-n"], scratch);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Unable to initialize network")
            && err.contains("Unable to determine address of default interface")
            && err.contains("-i IFACE"),
        "{}",
        describe("discover -n without -i", &out)
    );

    // An interface without an IPv4 address.
    let _ = tb.exec(1, &["ip", "link", "del", "noaddr0"]);
    let out = tb.exec(
        1,
        &[
            "ip", "link", "add", "noaddr0", "type", "veth", "peer", "name", "noaddr1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        describe("ip link add noaddr0", &out)
    );
    let out = discover_in_node_1(tb, &["-i", "noaddr0"], scratch);
    let _ = tb.exec(1, &["ip", "link", "del", "noaddr0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the daemon stopped at once") && err.contains("noaddr0 has no IPv4 address"),
        "{}",
        describe("the background start reports the daemon's error", &out)
    );

    // No such interface: the ones there are.
    let out = discover_in_node_1(tb, &["-n", "-i", "nosuch0"], scratch);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"nosuch0\"") && err.contains("eth0"),
        "{}",
        describe("discover -i nosuch0", &out)
    );

    // Same on the workstation side.
    let out = std::process::Command::new(CLI)
        .args(["showmap", "-i", "nosuch0"])
        .output()
        .expect("run openmosix");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no network interface \"nosuch0\""),
        "{}",
        describe("showmap -i nosuch0", &out)
    );
}

#[test]
fn malformed_and_foreign_datagrams_are_ignored() {
    let tb = bed();
    let _serial = serial();
    wait_all_three(tb);
    let pids: Vec<u32> = (1..=3).map(|i| daemon_pid(tb, i)).collect();

    // From the workstation's address on the bridge, to the group, on the bridge.
    let bridge_addr: Ipv4Addr = format!("10.77.{}.1", tb.net).parse().expect("address");
    let socket = UdpSocket::bind(SocketAddrV4::new(bridge_addr, 0)).expect("bind");
    let s2 = socket2::SockRef::from(&socket);
    s2.set_multicast_if_v4(&bridge_addr).expect("multicast if");
    s2.set_multicast_ttl_v4(1).expect("ttl");
    let long = vec![b'{'; 4000];
    let garbage: [&[u8]; 7] = [
        b"",
        b"\xff\xfe\x00 not json",
        b"{\"openmosix\":\"other\",\"v\":1,\"kind\":\"here\",\"id\":9,\"interval_ms\":1000,\"hold_ms\":4000}",
        b"{\"openmosix\":\"discovery\",\"v\":1,\"kind\":\"here\",\"id\":0,\"interval_ms\":1000,\"hold_ms\":4000}",
        b"{\"openmosix\":\"discovery\",\"v\":1,\"kind\":\"run\",\"id\":9,\"argv\":[\"rm\"]}",
        b"[1,2,3]",
        &long,
    ];
    // The workstation's listener hears them too, while it listens.
    let listening = workstation_listener(tb)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openmosix");
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        for d in garbage {
            socket
                .send_to(d, SocketAddrV4::new(DEFAULT_GROUP, DEFAULT_PORT))
                .expect("send");
        }
    }
    let out = listening.wait_with_output().expect("showmap -i");
    assert!(out.status.success(), "{}", describe("showmap -i", &out));
    let map = String::from_utf8_lossy(&out.stdout);
    assert!(
        map.contains(&format!("0x0001       {}     3\n", tb.addr(1))),
        "{map}"
    );
    assert!(!map.contains(&format!(" {bridge_addr} ")), "{map}");
    std::thread::sleep(Duration::from_millis(1500));

    for i in 1..=3 {
        assert_eq!(
            daemon_pid(tb, i),
            pids[i as usize - 1],
            "node {i}'s daemon still runs"
        );
        assert_eq!(heard_by(tb, i), [1, 2, 3], "node {i}: nothing added");
    }
    let log = std::fs::read_to_string(tb.node_state(1).join("discovery.log")).expect("log");
    assert!(
        log.contains(&format!("from {bridge_addr}: ignored a datagram")),
        "the bad datagrams are logged: {log}"
    );
}

#[test]
fn serve_takes_the_daemon_id_and_answers_with_its_map() {
    let tb = bed();
    let _serial = serial();
    let agent = agent_bin(tb);
    let agent = agent.as_str();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().to_str().expect("utf-8 path");

    // A second daemon in node 1, on its own port (it hears only itself), id 77.
    let out = discover_in_node_1(tb, &["-i", "eth0", "--id", "77", "--port", "7771"], state);
    assert!(out.status.success(), "{}", describe("discover", &out));
    let pid = DiscoveryFile::read_live(dir.path())
        .expect("a readable map")
        .expect("the daemon runs")
        .pid;

    // `serve` without an id of its own (no OPENMOSIX_NODE_ID here) says it is node 77,
    // and with no map installed answers get_map with the discovered one.
    let script = format!(
        "printf '%s\\n' '{{\"id\":1,\"op\":\"hello\"}}' '{{\"id\":2,\"op\":\"get_map\"}}' | {agent} serve --state-dir {state}"
    );
    let out = tb.exec(1, &["env", "-u", "OPENMOSIX_NODE_ID", "sh", "-c", &script]);
    let _ = tb.exec(1, &["kill", "-TERM", &pid.to_string()]);
    assert!(out.status.success(), "{}", describe("serve", &out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let hello = lines.iter().find(|l| l["id"] == 1).expect("hello answer");
    assert_eq!(hello["ok"]["node_id"], 77, "{hello}");
    let map = lines.iter().find(|l| l["id"] == 2).expect("get_map answer");
    assert_eq!(
        map["ok"],
        serde_json::json!([{ "id": 77, "addresses": [tb.addr(1)] }]),
        "{map}"
    );
}
