//! Spoofed discovery datagrams on the real testbed (`tspoof`, 10.77.234.0/24, three nodes
//! running `openmosix-agent discover`): a real node's address claiming another id maps
//! nothing anew and no command reaches the wrong node; 10,000 forged sources leave the
//! maps and the log bounded. Needs root: the forged sources are sent through a raw socket
//! on the testbed's own bridge, and nowhere else.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use openmosix_hpc::discovery::{DEFAULT_GROUP, DEFAULT_PORT, DiscoveryFile};
use openmosix_testbed::{Testbed, describe, serial, wait};

fn bed() -> &'static Testbed {
    Testbed::shared_with("tspoof", 234, 3, &["--discovery"])
}

/// Node i's map: id → address (empty when its daemon does not run).
fn map_of(tb: &Testbed, i: u32) -> BTreeMap<u32, String> {
    DiscoveryFile::read_live(&tb.node_state(i))
        .expect("a readable map")
        .map(|m| {
            m.nodes
                .iter()
                .map(|n| (n.id, n.address.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn right_map(tb: &Testbed) -> BTreeMap<u32, String> {
    (1..=3).map(|i| (i, tb.addr(i))).collect()
}

fn wait_right_maps(tb: &Testbed) {
    for i in 1..=3 {
        let ok = wait::within(Duration::from_secs(10), || map_of(tb, i) == right_map(tb));
        assert!(ok.is_some(), "node {i} hears {:?}", map_of(tb, i));
    }
}

fn log_of(tb: &Testbed, i: u32) -> String {
    std::fs::read_to_string(tb.node_state(i).join("discovery.log")).unwrap_or_default()
}

fn announcement(id: u32) -> Vec<u8> {
    format!(
        r#"{{"openmosix":"discovery","v":1,"kind":"here","id":{id},"interval_ms":1000,"hold_ms":4000}}"#
    )
    .into_bytes()
}

#[test]
fn a_real_nodes_address_claiming_another_id_reaches_no_other_node() {
    let tb = bed();
    let _serial = serial();
    wait_right_maps(tb);
    // Node 1's daemon afresh: its log lines about ignored datagrams are bounded per
    // minute, and another test's flood may have used this minute's up.
    let old = DiscoveryFile::read_live(&tb.node_state(1))
        .expect("map")
        .expect("node 1's daemon runs")
        .pid;
    let out = tb.exec(1, &["kill", "-TERM", &old.to_string()]);
    assert!(out.status.success(), "{}", describe("kill", &out));
    wait::until(Duration::from_secs(5), "node 1's daemon to stop", || {
        !openmosix_hpc::discovery::state_file::daemon_running(&tb.node_state(1))
    });
    tb.start_discovery(1);
    wait_right_maps(tb);

    // Inside node 2, a second daemon announces "node 3" from node 2's own address.
    let spoofer = tempfile::tempdir().expect("tempdir");
    let state = spoofer.path().to_str().expect("utf-8");
    let agent = tb.agent_path();
    let out = tb.exec(
        2,
        &[
            agent.to_str().expect("utf-8"),
            "discover",
            "-i",
            "eth0",
            "--id",
            "3",
            "--state-dir",
            state,
        ],
    );
    assert!(out.status.success(), "{}", describe("spoofer", &out));
    let pid = DiscoveryFile::read_live(spoofer.path())
        .expect("map")
        .expect("the spoofer runs")
        .pid;
    struct Stop<'a>(&'a Testbed, u32);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.exec(2, &["kill", "-TERM", &self.1.to_string()]);
        }
    }
    let _stop = Stop(tb, pid);

    // For longer than a hold time, every node's map stays as it was.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        for i in [1, 3] {
            assert_eq!(map_of(tb, i), right_map(tb), "node {i}'s map");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let said = format!(
        "from {}: claims node id 3 but this address is node 2",
        tb.addr(2)
    );
    assert!(log_of(tb, 1).contains(&said), "logged: {}", log_of(tb, 1));

    // The workstation takes its nodes from discovery too: a job for node 3 runs on node
    // 3 or not at all, never on node 2 (whichever announcement it heard first).
    let cluster = tb.state_dir.join("cluster-discovery.toml");
    for round in 0..3 {
        let marker = format!("42{round}7");
        let out = std::process::Command::new(openmosix_testbed::testbed::bin("openmosix"))
            .arg("--cluster")
            .arg(&cluster)
            .args(["run", "3", "--", "sleep", &marker])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run openmosix");
        let on = |node: u32| {
            tb.ps(node)
                .into_iter()
                .filter(|p| p["cmdline"].as_str().is_some_and(|c| c.contains(&marker)))
                .filter_map(|p| p["pid"].as_i64())
                .collect::<Vec<_>>()
        };
        assert!(on(2).is_empty(), "a job for node 3 ran on node 2");
        if out.status.success() {
            let pids = on(3);
            assert_eq!(pids.len(), 1, "{}", describe("run 3", &out));
            tb.kill(3, pids[0]);
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("wrong node"), "{}", describe("run 3", &out));
        }
    }
}

/// An IPv4 + UDP datagram from `src` to the discovery group, for a raw socket.
fn forged(src: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + 8 + payload.len()).expect("small");
    let mut p = Vec::with_capacity(usize::from(total));
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 1, 17, 0, 0]); // id, DF, TTL 1, UDP, checksum (kernel)
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&DEFAULT_GROUP.octets());
    p.extend_from_slice(&7999u16.to_be_bytes());
    p.extend_from_slice(&DEFAULT_PORT.to_be_bytes());
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]); // no UDP checksum
    p.extend_from_slice(payload);
    p
}

