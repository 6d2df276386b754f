//! What the workstation holds per node while it watches a cluster (issue #16): processes,
//! and their memory, for a cluster handle (as every window and `openmosix mon` keep one)
//! connected to every node of a testbed, plus the time until every node is up. Needs root
//! (it builds the testbed `mxssh`, net 159, and removes it at the end).
//!
//! `cargo bench --profile dev -p openmosix-client --bench ssh_processes [-- NODES]`
//! (`cargo build -p openmosix-agent -p openmosix-testbed` first). With
//! `OPENMOSIX_SSH_MUX=process` each channel gets an `ssh` process of its own, as before.
//!
//! Counted: this process, its descendants (the per-channel `ssh` processes, if any) and
//! the ssh masters (they name the testbed's ssh config); for each VmRSS (every shared page
//! counted in every process, as `ps` shows it) and PSS (shared pages divided among the
//! processes sharing them), from /proc.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use openmosix_client::{ClientOptions, ClusterHandle, LinkState};
use openmosix_hpc::map::Cluster;
use openmosix_testbed::Options;

/// The kB figure `key` of a /proc file of `pid` (`status` or `smaps_rollup`).
fn kb(pid: u32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

/// `pid` and every process below it.
fn tree(pid: u32, into: &mut BTreeSet<u32>) {
    into.insert(pid);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for t in tasks.flatten() {
        let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            tree(c, into);
        }
    }
}

/// Processes of this machine whose command line names `needle`.
fn naming(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&pid| cmdline(pid).contains(needle))
        .collect()
}

fn main() {
    let nodes: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let mode = match std::env::var("OPENMOSIX_SSH_MUX") {
        Ok(v) if v == "process" => "an ssh process per channel",
        _ => "channels spoken from this process",
    };
    let bed = match Options::new("mxssh", 159, nodes).own() {
        Ok(bed) => bed,
        Err(e) => {
            eprintln!("ssh_processes: {e}");
            std::process::exit(1);
        }
    };
    let cluster = match Cluster::from_file(&bed.cluster_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ssh_processes: {e}");
            std::process::exit(1);
        }
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ssh_processes: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let config = cluster
        .ssh_config
        .clone()
        .unwrap_or_else(|| bed.state_dir.join("ssh_config"))
        .to_string_lossy()
        .into_owned();
    rt.block_on(async {
        let options = ClientOptions {
            connect_timeout: Duration::from_secs(20),
            ..ClientOptions::for_cluster(&cluster)
        };
        let start = Instant::now();
        let handle = ClusterHandle::connect(&cluster, &options);
        while handle.nodes().iter().any(|n| n.state != LinkState::Up) {
            if start.elapsed() > Duration::from_secs(60) {
                eprintln!("ssh_processes: not every node up within 60 s");
                std::process::exit(1);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let up = start.elapsed();
        // Let the first lists and the heartbeats settle.
        tokio::time::sleep(Duration::from_secs(5)).await;

        let mut pids = BTreeSet::new();
        tree(std::process::id(), &mut pids);
        pids.extend(naming(&config));
        let (mut rss, mut pss, mut ssh) = (0, 0, 0);
        for &pid in &pids {
            rss += kb(pid, "status", "VmRSS:");
            pss += kb(pid, "smaps_rollup", "Pss:");
            ssh += usize::from(pid != std::process::id());
        }
        let own_rss = kb(std::process::id(), "status", "VmRSS:");
        let n = u64::from(nodes);
        println!("{nodes} nodes, {mode}: every node up after {up:.2?}");
        println!(
            "processes {} (ssh {ssh}, {:.1} per node); RSS {} MiB ({} kB per node, this \
             process {own_rss} kB); PSS {} MiB ({} kB per node)",
            pids.len(),
            ssh as f64 / f64::from(nodes),
            rss / 1024,
            rss / n,
            pss / 1024,
            pss / n,
        );
        drop(handle);
    });
}
