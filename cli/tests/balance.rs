//! Automatic load balancing on a real 4-node testbed: `openmosix balance` moving real
//! CPU-bound jobs with real criu (docs/balancing.md).
//!
//! The jobs are `nice -n 19` busy loops tagged in their command line, so they can be found
//! on whichever node they run; every test kills its own by pid when it ends.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openmosix_testbed::{Testbed, process, serial, wait};
use serde_json::Value;

const NODES: u32 = 4;
const HOLDOFF: u64 = 15;
const LOOP: &str = "while :; do :; done";

fn bed() -> &'static Testbed {
    Testbed::shared("tbal", 241, NODES)
}

/// `openmosix --timeout 20 args`: CI machines may be busy.
fn ok(args: &[&str]) -> String {
    let mut all = vec!["--timeout", "20"];
    all.extend_from_slice(args);
    bed().cli_ok(&all)
}

/// Every node takes part, with the same speed, no switch in the way.
fn setup() {
    for n in 1..=NODES {
        let n = n.to_string();
        for verb in ["nostay", "noblock", "nolstay", "noquiet"] {
            ok(&["mosctl", &n, verb]);
        }
        ok(&["mosctl", &n, "setspeed", "10000"]);
    }
}

/// The pids of processes whose command line contains `tag`, per node.
fn find(tag: &str) -> BTreeMap<u32, Vec<i64>> {
    (1..=NODES)
        .map(|n| {
            let pids = ok(&["--json", "ps", &n.to_string()])
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
                .filter(|p| p["cmdline"].as_str().is_some_and(|c| c.contains(tag)))
                .filter_map(|p| p["pid"].as_i64())
                .collect();
            (n, pids)
        })
        .collect()
}

fn counts(tag: &str) -> BTreeMap<u32, usize> {
    find(tag).into_iter().map(|(n, p)| (n, p.len())).collect()
}

/// Processes started by one test (found by their tag), killed by pid when dropped.
struct Tagged(String);

impl Tagged {
    fn new(what: &str) -> Tagged {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        Tagged(format!("tbal-{what}-{}-{nanos}", std::process::id()))
    }

    /// Four `--cpujob` jobs started on node 2, tagged `what`.
    fn cpu_jobs(what: &str) -> Tagged {
        let jobs = Tagged::new(what);
        for _ in 0..4 {
            jobs.run(2, &["--cpujob"]);
        }
        jobs
    }

    /// Starts a job with `openmosix run NODE [flags] -- nice -n 19 sh -c LOOP TAG`.
    fn run(&self, node: u32, flags: &[&str]) -> i64 {
        let node = node.to_string();
        let mut args = vec!["run", &node];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "nice", "-n", "19", "sh", "-c", LOOP, &self.0]);
        ok(&args).trim().parse().expect("pid")
    }
}

impl Drop for Tagged {
    fn drop(&mut self) {
        for (n, pids) in find(&self.0) {
            for pid in pids {
                let _ = bed().cli(&[
                    "--timeout",
                    "20",
                    "signal",
                    &n.to_string(),
                    &pid.to_string(),
                    "KILL",
                ]);
            }
        }
    }
}

/// A running `openmosix --json balance`; stopped (SIGTERM, then SIGKILL) when dropped.
struct Balancer {
    child: Child,
    reports: Arc<Mutex<Vec<Value>>>,
    reader: Option<JoinHandle<()>>,
}

