//! openmosixcollector against the real 3-node testbed (real sshd, real agents over SSH).
//! Needs root and the workspace's binaries (`cargo build --workspace --bins`).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openmosix_store::History;
use openmosix_testbed::wait::until_some;
use openmosix_testbed::{Testbed, describe, history, process, serial};

fn bed() -> &'static Testbed {
    Testbed::shared("tcoll", 214, 3)
}

const BIN: &str = env!("CARGO_BIN_EXE_openmosixcollector");

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// A folder with the history, the pid file and the collector's output.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("history.db")
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("collector.pid")
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("foreground.log")
    }

    /// `openmosixcollector ARGS --cluster … --db … --pid-file …`.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--cluster")
            .arg(&bed().cluster_file)
            .arg("--db")
            .arg(self.db())
            .arg("--pid-file")
            .arg(self.pid_file())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run openmosixcollector")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("openmosixcollector {args:?}"), &out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The collector in the foreground, as a child of the test.
    fn foreground(&self, extra: &[&str]) -> Foreground {
        let log = std::fs::File::create(self.log()).expect("log");
        let child = self
            .cmd(&[&["--foreground"], extra].concat())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the collector");
        Foreground {
            child,
            log: self.log(),
        }
    }

    fn history(&self) -> History {
        History::open(&self.db()).expect("open the history")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
}

struct Foreground {
    child: Child,
    log: PathBuf,
}

