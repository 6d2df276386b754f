//! criu's checks run in the background (docs/protocol.md, `readiness`): an agent whose
//! checks are not kept yet answers at once and says `checking`; whatever needs criu (the
//! `readiness` op, a dump, the `hello` of an older client) waits for them and keeps to
//! what they found. Real agents on a 3-node testbed, with a real criu behind a wrapper
//! that makes its checks slow (or fail).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use openmosix_testbed::{Testbed, serial};
use serde_json::{Value, json};

fn bed() -> &'static Testbed {
    Testbed::shared("tcrchk", 243, 3)
}

/// How long the wrapper's `criu check` sleeps before criu runs.
const SLOW: Duration = Duration::from_secs(2);

/// A real criu of this machine (the agent looks in the same places).
fn real_criu() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("criu"))
        .find(|p| p.is_file())
        .expect("criu is installed (scripts/install-criu.sh)")
}

/// A criu whose `check` first sleeps [`SLOW`] and then, if `fails`, fails.
fn wrapper(dir: &Path, fails: bool) -> PathBuf {
    let script = dir.join("criu");
    let then = if fails {
        "echo 'Error (criu/cr-check.c:1): this test says no' >&2; exit 1".to_owned()
    } else {
        format!("exec '{}' \"$@\"", real_criu().display())
    };
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = check ] && [ $# -eq 1 ] && {{ sleep {}; {then}; }}\nexec '{}' \"$@\"\n",
            SLOW.as_secs(),
            real_criu().display()
        ),
    )
    .expect("write the criu wrapper");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the criu wrapper");
    script
}

/// `openmosix-agent serve` on a node with a state folder of its own (no checks kept)
/// and the criu wrapper; one request at a time.
struct Session {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    next: u64,
    _dir: tempfile::TempDir,
}

impl Session {
    fn start(node: u32, fails: bool) -> Session {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let criu = wrapper(dir.path(), fails);
        let mut child = bed()
            .ssh_command(
                node,
                &[
                    "openmosix-agent",
                    "serve",
                    "--state-dir",
                    &state.to_string_lossy(),
                    "--criu",
                    &criu.to_string_lossy(),
                ],
            )
            .spawn()
            .expect("ssh");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        Session {
            child,
            stdin,
            lines,
            next: 1,
            _dir: dir,
        }
    }