impl Balancer {
    fn start() -> Balancer {
        let mut child = bed()
            .cli_command(&[
                "--json",
                "--timeout",
                "20",
                "balance",
                "--holdoff",
                &HOLDOFF.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start openmosix balance");
        let stdout = child.stdout.take().expect("stdout");
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).expect("a JSON report line");
                sink.lock().expect("reports").push(v);
            }
        });
        Balancer {
            child,
            reports,
            reader: Some(reader),
        }
    }

    fn reports(&self, event: &str) -> Vec<Value> {
        self.reports
            .lock()
            .expect("reports")
            .iter()
            .filter(|r| r["event"] == event)
            .cloned()
            .collect()
    }

    /// SIGTERM; it must end within 30 s (after the moves under way) and exit 0.
    fn stop(mut self) -> Vec<Value> {
        let status = process::terminate(&mut self.child, Duration::from_secs(30), "balance");
        assert!(status.success(), "balance exited with {status}");
        if let Some(r) = self.reader.take() {
            r.join().expect("reader");
        }
        self.reports("moved")
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits up to `secs` for `cond` on the jobs per node; returns how long it took.
fn within(
    secs: u64,
    what: &str,
    tag: &str,
    cond: impl Fn(&BTreeMap<u32, usize>) -> bool,
) -> Duration {
    let start = Instant::now();
    wait::poll(
        Duration::from_secs(secs),
        Duration::from_millis(500),
        what,
        || {
            let c = counts(tag);
            if cond(&c) {
                Ok(())
            } else {
                Err(format!("jobs per node {c:?}"))
            }
        },
    );
    start.elapsed()
}

/// No process (by its identity, home node and pid there) moved twice within the hold-off.
fn assert_holdoff(moves: &[Value]) {
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for m in moves {
        let id = m["home"].to_string();
        let t = m["time_ms"].as_u64().expect("time_ms");
        let took = m["ms"].as_u64().expect("ms");
        if let Some(prev) = last.get(&id) {
            // `time_ms` is when a move ended; the next one started `took` before its end.
            let gap = (t - took).saturating_sub(*prev);
            // (Both times are read a moment after the instants the balancer goes by.)
            assert!(
                gap + 50 >= HOLDOFF * 1000,
                "process {id} moved again {gap} ms after its last move: {moves:?}"
            );
        }
        last.insert(id, t);
    }
}

/// The agents logged every move as automatic, so the collector's events table has it.
fn assert_logged(moves: &[Value]) {
    for m in moves {
        let from = m["from"].as_u64().expect("from");
        let log = bed()
            .state_dir
            .join(format!("node{from}/state/events.jsonl"));
        let text = std::fs::read_to_string(&log).expect("the node's event log");
        let pid = m["pid"].as_i64();
        let logged = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|e| {
                e["kind"] == "migrate_out"
                    && e["auto"] == true
                    && e["pid"].as_i64() == pid
                    && e["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("load balancer"))
            });
        assert!(
            logged,
            "no automatic migrate_out event for {m} in {}",
            log.display()
        );
    }
}

#[test]
fn four_jobs_spread_and_system_processes_never_move() {
    let _g = serial();
    setup();
    // Not candidates: a CPU hog started outside the suite, and a mosrun job with nomig.
    let sys = Tagged::new("sys");
    assert!(
        bed()
            .exec_status(
                2,
                &["setsid", "-f", "nice", "-n", "19", "sh", "-c", LOOP, &sys.0]
            )
            .success()
    );
    let nomig = Tagged::new("nomig");
    let nomig_pid = nomig.run(2, &["--nomig"]);
    let before = find(&sys.0);
    assert_eq!(
        before[&2].len(),
        1,
        "the system hog runs on node 2: {before:?}"
    );

    let balancer = Balancer::start();
    let jobs = Tagged::new("job");
    for i in 0..4 {
        jobs.run(2, if i % 2 == 0 { &["--cpujob"] } else { &[] });
    }
    let took = within(60, "no node with more than two jobs", &jobs.0, |c| {
        c.values().sum::<usize>() == 4 && c.values().all(|&n| n <= 2)
    });
    eprintln!("spread in {took:?}: {:?}", counts(&jobs.0));
    // A few more rounds: nothing else may move, and the non-candidates never do.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(find(&sys.0), before, "the system process moved");
    assert_eq!(find(&nomig.0)[&2], vec![nomig_pid], "the nomig job moved");
    let moves = balancer.stop();
    assert!(moves.len() >= 2, "{moves:?}");
    for m in &moves {
        assert_ne!(m["pid"].as_i64(), Some(nomig_pid), "{m}");
        assert_ne!(m["pid"].as_i64(), Some(before[&2][0]), "{m}");
    }
    assert_holdoff(&moves);
    assert_logged(&moves);
}

#[test]
fn a_blocked_node_gets_none() {
    let _g = serial();
    setup();
    ok(&["mosctl", "3", "block"]);
    let balancer = Balancer::start();
    let jobs = Tagged::cpu_jobs("blk");
    within(60, "spread over nodes 1, 2 and 4", &jobs.0, |c| {
        c.values().sum::<usize>() == 4 && c.values().all(|&n| n <= 2) && c[&3] == 0
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(counts(&jobs.0)[&3], 0);
    let moves = balancer.stop();
    assert!(!moves.is_empty());
    assert!(moves.iter().all(|m| m["to"] != 3), "{moves:?}");
    ok(&["mosctl", "3", "noblock"]);
}

#[test]
fn a_slow_node_is_emptied_first_and_stay_keeps_a_node_out() {
    let _g = serial();
    setup();
    // Node 2 made slow (HOWTO 9.2); node 4 does not take part.
    ok(&["mosctl", "2", "setspeed", "100"]);
    ok(&["mosctl", "4", "stay"]);
    let balancer = Balancer::start();
    let jobs = Tagged::cpu_jobs("slow");
    within(60, "node 2 empty", &jobs.0, |c| {
        c.values().sum::<usize>() == 4 && c[&2] == 0
    });
    let c = counts(&jobs.0);
    assert_eq!((c[&1], c[&3], c[&4]), (2, 2, 0), "{c:?}");
    let moves = balancer.reports("moved");
    assert!(moves.iter().all(|m| m["from"] == 2), "{moves:?}");

    // Node 2 fast again and node 4 in: work flows back, each process at most once per
    // hold-off.
    ok(&["mosctl", "2", "setspeed", "10000"]);
    ok(&["mosctl", "4", "nostay"]);
    within(60, "one job per node", &jobs.0, |c| {
        c.values().all(|&n| n == 1)
    });
    let moves = balancer.stop();
    assert_holdoff(&moves);
    assert_logged(&moves);
}