impl Foreground {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    /// SIGTERM and wait for a clean exit.
    fn stop(&mut self) {
        let st = process::terminate(&mut self.child, Duration::from_secs(15), "the collector");
        assert!(
            st.success(),
            "collector exit {st}: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// Sample rows per node (1..=3) of the file the path leads to now (none before the
/// collector made it).
fn counts(db: &Path) -> [i64; 3] {
    History::open(db).map_or([0; 3], |h| history::sample_counts(&h, "samples_all"))
}

#[test]
fn daemon_collects_checkpoints_rotates_and_stops() {
    let _g = serial();
    let d = Dir::new();
    let out = d.ok(&["-d"]);
    assert!(out.contains("started (pid"), "{out}");
    let pid: i32 = std::fs::read_to_string(d.pid_file())
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    // A second -d is refused while one runs.
    let second = d.run(&["-d"]);
    assert!(
        !second.status.success(),
        "{}",
        describe("openmosixcollector -d", &second)
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already running"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // About 15 s of collection: at least 12 samples of every node.
    let start = Instant::now();
    let c = until_some(Duration::from_secs(30), "12 samples per node", || {
        let c = counts(&d.db());
        c.iter().all(|&n| n >= 12).then_some(c)
    });
    assert!(start.elapsed() <= Duration::from_secs(20), "{c:?}");

    // -n adds a checkpoint.
    let out = d.ok(&["-n", "job started"]);
    assert!(out.contains("checkpoint written"), "{out}");
    d.ok(&["-n"]);
    let h = d.history();
    let cps = h.checkpoints(0, i64::MAX / 2000).expect("checkpoints");
    assert_eq!(
        cps.iter().map(|c| c.note.as_str()).collect::<Vec<_>>(),
        ["job started", "checkpoint"]
    );
    drop(h);

    // -r: a new file; the old one keeps its rows.
    let old = std::fs::canonicalize(d.db()).expect("live file");
    let before = counts(&old);
    let out = d.ok(&["-r"]);
    assert!(out.contains("history saved as"), "{out}");
    let new = std::fs::canonicalize(d.db()).expect("live file");
    assert_ne!(old, new);
    let kept = counts(&old);
    assert!(
        kept.iter().zip(before).all(|(k, b)| *k >= b && *k >= 12),
        "{kept:?} {before:?}"
    );
    let old_h = History::open(&old).expect("saved history");
    assert_eq!(old_h.checkpoints(0, i64::MAX / 2000).expect("cps").len(), 2);
    drop(old_h);
    until_some(
        Duration::from_secs(15),
        "samples in the new history",
        || counts(&new).iter().all(|&n| n >= 2).then_some(()),
    );
    assert_eq!(
        d.history().meta("previous").expect("meta"),
        old.file_name().map(|n| n.to_string_lossy().into_owned())
    );

    // -k stops it; the pid file is gone.
    let out = d.ok(&["-k"]);
    assert!(out.contains("stopped"), "{out}");
    assert!(!d.pid_file().exists());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || {
            // A zombie until init reaps it: not running.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        }
    );
    let again = d.run(&["-k"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not running"));
    // The daemon's log is beside the history.
    let log = std::fs::read_to_string(d.dir.path().join("openmosixcollector.log")).unwrap();
    assert!(log.contains("saved the history"), "{log}");
}

#[test]
fn no_argument_prints_a_short_help() {
    let out = Command::new(BIN).output().expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["-d", "-k", "-n", "-r"] {
        assert!(
            help.contains(&format!("openmosixcollector {flag}")),
            "{help}"
        );
    }
}

#[test]
fn kill_9_while_writing_never_corrupts_the_history() {
    let _g = serial();
    let d = Dir::new();
    for round in 0..20u64 {
        let mut c = d.foreground(&[]);
        // Wait until it writes, then kill it at a different point of the second each time.
        let first = until_some(Duration::from_secs(30), "the first ticks", || {
            let h = History::open(&d.db()).ok()?;
            let (_, last) = h.range().ok()??;
            (last >= now() as i64 - 1).then_some(last)
        });
        let offset = (round * 137) % 1000;
        let target = first as f64 + 2.0 + offset as f64 / 1000.0;
        let pause = (target - now()).max(0.0);
        std::thread::sleep(Duration::from_secs_f64(pause));
        let seen = d.history();
        let committed: i64 = seen
            .connection()
            .query_row("SELECT count(*) FROM samples_all", [], |r| r.get(0))
            .expect("count");
        drop(seen);
        let killed_at = now();
        c.kill9();

        let file = std::fs::canonicalize(d.db()).expect("live file");
        let conn = rusqlite::Connection::open(&file).expect("open after kill");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok", "round {round}");
        let (count, last): (i64, i64) = conn
            .query_row("SELECT count(*), max(time) FROM samples_all", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("count");
        // Nothing that was committed is lost…
        assert!(count >= committed, "round {round}: {count} < {committed}");
        // …and at most the tick in flight is missing (one more tick of slack for a tick
        // still waiting on its nodes).
        let due = killed_at.floor() as i64 - 2;
        assert!(
            last >= due,
            "round {round}: last tick {last}, killed at {killed_at:.3}: {}",
            d.log_text()
        );
    }
}

/// Starts node 3's sshd again even if the test fails half-way.
struct SshdGuard;

impl Drop for SshdGuard {
    fn drop(&mut self) {
        let _ = bed().try_sshd_start(3);
    }
}

#[test]
fn a_dead_node_leaves_a_gap_and_down_up_events() {
    let _g = serial();
    let d = Dir::new();
    let mut c = d.foreground(&[]);
    until_some(Duration::from_secs(30), "samples of every node", || {
        counts(&d.db()).iter().all(|&n| n >= 3).then_some(())
    });
    let guard = SshdGuard;
    let stopped = now();
    bed().sshd_stop(3);
    std::thread::sleep(Duration::from_secs(6));
    let restarted = now();
    bed().sshd_start(3);
    drop(guard);
    until_some(Duration::from_secs(30), "node 3 back", || {
        let h = History::open(&d.db()).ok()?;
        let s = h.samples(3, restarted as i64, i64::MAX / 2).ok()?;
        (s.len() >= 3).then_some(())
    });
    c.stop();

    let h = d.history();
    let s3 = h.samples(3, 0, i64::MAX / 2).expect("samples");
    let in_gap: Vec<i64> = s3
        .iter()
        .map(|s| s.time)
        .filter(|&t| t >= stopped as i64 + 2 && t < restarted as i64)
        .collect();
    assert!(in_gap.is_empty(), "node 3 sampled while down: {in_gap:?}");
    let longest = s3.windows(2).map(|w| w[1].time - w[0].time).max();
    assert!(longest >= Some(4), "{longest:?}");
    // The other nodes went on.
    for node in [1, 2] {
        let s = h
            .samples(node, stopped as i64, restarted as i64)
            .expect("samples");
        assert!(s.len() >= 5, "node {node}: {}", s.len());
    }
    let events = h.events(0, i64::MAX / 2000).expect("events");
    let of3: Vec<(&str, i64)> = events
        .iter()
        .filter(|e| e.node == 3)
        .map(|e| (e.kind.as_str(), e.time_ms))
        .collect();
    let down = of3.iter().find(|e| e.0 == "down").expect("a down event");
    let up = of3.iter().find(|e| e.0 == "up").expect("an up event");
    assert!(down.1 < up.1, "{of3:?}");
    assert!(down.1 as f64 >= stopped * 1000.0 - 1000.0, "{of3:?}");
    assert!(
        events.iter().all(|e| e.node == 3 || e.kind != "down"),
        "{events:?}"
    );
}

#[test]
fn what_the_suite_does_becomes_events() {
    let _g = serial();
    let d = Dir::new();
    let mut c = d.foreground(&[]);
    until_some(Duration::from_secs(30), "samples of every node", || {
        counts(&d.db()).iter().all(|&n| n >= 2).then_some(())
    });
    let cli = |args: &[&str]| bed().cli_ok(args);
    let pid = cli(&["run", "2", "--", "sleep", "4747"]).trim().to_owned();
    cli(&["renice", "2", &pid, "5"]);
    cli(&["mosctl", "2", "block"]);
    cli(&["mosctl", "2", "noblock"]);
    cli(&["signal", "2", &pid, "KILL"]);
    let pid_n: i32 = pid.parse().expect("pid");
    let want = [
        ("run", format!("started job {pid}: sleep 4747")),
        (
            "renice",
            format!("set the nice value of process {pid} to 5"),
        ),
        ("admin", "switched block on".to_owned()),
        ("admin", "switched block off".to_owned()),
        ("signal", format!("sent SIGKILL to process {pid}")),
    ];
    let events = until_some(Duration::from_secs(15), "the suite's events", || {
        let e = History::open(&d.db())
            .ok()?
            .events(0, i64::MAX / 2000)
            .ok()?;
        let found: Vec<(String, String)> = e
            .iter()
            .filter(|e| e.node == 2 && e.kind != "down" && e.kind != "up")
            .map(|e| (e.kind.clone(), e.text.clone()))
            .collect();
        (found.len() >= want.len()).then_some(e)
    });
    c.stop();
    let of2: Vec<_> = events.iter().filter(|e| e.node == 2).collect();
    for (kind, text) in &want {
        assert!(
            of2.iter().any(|e| e.kind == *kind && e.text == *text),
            "{kind}: {text} not in {of2:?}"
        );
    }
    let renice = of2.iter().find(|e| e.kind == "renice").expect("renice");
    assert_eq!(renice.pid, Some(pid_n));
    assert!(
        events.iter().all(|e| e.node == 2 || e.kind == "up"),
        "{events:?}"
    );
    // Raw SQL sees them too (docs/collector.md).
    let n: i64 = d
        .history()
        .connection()
        .query_row(
            "SELECT count(*) FROM events WHERE node = 2 AND kind = 'admin'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert!(n >= 2);
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn metrics_pass_promtool() {
    let _g = serial();
    let promtool = Path::new("/usr/bin/promtool");
    assert!(
        promtool.is_file(),
        "promtool is missing: run scripts/install-test-deps.sh (Debian's prometheus package)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let d = Dir::new();
    let mut c = d.foreground(&["--metrics", &addr]);
    let body = until_some(Duration::from_secs(30), "metrics of three nodes up", || {
        let r = std::net::TcpStream::connect(&addr)
            .ok()
            .map(|_| http_get(&addr, "/metrics"))?;
        let (head, body) = r.split_once("\r\n\r\n")?;
        (head.starts_with("HTTP/1.1 200")
            && (1..=3).all(|i| body.contains(&format!("openmosix_node_load{{node=\"{i}\"}}")))
            && body.contains("openmosix_collector_ticks_total"))
        .then(|| body.to_owned())
    });
    assert!(
        body.contains("openmosix_node_up{node=\"2\",address=\"10.77.214.12\"} 1"),
        "{body}"
    );
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("feed promtool");
    let out = check.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "{}\n{body}",
        describe("promtool", &out)
    );
    assert!(http_get(&addr, "/nothing").starts_with("HTTP/1.1 404"));
    c.stop();
}