    /// Sends `request` (an object without `id`), waits for its answer: the answer and
    /// how long it took.
    fn ask(&mut self, mut request: Value) -> (Value, Duration) {
        let id = self.next;
        self.next += 1;
        request["id"] = json!(id);
        let sent = Instant::now();
        writeln!(self.stdin, "{request}").expect("write a request");
        loop {
            let answer = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("no answer to {request}: {e}"));
            if answer["id"] == json!(id) {
                return (answer, sent.elapsed());
            }
        }
    }

    fn state(&self) -> PathBuf {
        self._dir.path().join("state")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_fresh_agent_answers_before_criu_checks_end() {
    let _g = serial();
    let started = Instant::now();
    let mut s = Session::start(2, false);
    let (hello, _) = s.ask(json!({"op": "hello", "protocol": 3}));
    let first = started.elapsed();
    assert!(first < SLOW, "hello took {first:?}: {hello}");
    let ok = &hello["ok"];
    assert_eq!(ok["protocol"], 3, "{hello}");
    assert_eq!(ok["checking"], true, "{hello}");
    assert_eq!(ok["migration"]["available"], false, "{hello}");
    assert!(
        ok["ops"]
            .as_array()
            .expect("ops")
            .contains(&json!("readiness")),
        "{hello}"
    );
    // The node's figures do not wait for criu.
    let (node, took) = s.ask(json!({"op": "node"}));
    assert!(node["ok"]["tmem"].as_u64().is_some_and(|m| m > 0), "{node}");
    assert!(started.elapsed() < SLOW, "node took {took:?}");
    // `readiness` answers once the checks have ended, with what they found.
    let (ready, _) = s.ask(json!({"op": "readiness"}));
    assert!(
        started.elapsed() >= SLOW,
        "readiness came before the checks ended"
    );
    assert_eq!(ready["ok"]["migration"]["available"], true, "{ready}");
    let (again, _) = s.ask(json!({"op": "hello", "protocol": 3}));
    assert_eq!(again["ok"].get("checking"), None, "{again}");
    assert_eq!(again["ok"]["migration"], ready["ok"]["migration"]);
    assert_eq!(again["ok"]["postcopy"], ready["ok"]["postcopy"]);
    // What they found is kept for the next agent.
    assert!(s.state().join("criu-check.json").is_file());
}

#[test]
fn an_older_client_gets_its_hello_once_the_checks_ended() {
    let _g = serial();
    let started = Instant::now();
    let mut s = Session::start(2, false);
    // A client of protocol 2 reads migration from hello only.
    let (hello, _) = s.ask(json!({"op": "hello", "protocol": 2}));
    assert!(
        started.elapsed() >= SLOW,
        "hello came before the checks ended"
    );
    let ok = &hello["ok"];
    assert_eq!(ok["protocol"], 2, "{hello}");
    assert_eq!(ok.get("checking"), None, "{hello}");
    assert_eq!(ok["migration"]["available"], true, "{hello}");
    assert!(
        !ok["ops"]
            .as_array()
            .expect("ops")
            .contains(&json!("readiness")),
        "{hello}"
    );
}

#[test]
fn a_dump_asked_before_the_checks_end_waits_for_them() {
    let _g = serial();
    let pid = bed().run_job(2, &[], &["sleep", "600"]);
    let pid32 = i32::try_from(pid).expect("pid");
    // criu fails its checks: the dump is refused for that reason, the process runs on.
    let started = Instant::now();
    let mut s = Session::start(2, true);
    let (refused, _) = s.ask(json!({"op": "dump", "pid": pid32, "to": 3}));
    assert!(started.elapsed() >= SLOW, "refused before the checks ended");
    assert_eq!(refused["err"]["kind"], "unsupported", "{refused}");
    let why = refused["err"]["message"].as_str().unwrap_or_default();
    assert!(
        why.contains("fails `criu check`") && why.contains("this test says no"),
        "{why}"
    );
    drop(s);
    assert_ne!(state_of(pid), Some("T".into()), "the process was stopped");
    // criu passes them: the dump waits for them, then dumps (the tree left stopped),
    // and resume lets it run on.
    let started = Instant::now();
    let mut s = Session::start(2, false);
    let (dumped, _) = s.ask(json!({"op": "dump", "pid": pid32, "to": 3}));
    assert!(started.elapsed() >= SLOW, "dumped before the checks ended");
    let image = dumped["ok"]["image"]
        .as_str()
        .unwrap_or_else(|| panic!("{dumped}"))
        .to_owned();
    let (resumed, _) = s.ask(json!({"op": "resume", "image": image}));
    assert!(resumed.get("ok").is_some(), "{resumed}");
    drop(s);
    assert!(state_of(pid).is_some_and(|st| st != "T"), "not running");
    bed().kill(2, pid);
}

/// The state letter of process `pid` on node 2, if it is there.
fn state_of(pid: i64) -> Option<String> {
    bed()
        .find(2, pid)
        .and_then(|p| p["state"].as_str().map(str::to_owned))
}

#[test]
fn a_migration_right_after_the_agents_start_waits_for_their_checks() {
    let _g = serial();
    let pid = bed().run_job(2, &[], &["sleep", "600"]);
    // Nothing kept: the agents this migration starts run criu's checks first, and the
    // client asks both for their readiness before it moves anything.
    for node in [2, 3] {
        let _ = std::fs::remove_file(bed().node_state(node).join("criu-check.json"));
    }
    let mode = openmosix_testbed::modes::MODES[0];
    let mut args = vec!["--json".to_owned()];
    args.extend(mode.migrate_args(2, pid, "3"));
    let out: Value = serde_json::from_str(&bed().cli_ok(&openmosix_testbed::modes::strs(&args)))
        .expect("migrate --json");
    let new = out["new_pid"].as_i64().expect("new pid");
    assert!(bed().find(3, new).is_some(), "not on node 3: {out}");
    assert!(bed().find(2, pid).is_none(), "still on node 2");
    for node in [2, 3] {
        assert!(bed().node_state(node).join("criu-check.json").is_file());
    }
    bed().kill(3, new);
}
