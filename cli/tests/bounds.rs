//! Bounds a local user of a node cannot push the agent past (issue 14): 50 processes
//! with a megabyte of arguments each leave the node up and `ps` working, their command
//! lines cut at 4 KiB and marked.

use std::time::{Duration, Instant};

use openmosix_testbed::{Testbed, serial};

fn bed() -> &'static Testbed {
    Testbed::shared("tbound", 235, 2)
}

/// The marker in the command lines of the big processes.
const MARK: &str = "sleep 4235; : bigargv";

#[test]
fn fifty_megabyte_command_lines_leave_the_node_up_and_ps_cut() {
    let _g = serial();
    // Nine arguments of 120,000 bytes: 1.08 MB of argv per process (one argument may
    // hold at most 128 KiB), started on node 2 by a plain shell, not by the suite.
    let script = format!(
        "a=$(head -c 120000 /dev/zero | tr '\\0' x); i=0; while [ $i -lt 50 ]; do \
         setsid -f sh -c '{MARK}' arg0 $a $a $a $a $a $a $a $a $a </dev/null >/dev/null 2>&1; \
         i=$((i+1)); done"
    );
    let out = bed().ssh(2, &["sh", "-c", &script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Instant::now();
    let procs = bed().ps(2);
    let took = started.elapsed();
    let big: Vec<_> = procs
        .iter()
        .filter(|p| p["cmdline"].as_str().unwrap_or("").contains(MARK))
        .collect();
    let pids: Vec<i64> = big.iter().filter_map(|p| p["pid"].as_i64()).collect();
    for &pid in &pids {
        let _ = bed().ssh(2, &["kill", &pid.to_string()]);
    }
    assert_eq!(
        big.len(),
        50,
        "{} of the 50 big processes listed",
        big.len()
    );
    for p in &big {
        let cmd = p["cmdline"].as_str().expect("text");
        assert!(cmd.ends_with('…'), "not marked as cut: {:.80}…", cmd);
        assert!(cmd.len() <= 4096 + '…'.len_utf8(), "{} bytes", cmd.len());
    }
    eprintln!("ps 2 with 50 big processes: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(10), "ps took {took:?}");

    let nodes = bed().cli_ok(&["--json", "nodes"]);
    let n2: serde_json::Value = nodes
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|n| n["id"] == 2)
        .expect("node 2");
    assert_eq!(n2["status"], "up", "{n2}");
}
