//! `openmosixanalyzer --prometheus URL` against a real Prometheus (Debian's `prometheus`,
//! started here on loopback) scraping a real collector's `--metrics` every second, the
//! collector polling the 3-node testbed `prm` (net 154): the analyzer's Prometheus
//! series, checkpoint, events and "find out" agree with the SQLite history of the same
//! run within one sample, and the window draws every node's line. Bad answers of a server
//! are sentences in the window, never a panic.
//!
//! Needs root, `scripts/install-test-deps.sh` and the binaries:
//! `cargo build -p openmosix-collector -p openmosix-testbed -p openmosix-agent -p openmosix-cli --bins`.

#![allow(clippy::unwrap_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use openmosix_store::History;
use openmosix_testbed::testbed::bin;
use openmosix_testbed::wait::until_some;
use openmosix_testbed::{Testbed, describe, process, serial};
use openmosixanalyzer::prometheus::Client;
use openmosixanalyzer::{Analyzer, Overview, time_text};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const MIB: f64 = (1u64 << 20) as f64;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process ended (SIGTERM, then SIGKILL) when dropped.
struct Running(Child, &'static str);

impl Drop for Running {
    fn drop(&mut self) {
        process::terminate(&mut self.0, Duration::from_secs(15), self.1);
    }
}

/// Prometheus on 127.0.0.1, scraping `target` every second into `dir/tsdb`.
fn prometheus(dir: &Path, target: &str) -> (Running, String) {
    assert!(
        Path::new(PROMETHEUS).is_file(),
        "{PROMETHEUS} is missing: run scripts/install-test-deps.sh (Debian's prometheus package)"
    );
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: openmosix\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={listen}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    (Running(child, "prometheus"), format!("http://{listen}"))
}

fn settle(h: &mut Harness<'_, Analyzer>) {
    for _ in 0..8 {
        assert!(
            h.state_mut().wait_idle(Duration::from_secs(30)),
            "the Prometheus thread did not answer"
        );
        h.run_steps(2);
        if !h.state().loading() {
            return;
        }
    }
    panic!("the analyzer keeps asking");
}

#[test]
fn prometheus_matches_the_sqlite_history() {
    let _g = serial();
    let bed = Testbed::shared("prm", 154, 3);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let metrics = format!("127.0.0.1:{}", free_port());
    let collector = |args: &[&str]| {
        let mut c = Command::new(bin("openmosixcollector"));
        c.args(args)
            .arg("--cluster")
            .arg(&bed.cluster_file)
            .arg("--db")
            .arg(&db)
            .arg("--pid-file")
            .arg(dir.path().join("collector.pid"))
            .stdin(Stdio::null());
        c
    };
    // Prometheus first, so that it sees the collector's first ticks.
    let (_prom, url) = prometheus(dir.path(), &metrics);
    let client = Client::new(&url).unwrap();
    // Its first scrape (of nothing yet) comes once its target list is set up, up to
    // a few seconds after start.
    until_some(Duration::from_secs(60), "Prometheus scraping", || {
        let up = client
            .instant("up{job=\"openmosix\"}", openmosix_store::now() as f64)
            .ok()?;
        (!up.is_empty()).then_some(())
    });
    let log = std::fs::File::create(dir.path().join("collector.log")).unwrap();
    let _collector = Running(
        collector(&["--foreground", "--metrics", &metrics])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the collector"),
        "the collector",
    );
    let now = || openmosix_store::now() as f64;
    let count = |q: &str| {
        client
            .instant(q, now())
            .ok()
            .and_then(|s| openmosixanalyzer::prometheus::scalar(&s))
    };
    until_some(
        Duration::from_secs(60),
        "Prometheus scraped three nodes",
        || (count("count(openmosix_node_load)")? >= 3.0).then_some(()),
    );
    // Something to see: a busy job on node 2 (load, a `run` event), a checkpoint from
    // another process (`-n`), then the job killed (a `signal` event).
    let pid = bed.run_job(2, &[], &["sh", "-c", "while :; do :; done"]);
    std::thread::sleep(Duration::from_secs(8));
    let out = collector(&["-n", "prm checkpoint"]).output().unwrap();
    assert!(out.status.success(), "{}", describe("-n", &out));
    std::thread::sleep(Duration::from_secs(4));
    bed.cli_ok(&["signal", "2", &pid.to_string(), "KILL"]);
    until_some(Duration::from_secs(30), "the marks scraped", || {
        let cp = count("count(openmosix_collector_last_checkpoint_timestamp_seconds)")?;
        let ev = count("count(openmosix_node_last_event_timestamp_seconds{node=\"2\"})")?;
        (cp >= 1.0 && ev >= 2.0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    promtool_accepts(&metrics);

    let analyzer = Analyzer::open_prometheus(&url).unwrap();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1200.0, 700.0))
        .build_ui_state(|ui, a: &mut Analyzer| a.ui(ui), analyzer);
    h.run_steps(4);
    settle(&mut h);
    let (lo, hi) = h.state().range().expect("a range from Prometheus");
    let history = History::open(&db).unwrap();
    let (slo, shi) = history.range().unwrap().unwrap();
    assert!(
        (lo - slo).abs() <= 2,
        "first tick {lo} vs first sample {slo}"
    );
    assert!(shi >= hi && shi - hi <= 5, "last tick {hi} vs {shi}");
    let nodes: Vec<(u32, String)> = h
        .state()
        .nodes()
        .iter()
        .map(|n| (n.id, n.address.clone()))
        .collect();
    assert_eq!(
        nodes,
        (1..=3).map(|i| (i, bed.addr(i))).collect::<Vec<_>>(),
        "nodes"
    );
    // One-second buckets: each holds one scrape, the figures of the tick before it.
    h.state_mut().set_view(lo, hi);
    h.run_steps(2);
    settle(&mut h);
    let (width, buckets) = h.state().buckets();
    assert_eq!(width, 1, "a bucket a second for {} s", hi - lo);
    assert_eq!(buckets.len(), 3);
    let mut busy = 0;
    for (node, list) in &buckets {
        let samples = history.samples(*node, lo - 3, hi + 3).unwrap();
        assert!(
            list.len() as i64 >= (hi - lo) / 2,
            "node {node}: {} buckets",
            list.len()
        );
        for b in list {
            assert_eq!(b.min_load, b.max_load, "one scrape a bucket");
            let near = |s: &&openmosix_store::Sample| s.time >= b.time - 2 && s.time <= b.time + 1;
            let same = samples.iter().filter(near).any(|s| {
                (s.load - b.max_load).abs() <= 0.5
                    && (s.mem as f64 / MIB - b.max_mem as f64 / MIB).abs() <= 1.0
                    && (s.rmem as f64 / MIB - b.max_rmem as f64 / MIB).abs() <= 1.0
            });
            assert!(
                same,
                "node {node} at {}: Prometheus load {} mem {} rmem {}; SQLite around it: {:?}",
                b.time,
                b.max_load,
                b.max_mem,
                b.max_rmem,
                samples.iter().filter(near).collect::<Vec<_>>()
            );
            if *node == 2 && b.max_load > 10.0 {
                busy += 1;
            }
        }
    }
    let peak = |n: u32| {
        buckets
            .iter()
            .filter(|b| b.0 == n)
            .flat_map(|b| &b.1)
            .map(|b| b.max_load)
            .fold(0.0, f64::max)
    };
    assert!(
        busy >= 3 && peak(2) > peak(1) && peak(2) > peak(3),
        "node 2: busy job shows in Prometheus load ({busy} buckets; peaks {} {} {})",
        peak(1),
        peak(2),
        peak(3)
    );

    // The checkpoint, at the very time SQLite has, and the events of node 2.
    let cps = history.checkpoints(lo, hi).unwrap();
    assert_eq!(cps.len(), 1, "{cps:?}");
    assert_eq!(h.state().checkpoints(), &cps[..]);
    let sqlite_events = history.events(lo, hi).unwrap();
    for kind in ["run", "signal"] {
        let want = sqlite_events
            .iter()
            .find(|e| e.node == 2 && e.kind == kind)
            .unwrap_or_else(|| panic!("SQLite has no {kind} event: {sqlite_events:?}"));
        let got = h
            .state()
            .events()
            .iter()
            .find(|e| e.node == 2 && e.kind == kind);
        assert!(
            got.is_some_and(|g| (g.time_ms - want.time_ms).abs() <= 1000),
            "{kind}: Prometheus {got:?}, SQLite {want:?}"
        );
    }

    // The window: every node's line, the marks, where the figures come from.
    let series = h.state().visible_series();
    assert_eq!(
        series.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(series.iter().all(|s| s.1 >= 10), "{series:?}");
    h.get_by_label(&format!("Prometheus: {url}"));
    h.get_by_label("checkpoints: 1");
    h.get_by_label(&format!(
        "checkpoint {}: prm checkpoint",
        time_text(cps[0].time_ms.div_euclid(1000))
    ));
    h.get_by_label("find out node 3");
    h.state_mut().set_overview(Overview::Memory);
    h.run_steps(2);
    assert!(h.state().visible_series().iter().all(|s| s.1 >= 10));

    // "find out" of node 2 against the SQLite figures of the same range.
    h.state_mut().find_out(Some(2));
    settle(&mut h);
    let (from, to) = h.state().shown_range();
    let want = history.stats(Some(2), from, to).unwrap().unwrap();
    let got = h.state().find_outs()[0].clone();
    let s = got
        .stats
        .unwrap_or_else(|| panic!("find out: {:?}", got.error));
    assert!(s.samples.abs_diff(want.samples) <= 2, "{s:?} vs {want:?}");
    assert!(
        (s.max_load - want.max_load).abs() <= 0.5,
        "{s:?} vs {want:?}"
    );
    // SQLite keeps memory in whole MiB.
    assert_eq!(s.cpus, want.cpus);
    assert!(s.tmem.abs_diff(want.tmem) < 1 << 20, "{s:?} vs {want:?}");
    h.run_steps(2);
    h.get_by_label(&format!("CPUs: {}", want.cpus));
}

/// `promtool check metrics` accepts the collector's exposition, marks included.
fn promtool_accepts(addr: &str) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    assert!(
        body.contains("openmosix_node_events_total{node=\"2\",kind=\"run\"}"),
        "{body}"
    );
    let mut check = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{body}",
        describe("promtool", &out)
    );
}

/// A server that answers every request with `status` and `body`.
fn fake_server(status: &str, body: &str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    url
}

#[test]
fn bad_answers_are_sentences() {
    let big = format!(
        "{{\"status\":\"success\",\"data\":\"{}\"}}",
        "x".repeat(65 << 20)
    );
    let cases = [
        ("500 Oops", "<html>no</html>".to_owned(), "is not the query API's JSON"),
        (
            "400 Bad",
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 1"}"#.to_owned(),
            "HTTP 400: parse error at char 1",
        ),
        (
            "200 OK",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#
                .to_owned(),
            "a sample value is not a number",
        ),
        (
            "200 OK",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":"#.to_owned(),
            "is not the query API's JSON",
        ),
        ("200 OK", big, "the answer is larger than 64 MiB"),
    ];
    for (status, body, says) in cases {
        let url = fake_server(status, &body);
        let analyzer = Analyzer::open_prometheus(&url).unwrap();
        let mut h = Harness::builder()
            .with_size(egui::vec2(900.0, 500.0))
            .build_ui_state(|ui, a: &mut Analyzer| a.ui(ui), analyzer);
        h.run_steps(2);
        settle(&mut h);
        let label = h.query_by_label_contains(says);
        assert!(label.is_some(), "no error saying {says:?} for {url}");
    }
    // Nothing listens there: the window says so too.
    let port = free_port();
    let analyzer = Analyzer::open_prometheus(&format!("http://127.0.0.1:{port}")).unwrap();
    let mut h = Harness::builder()
        .with_size(egui::vec2(900.0, 500.0))
        .build_ui_state(|ui, a: &mut Analyzer| a.ui(ui), analyzer);
    h.run_steps(2);
    settle(&mut h);
    assert!(
        h.query_by_label_contains(&format!("Prometheus at http://127.0.0.1:{port}: "))
            .is_some()
    );
    assert!(Analyzer::open_prometheus("https://example.invalid").is_err());
}
