//! Round trip of a `node` request over the live SSH channel versus a fresh `ssh node true`,
//! and the agent's CPU and memory while it serves a 1 Hz subscription with the process
//! list. Needs root (it builds a 2-node testbed). Figures go to stdout; docs/benchmarks.md
//! keeps the latest ones.
//!
//! `cargo bench -p openmosix-agent --bench agent_roundtrip [-- --quick]`

use std::process::Command;
use std::time::{Duration, Instant};

use openmosix_client::{AgentConn, ClientOptions, connect_node};
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::NodeInfo;
use openmosix_hpc::protocol::Request;
use openmosix_testbed::Testbed;
use openmosix_testbed::stats::percentile;

fn summary(name: &str, mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let (med, p99) = (percentile(&v, 0.5), percentile(&v, 0.99));
    println!(
        "{name:<40} n={:<5} median {:>10.3?}  p99 {:>10.3?}",
        v.len(),
        med,
        p99
    );
    (med, p99)
}

/// (utime+stime ticks, VmRSS kB) of a process seen from the root namespace.
fn cpu_and_rss(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks, rss))
}

/// The agent processes serving in a node, by their pids in the root namespace.
fn agents_in(bed: &Testbed, node: u32) -> Vec<u32> {
    let out = Command::new("ip")
        .args(["netns", "pids", &format!("{}-n{node}", bed.name)])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "openmosix-agent")
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (requests, fresh, watch_secs) = if quick { (100, 10, 5) } else { (1000, 50, 60) };
    let bed = Testbed::shared("tbench", 204, 2);
    let cluster = Cluster::from_file(&bed.cluster_file).expect("cluster file");
    let options = ClientOptions::for_cluster(&cluster);
    let node = cluster.node(1).expect("node 1");

    let conn = connect_node(node, &options).await.expect("connect");
    for _ in 0..20 {
        let _: NodeInfo = conn.request(Request::Node).await.expect("warm-up");
    }
    let mut live = Vec::with_capacity(requests);
    for _ in 0..requests {
        let t = Instant::now();
        let _: NodeInfo = conn.request(Request::Node).await.expect("node");
        live.push(t.elapsed());
    }
    let mut spawned = Vec::with_capacity(fresh);
    for _ in 0..fresh {
        let t = Instant::now();
        let st = Command::new("ssh")
            .arg("-F")
            .arg(bed.state_dir.join("ssh_config"))
            .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
            .arg(bed.addr(1))
            .arg("true")
            .status()
            .expect("ssh");
        assert!(st.success());
        spawned.push(t.elapsed());
    }
    println!("# agent round trip (testbed, 2 nodes)");
    let (live_med, live_p99) = summary("node request, live SSH channel", live);
    let (ssh_med, ssh_p99) = summary("fresh `ssh node true`", spawned);
    println!(
        "ratio fresh ssh / live channel: median {:.0}x, p99 {:.0}x",
        ssh_med.as_secs_f64() / live_med.as_secs_f64(),
        ssh_p99.as_secs_f64() / live_p99.as_secs_f64()
    );
    drop(conn);

    // A second node, watched with a 1 Hz subscription including the process list.
    let node2 = cluster.node(2).expect("node 2");
    let conn = connect_node(node2, &options).await.expect("connect 2");
    let agents = agents_in(bed, 2);
    assert_eq!(agents.len(), 1, "one agent serves node 2: {agents:?}");
    watch(&conn, agents[0], watch_secs, "testbed node 2").await;
    drop(conn);

    // This whole machine, through a locally spawned agent: a long process list.
    let dir = tempfile::tempdir().expect("tempdir");
    let local = ClientOptions {
        local_agent: env!("CARGO_BIN_EXE_openmosix-agent").into(),
        local_state_dir: Some(dir.path().to_path_buf()),
        ..ClientOptions::default()
    };
    let conn = connect_node(&Cluster::local().nodes[0], &local)
        .await
        .expect("local agent");
    let pid = child_agent().expect("the local agent process");
    watch(&conn, pid, watch_secs, "this machine (local agent)").await;
}

/// The agent this process spawned.
fn child_agent() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 2..].split_whitespace().nth(1)?.parse::<u32>().ok());
            comm.trim() == "openmosix-agent" && ppid == Some(me)
        })
}

/// Subscribes at 1 Hz with the process list and reports the agent's CPU and RSS.
async fn watch(conn: &AgentConn, pid: u32, watch_secs: u64, what: &str) {
    let (_sub, mut rx) = conn
        .subscribe(Duration::from_secs(1), true)
        .await
        .expect("subscribe");
    let _ = rx.recv().await;
    let (t0, _) = cpu_and_rss(pid).expect("agent stat");
    let start = Instant::now();
    let mut pushes = 0;
    let mut procs = 0;
    let mut max_rss = 0;
    while start.elapsed() < Duration::from_secs(watch_secs) {
        if let Some(Ok(update)) = rx.recv().await {
            pushes += 1;
            procs = update.procs.map_or(0, |p| p.len());
        }
        if let Some((_, rss)) = cpu_and_rss(pid) {
            max_rss = max_rss.max(rss);
        }
    }
    let (t1, rss) = cpu_and_rss(pid).expect("agent stat");
    // Linux's USER_HZ (the unit of utime/stime) is 100 on every supported arch.
    let cpu = (t1 - t0) as f64 / 100.0 / start.elapsed().as_secs_f64() * 100.0;
    println!(
        "agent on {what}, subscribe 1 Hz + procs ({procs} processes): {pushes} pushes in {:.0?}, CPU {cpu:.2}% of one core, RSS {rss} kB (max {max_rss} kB)",
        start.elapsed()
    );
}
