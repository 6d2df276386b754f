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

/// The resident size of process `pid` of node `node`, in KiB.
fn rss_kib(node: u32, pid: &str) -> u64 {
    let out = bed().exec(node, &["cat", &format!("/proc/{pid}/status")]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_peer_that_stops_reading_leaves_the_agent_small_and_loses_no_answer() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let _g = serial();
    // 100 processes with 4 KB command lines make each push ~0.5 MB: far more than the
    // pipes and ssh's windows hold, so the agent's writes block.
    const BULK: &str = "sleep 4236; : bulk";
    let script = format!(
        "a=$(head -c 4000 /dev/zero | tr '\\0' y); i=0; while [ $i -lt 100 ]; do \
         setsid -f sh -c '{BULK}' arg0 $a </dev/null >/dev/null 2>&1; i=$((i+1)); done"
    );
    assert!(bed().ssh(1, &["sh", "-c", &script]).status.success());
    let mut child = bed().agent_session(1).spawn().expect("agent session");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    // The process list ten times a second, and then not a byte read for 60 s.
    writeln!(
        stdin,
        r#"{{"id":1,"op":"subscribe","interval_ms":100,"procs":true}}"#
    )
    .expect("subscribe");
    std::thread::sleep(Duration::from_secs(2));
    let newest = bed().exec(1, &["pgrep", "-n", "-f", "openmosix-agent serve"]);
    let pid = String::from_utf8_lossy(&newest.stdout).trim().to_owned();
    assert!(!pid.is_empty(), "no agent found on node 1");
    let before = rss_kib(1, &pid);
    std::thread::sleep(Duration::from_secs(60));
    let after = rss_kib(1, &pid);
    eprintln!("agent RSS: {before} KiB after 2 s, {after} KiB after 60 s unread");
    assert!(after > 0 && after < 20 * 1024, "agent RSS {after} KiB");
    assert!(
        after < before + 2048,
        "the agent grew from {before} to {after} KiB"
    );
    // An answer asked for now still comes, behind at most the pushes already queued.
    writeln!(stdin, r#"{{"id":2,"op":"node"}}"#).expect("node request");
    let mut pushes = 0u32;
    let mut answered = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if line.starts_with(r#"{"sub":1"#) || line.contains(r#""sub":1,"#) {
            pushes += 1;
        }
        if line.contains(r#""id":2"#) {
            answered = line.contains(r#""ok""#);
            break;
        }
    }
    eprintln!("{pushes} pushes came before the answer (600 would have been made)");
    assert!(answered, "the node request got no answer");
    assert!(pushes < 600, "no push was dropped: {pushes}");
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let _ = bed().exec(1, &["pkill", "-f", BULK]);
}

/// Round-trip times of `node` on `session` while `busy()` says the other work runs:
/// sorted, in ms.
fn node_latencies(
    session: &mut openmosix_testbed::session::AgentSession,
    mut busy: impl FnMut() -> bool,
) -> Vec<f64> {
    let mut times = Vec::new();
    while busy() {
        let t = Instant::now();
        let answer = session.request(serde_json::json!({"op":"node"}));
        assert!(answer.get("ok").is_some(), "{answer}");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(10));
    }
    times.sort_by(f64::total_cmp);
    times
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

#[test]
fn node_answers_stay_quick_while_a_256_mib_process_is_dumped() {
    use openmosix_testbed::copies::Counter;
    use openmosix_testbed::session::AgentSession;
    let _g = serial();
    let job = Counter::start_big(bed(), 1, "latency", 256);
    let mut session = AgentSession::open(bed(), 1);
    let idle_until = Instant::now() + Duration::from_secs(3);
    let idle = node_latencies(&mut session, || Instant::now() < idle_until);
    let mut client = bed()
        .cli_command(&["migrate", "1", &job.pid.to_string(), "2"])
        .spawn()
        .expect("migrate");
    let during = node_latencies(&mut session, || matches!(client.try_wait(), Ok(None)));
    let (p50, p99) = (percentile(&idle, 0.5), percentile(&during, 0.99));
    eprintln!(
        "node round trip: idle p50 {p50:.1} ms ({} samples); during the move p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms ({} samples)",
        idle.len(),
        percentile(&during, 0.5),
        during.last().copied().unwrap_or(f64::NAN),
        during.len()
    );
    session.close();
    job.kill_everywhere(bed());
    assert!(during.len() >= 20, "too few samples: {}", during.len());
    assert!(
        p99 <= p50 + 50.0,
        "a move delayed node answers: p99 {p99:.1} ms against {p50:.1} ms idle"
    );
}

#[test]
fn node_answers_stay_quick_while_a_change_waits_for_the_state_lock() {
    use openmosix_testbed::session::AgentSession;
    let _g = serial();
    let lock = bed().node_state(1).join("agent-state.lock");
    let lock_s = lock.to_string_lossy().into_owned();
    let mut session = AgentSession::open(bed(), 1);
    let idle_until = Instant::now() + Duration::from_millis(500);
    let idle = node_latencies(&mut session, || Instant::now() < idle_until);
    // Another agent process (here: flock) holds the state lock for 3 s.
    let holder = std::thread::spawn(move || bed().exec(1, &["flock", &lock_s, "sleep", "3"]));
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let change = session.send(serde_json::json!({
        "op": "admin_set",
        "change": {"what": "switch", "switch": "quiet", "on": false}
    }));
    let waiting_until = Instant::now() + Duration::from_secs(2);
    let during = node_latencies(&mut session, || Instant::now() < waiting_until);
    let answer = session.answer(change);
    assert!(answer.get("ok").is_some(), "the change failed: {answer}");
    // It did wait for the lock (held 3 s from 0.3 s before it was asked).
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "the change did not wait"
    );
    let _ = holder.join();
    session.close();
    let (p50, p99) = (percentile(&idle, 0.5), percentile(&during, 0.99));
    eprintln!(
        "node round trip while a change waits for the state lock: p99 {p99:.1} ms (idle p50 {p50:.1} ms, {} samples)",
        during.len()
    );
    assert!(during.len() >= 20, "too few samples: {}", during.len());
    assert!(
        p99 <= p50 + 50.0,
        "a state-lock wait delayed node answers: p99 {p99:.1} ms"
    );
}