/// The distinct versions (inodes) of a file seen while `busy` runs, polled every 2 ms.
fn versions_during(path: &Path, busy: impl FnOnce()) -> usize {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, path) = (stop.clone(), path.to_path_buf());
        std::thread::spawn(move || {
            let mut seen = BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(m) = std::fs::metadata(&path) {
                    seen.insert(m.ino());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen.len()
        })
    };
    busy();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().expect("watcher")
}

#[test]
fn ten_thousand_forged_sources_leave_the_maps_and_the_log_bounded() {
    let tb = bed();
    let _serial = serial();
    wait_right_maps(tb);
    let log_before = log_of(tb, 1).len();

    let bridge: Ipv4Addr = format!("10.77.{}.1", tb.net).parse().expect("address");
    let raw = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::RAW,
        Some(socket2::Protocol::UDP),
    )
    .expect("a raw socket (root)");
    raw.set_header_included_v4(true).expect("IP_HDRINCL");
    raw.set_multicast_if_v4(&bridge)
        .expect("the testbed's bridge");
    let to = socket2::SockAddr::from(SocketAddrV4::new(DEFAULT_GROUP, DEFAULT_PORT));
    // Half from the subnet (every address of it, the nodes' own included, many times
    // over), half from other nets; every datagram claims another id.
    let sources: Vec<Ipv4Addr> = (0..10_000u32)
        .map(|i| {
            if i % 2 == 0 {
                Ipv4Addr::new(10, 77, tb.net, u8::try_from(1 + (i / 2) % 254).unwrap_or(1))
            } else {
                Ipv4Addr::from(0x0a00_0000 + 0x10000 * (78 + i % 100) + i)
            }
        })
        .collect();
    let map_file = DiscoveryFile::path(&tb.node_state(1));
    let versions = versions_during(&map_file, || {
        let start = Instant::now();
        for (i, src) in sources.iter().enumerate() {
            let id = 100 + u32::try_from(i).unwrap_or(0);
            // Sends may be refused now and then (a full queue): that is fine.
            let _ = raw.send_to(&forged(*src, &announcement(id)), &to);
        }
        // Let the daemons take it all in.
        std::thread::sleep(Duration::from_secs(3).saturating_sub(start.elapsed()));
    });
    // Written at most once a second (the flood and the wait took about 3 s).
    assert!(versions <= 5, "the map was written {versions} times");

    for i in 1..=3 {
        let m = map_of(tb, i);
        assert!(m.len() <= 254, "node {i}: {} nodes", m.len());
        for (id, address) in &m {
            assert!(
                address.starts_with(&format!("10.77.{}.", tb.net)),
                "node {i} took {id} at {address} from another net"
            );
        }
        for n in 1..=3 {
            assert_eq!(m.get(&n), Some(&tb.addr(n)), "node {i} keeps node {n}");
        }
    }
    let grown = log_of(tb, 1).len().saturating_sub(log_before);
    assert!(grown < 64 * 1024, "the log grew by {grown} bytes");
    let log = log_of(tb, 1);
    assert!(
        log.contains("from outside eth0's subnet") || log.contains("more datagrams were ignored"),
        "{log}"
    );
    // The forged nodes go with their hold time; the real ones stay.
    let back = wait::within(Duration::from_secs(10), || map_of(tb, 1) == right_map(tb));
    assert!(back.is_some(), "node 1 hears {:?}", map_of(tb, 1));
}
