//! Process migration with real criu between real nodes of a 3-node testbed.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::Duration;

use openmosix_testbed::modes::{MODES, Mode, strs};
use openmosix_testbed::{Testbed, serial, wait};
use serde_json::Value;

fn bed() -> &'static Testbed {
    Testbed::shared("tmig", 206, 3)
}

fn ok(args: &[&str]) -> String {
    bed().cli_ok(args)
}

fn fails(args: &[&str]) -> String {
    let out = bed().cli(args);
    assert!(!out.status.success(), "openmosix {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn find(node: u32, pid: i64) -> Option<Value> {
    bed().find(node, pid)
}

fn start(node: u32, argv: &[&str]) -> i64 {
    bed().run_job(node, &[], argv)
}

fn migrate(node: u32, pid: i64, target: &str) -> i64 {
    migrate_as(MODES[0], node, pid, target)
}

/// Moves `pid` in `mode` and checks the result names the mode and the path taken.
/// The target keeps the image in memory: every process of these tests fits there.
fn migrate_as(mode: Mode, node: u32, pid: i64, target: &str) -> i64 {
    migrate_kept(mode, node, pid, target, "memory")
}

/// Moves `pid` in `mode` and checks the result names the mode, the path taken, and
/// where the target kept the image (`images`: `memory` or `disk`).
fn migrate_kept(mode: Mode, node: u32, pid: i64, target: &str, images: &str) -> i64 {
    let mut args = vec!["--json".to_owned()];
    args.extend(mode.migrate_args(node, pid, target));
    let out: Value = serde_json::from_str(&ok(&strs(&args))).expect("migrate --json");
    assert_eq!(
        (
            out["mode"].as_str(),
            out["route"].as_str(),
            out["target_images"].as_str()
        ),
        (Some(mode.mode), Some(mode.route), Some(images)),
        "{mode:?}: {out}"
    );
    out["new_pid"].as_i64().expect("new pid")
}

/// A file the process under test writes, in a folder of this test run.
fn scratch(name: &str) -> String {
    let dir = bed().state_dir.join("scratch");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

fn read_num(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until the number in `path` exceeds `than`.
fn grows(path: &str, than: u64) -> u64 {
    wait::until_ok(Duration::from_secs(10), &format!("{path} to grow"), || {
        let n = read_num(path);
        if n > than {
            Ok(n)
        } else {
            Err(format!("stuck at {n}"))
        }
    })
}

fn kill(node: u32, pid: i64) {
    bed().kill(node, pid);
}

fn counter_script(path: &str) -> String {
    format!(
        "i=0; while :; do i=$((i+1)); echo $i > {path}.tmp; mv {path}.tmp {path}; sleep 0.05; done"
    )
}

#[test]
fn hello_reports_migration_available() {
    let _g = serial();
    let conn_out = ok(&["--json", "mosctl", "2", "status"]);
    assert!(conn_out.contains("\"admin\""));
    // The agent found criu and `criu check` passed on this machine.
    let out = bed()
        .agent_session(2)
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            let mut stdin = c.stdin.take().expect("stdin");
            writeln!(stdin, r#"{{"id":1,"op":"hello"}}"#)?;
            drop(stdin);
            c.wait_with_output()
        })
        .expect("ssh");
    let hello: Value = serde_json::from_slice(&out.stdout).expect("hello");
    assert_eq!(hello["ok"]["migration"]["available"], true, "{hello}");
    assert_eq!(hello["ok"]["memory_images"], true, "{hello}");
}

#[test]
fn an_image_that_does_not_fit_in_memory_goes_to_disk() {
    let _g = serial();
    // Node 3's folder for images in memory is a tmpfs too small for any image.
    let _full = bed().full_folder(3, &bed().node_memory_images(3));
    for &mode in MODES {
        let file = scratch("tight");
        let pid = start(2, &["sh", "-c", &counter_script(&file)]);
        let before = grows(&file, 3);
        let new = migrate_kept(mode, 2, pid, "3", "disk");
        assert!(find(3, new).is_some(), "{mode:?}: not on node 3");
        grows(&file, before + 5);
        kill(3, new);
    }
}

#[test]
fn a_loop_moves_keeps_running_and_comes_home() {
    let _g = serial();
    for &mode in MODES {
        let file = scratch("loop");
        let pid = start(2, &["sh", "-c", &counter_script(&file)]);
        let before = grows(&file, 3);
        let new = migrate_as(mode, 2, pid, "3");
        let p = find(3, new).expect("on node 3");
        assert_eq!(
            (p["where"].as_u64(), p["home"].as_u64(), p["nmigs"].as_u64()),
            (Some(3), Some(2), Some(1)),
            "{mode:?}"
        );
        assert!(
            find(2, pid).is_none_or(|p| p["state"] == "Z"),
            "{mode:?}: still on node 2"
        );
        let after = grows(&file, before + 5);
        assert!(after > before);
        // home brings it back to node 2.
        let back = migrate_as(mode, 3, new, "home");
        let p = find(2, back).expect("home again");
        assert_eq!(
            (p["where"].as_u64(), p["home"].as_u64()),
            (Some(2), Some(2))
        );
        assert!(find(3, new).is_none_or(|p| p["state"] == "Z"));
        grows(&file, after + 5);
        kill(2, back);
    }
}

#[test]
fn the_howto_awk_test_program_moves() {
    let _g = serial();
    let pid = start(
        2,
        &["awk", "BEGIN {for(i=0;i<100000;i++)for(j=0;j<100000;j++);}"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let new = migrate(2, pid, "3");
    let p = find(3, new).expect("awk on node 3");
    assert!(p["cmdline"].as_str().unwrap_or("").starts_with("awk"));
    // It keeps computing there.
    let t0 = p["utime"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(800));
    let t1 = find(3, new).expect("still there")["utime"]
        .as_u64()
        .unwrap_or(0);
    assert!(t1 > t0, "awk stopped computing: {t0} -> {t1}");
    kill(3, new);
}

#[test]
fn a_counter_never_restarts_across_three_migrations() {
    let _g = serial();
    let file = scratch("counter");
    let mut node = 1;
    let mut pid = start(node, &["sh", "-c", &counter_script(&file)]);
    let mut last = grows(&file, 3);
    // Each hop in another mode.
    for (to, &mode) in [2, 3, 1].into_iter().zip(MODES) {
        pid = migrate_as(mode, node, pid, &to.to_string());
        node = to;
        let now = grows(&file, last);
        assert!(now > last, "counter went from {last} to {now}");
        last = now;
    }
    let p = find(1, pid).expect("back on node 1");
    assert_eq!(
        p["nmigs"], 0,
        "at home again the count restarts with the home record"
    );
    kill(1, pid);
}

const MEMTEST: &str = r#"
import hashlib, os, sys, time
size = 256 * 1024 * 1024
block = bytes(range(256)) * 4096
buf = bytearray(block * (size // len(block)))
want = hashlib.sha256(buf).hexdigest()
out = sys.argv[1]
n = 0
while True:
    n += 1
    ok = hashlib.sha256(buf).hexdigest() == want
    with open(out + ".tmp", "w") as f:
        f.write("%d %s\n" % (n, "ok" if ok else "CORRUPT"))
    os.rename(out + ".tmp", out)
    time.sleep(0.3)
"#;

/// Starts the memory test program on `node` and waits for its first self-check.
fn start_memtest(node: u32, file: &str) -> i64 {
    let pid = start(node, &["/usr/bin/python3", "-c", MEMTEST, file]);
    wait::until(Duration::from_secs(30), "memtest started", || {
        memtest_status(file).0 >= 1
    });
    pid
}

/// Waits until the memory test has checked itself again after check `n0`, with its
/// content intact.
fn memtest_runs_on(file: &str, n0: u64) {
    wait::until(Duration::from_secs(10), "memtest running on", || {
        memtest_status(file).0 > n0
    });
    assert_eq!(memtest_status(file).1, "ok");
}

/// Runs `openmosix migrate [MODE] NODE PID TO`, calling `at` once on the first progress line
/// that contains `cue`; returns whether it succeeded and what it said.
fn migrate_with(
    mode: Mode,
    node: u32,
    pid: i64,
    to: u32,
    cue: &str,
    at: impl FnOnce(&mut std::process::Child),
) -> (bool, String) {
    let mut child = bed()
        .cli_command(&strs(&mode.migrate_args(node, pid, &to.to_string())))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("migrate");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut at = Some(at);
    let mut said = Vec::new();
    for line in stderr.lines().map_while(Result::ok) {
        if line.contains(cue)
            && let Some(f) = at.take()
        {
            f(&mut child);
        }
        said.push(line);
    }
    let ok = child.wait().expect("wait").success();
    (ok, said.join("\n"))
}

fn memtest_status(path: &str) -> (u64, String) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut it = text.split_whitespace();
    let n = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (n, it.next().unwrap_or("").to_owned())
}

#[test]
fn memory_arrives_intact_and_faults_leave_it_where_it_was() {
    let _g = serial();
    let file = scratch("memtest");
    let (mut node, mut pid) = (2, start_memtest(2, &file));
    for &mode in MODES {
        let other = 5 - node;
        let (from, to) = (node.to_string(), other.to_string());
        // Target blocked: refused before anything is touched.
        ok(&["mosctl", &to, "block"]);
        let err = fails(&strs(&mode.migrate_args(node, pid, &other.to_string())));
        assert!(
            err.contains(&format!("node {to} blocks arriving guests")),
            "{mode:?}: {err}"
        );
        ok(&["mosctl", &to, "noblock"]);
        assert_ne!(find(node, pid).expect("still home")["state"], "T");

        // The target's sshd dies while the image streams: the process runs on at home.
        // A post-copy image goes node to node while the dump runs, before any `sent`
        // (which counts the pages that follow the restore).
        let cue = if mode.mode == "postcopy" {
            "freezing"
        } else {
            "sent"
        };
        let (moved, said) = migrate_with(mode, node, pid, other, cue, |_| bed().sshd_stop(other));
        bed().sshd_start(other);
        assert!(
            !moved,
            "{mode:?}: migration succeeded although node {to} died: {said}"
        );
        assert!(
            said.contains(&format!("stays on node {from}")),
            "{mode:?}: {said}"
        );
        let p = find(node, pid).expect("the process is still home");
        assert_ne!(p["state"], "T", "{mode:?}: left stopped");
        memtest_runs_on(&file, memtest_status(&file).0);

        // And now for real: 256 MiB arrive with their content.
        let new = migrate_as(mode, node, pid, &to);
        let (n1, _) = memtest_status(&file);
        let (n2, st) = wait::until_some(
            Duration::from_secs(20),
            "memtest running on after migrating",
            || Some(memtest_status(&file)).filter(|s| s.0 > n1 + 1),
        );
        assert_eq!(
            st, "ok",
            "{mode:?}: memory content after migration ({n2} checks)"
        );
        assert!(find(other, new).is_some());
        (node, pid) = (other, new);
    }
    kill(node, pid);
}

#[test]
fn restore_failure_and_a_cut_stream_leave_the_process_running() {
    let _g = serial();
    for &mode in MODES {
        restore_failure_and_a_cut_stream(mode);
    }
}

fn restore_failure_and_a_cut_stream(mode: Mode) {
    let file = scratch("fault");
    let pid = start(2, &["sh", "-c", &counter_script(&file)]);
    let last = grows(&file, 3);

    // Restore fails on the target: its pid is taken there.
    let script = format!(
        "echo {} > /proc/sys/kernel/ns_last_pid && exec setsid -f sleep 600 </dev/null >/dev/null 2>&1",
        pid - 1
    );
    let st = bed().exec_status(3, &["sh", "-c", &script]);
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(200));
    let taken = find(3, pid).expect("a process holds the pid on node 3");
    assert_eq!(taken["cmdline"], "sleep 600");
    let err = fails(&strs(&mode.migrate_args(2, pid, "3")));
    assert!(
        err.contains(&format!("pid {pid} is already taken")),
        "{mode:?}: {err}"
    );
    let p = find(2, pid).expect("still on node 2");
    assert_ne!(p["state"], "T");
    let last = grows(&file, last);
    kill(3, pid);

    // The stream is cut: the receiving side (page pump or image stream) dies mid-way.
    let mem = scratch("fault-mem");
    let big = start_memtest(2, &mem);
    let (moved, said) = migrate_with(mode, 2, big, 3, "sent", |_| {
        let _ = bed().exec_status(
            3,
            &[
                "pkill",
                "-KILL",
                "-f",
                "openmosix-agent (images|pages) receive",
            ],
        );
    });
    assert!(!moved, "{mode:?}: {said}");
    assert!(said.contains("stays on node 2"), "{mode:?}: {said}");
    assert_ne!(find(2, big).expect("still on node 2")["state"], "T");
    memtest_runs_on(&mem, memtest_status(&mem).0);
    kill(2, big);
    grows(&file, last);
    kill(2, pid);
}

#[test]
fn a_pipeline_and_threads_move() {
    let _g = serial();
    for &mode in MODES {
        let file = scratch("pipe");
        let script = format!(
            "seq 1 100000000 | while read n; do echo $n > {file}.tmp; mv {file}.tmp {file}; sleep 0.05; done"
        );
        let pid = start(2, &["sh", "-c", &script]);
        let last = grows(&file, 3);
        let new = migrate_as(mode, 2, pid, "3");
        grows(&file, last + 3);
        let on3 = bed().ps(3);
        assert!(
            on3.iter().any(|p| p["cmdline"] == "seq 1 100000000"),
            "{mode:?}: seq did not come along"
        );
        kill(3, new);
        let _ = bed().exec_status(3, &["pkill", "-f", "seq 1 100000000"]);

        let tfile = scratch("threads");
        let threads = format!(
            "import threading, time, os\nc = [0, 0, 0, 0]\ndef work(i):\n    while True:\n        c[i] += 1\n        time.sleep(0.01)\nfor i in range(4):\n    threading.Thread(target=work, args=(i,), daemon=True).start()\nwhile True:\n    open('{tfile}.tmp', 'w').write(str(min(c)))\n    os.rename('{tfile}.tmp', '{tfile}')\n    time.sleep(0.1)\n"
        );
        let pid = start(2, &["/usr/bin/python3", "-c", &threads]);
        let last = grows(&tfile, 5);
        let new = migrate_as(mode, 2, pid, "3");
        // Every thread goes on counting (the minimum over the threads grows).
        grows(&tfile, last + 20);
        kill(3, new);
    }
}

#[test]
fn cantmove_reports_tcp_peers_and_tracers_before_trying() {
    let _g = serial();
    let server = start(
        2,
        &[
            "/usr/bin/python3",
            "-c",
            "import socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', 47001))\ns.listen()\nc, _ = s.accept()\ntime.sleep(600)\n",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let client = start(
        2,
        &[
            "/usr/bin/python3",
            "-c",
            "import socket, time\nc = socket.create_connection(('127.0.0.1', 47001))\ntime.sleep(600)\n",
        ],
    );
    let reason = wait::until_some(Duration::from_secs(5), "a reason it cannot move", || {
        find(2, client)
            .map(|p| p["cantmove"].as_str().unwrap_or("").to_owned())
            .filter(|r| !r.is_empty())
    });
    assert!(
        reason.contains("TCP connection to 127.0.0.1:47001"),
        "{reason:?}"
    );
    let err = fails(&["migrate", "2", &client.to_string(), "3"]);
    assert!(err.contains("TCP connection"), "{err}");
    assert!(find(2, client).is_some());
    kill(2, client);
    kill(2, server);

    let tracer = start(2, &["strace", "-o", "/dev/null", "sleep", "600"]);
    std::thread::sleep(Duration::from_millis(500));
    let traced = bed()
        .ps(2)
        .into_iter()
        .find(|p| p["ppid"].as_i64() == Some(tracer) && p["cmdline"] == "sleep 600")
        .expect("the traced sleep");
    assert!(
        traced["cantmove"]
            .as_str()
            .unwrap_or("")
            .contains("traced by process"),
        "{traced}"
    );
    let err = fails(&["migrate", "2", &traced["pid"].to_string(), "3"]);
    assert!(err.contains("traced"), "{err}");
    kill(2, tracer);
    kill(2, traced["pid"].as_i64().unwrap_or(0));
}

#[test]
fn expel_sends_guests_home_and_bring_fetches_them() {
    let _g = serial();
    let a = start(2, &["sleep", "4801"]);
    let b = start(2, &["sleep", "4802"]);
    let a3 = migrate(2, a, "3");
    migrate(2, b, "3");
    assert_eq!(find(3, a3).expect("a on 3")["home"], 2);
    // expel on node 3: every guest goes home.
    assert_eq!(ok(&["mosctl", "3", "expel"]).trim(), "2");
    let on2 = bed().ps(2);
    for cmd in ["sleep 4801", "sleep 4802"] {
        let p = on2
            .iter()
            .find(|p| p["cmdline"] == cmd)
            .unwrap_or_else(|| panic!("{cmd} not home"));
        assert_eq!(p["home"], 2);
    }
    assert!(
        bed()
            .ps(3)
            .iter()
            .all(|p| p["cmdline"] != "sleep 4801" && p["cmdline"] != "sleep 4802")
    );
    // Out again, then bring on node 2: they come back.
    let a = on2
        .iter()
        .find(|p| p["cmdline"] == "sleep 4801")
        .and_then(|p| p["pid"].as_i64())
        .expect("a");
    let b = on2
        .iter()
        .find(|p| p["cmdline"] == "sleep 4802")
        .and_then(|p| p["pid"].as_i64())
        .expect("b");
    migrate(2, a, "3");
    migrate(2, b, "1");
    assert_eq!(ok(&["mosctl", "2", "bring"]).trim(), "2");
    let on2 = bed().ps(2);
    assert!(on2.iter().any(|p| p["cmdline"] == "sleep 4801"));
    assert!(on2.iter().any(|p| p["cmdline"] == "sleep 4802"));
    kill(2, a);
    kill(2, b);
}

#[test]
fn a_client_that_dies_mid_migration_leaves_the_process_running() {
    let _g = serial();
    for &mode in MODES {
        let mem = scratch("orphan-mem");
        let pid = start_memtest(2, &mem);
        // The admin's program dies while the tree is stopped on node 2.
        let _ = migrate_with(mode, 2, pid, 3, "freezing", |child| {
            let _ = child.kill();
        });
        wait::until(
            Duration::from_secs(20),
            "the process running again after its client died",
            || find(2, pid).expect("the process is still on node 2")["state"] != "T",
        );
        memtest_runs_on(&mem, memtest_status(&mem).0);
        kill(2, pid);
    }
}

#[test]
fn a_post_copy_stream_that_breaks_after_the_target_ran_keeps_the_original() {
    let _g = serial();
    let postcopy = *MODES
        .iter()
        .find(|m| m.mode == "postcopy")
        .expect("post-copy mode");
    let mem = scratch("lazy-break");
    let pid = start_memtest(2, &mem);
    // The process runs on node 3 while its 256 MiB follow; then the source's page pump
    // dies.
    let (moved, said) = migrate_with(postcopy, 2, pid, 3, "restoring", |_| {
        std::thread::sleep(Duration::from_millis(800));
        let _ = bed().exec_status(2, &["pkill", "-KILL", "-f", "openmosix-agent pages send"]);
    });
    assert!(!moved, "{said}");
    assert!(said.contains("stays on node 2"), "{said}");
    assert!(said.contains("what it did there is lost"), "{said}");
    // One copy: the original, running with its memory intact; none on node 3.
    let p = find(2, pid).expect("the original is still on node 2");
    assert_ne!(p["state"], "T", "left stopped");
    memtest_runs_on(&mem, memtest_status(&mem).0);
    wait::until(Duration::from_secs(5), "no copy on node 3", || {
        bed()
            .ps(3)
            .iter()
            .all(|p| !p["cmdline"].as_str().unwrap_or("").contains(&mem))
    });
    kill(2, pid);
}

#[test]
fn a_relayed_post_copy_whose_client_dies_keeps_the_original_even_without_the_target_pump() {
    let _g = serial();
    let relayed = Mode {
        args: &["--postcopy", "--relay"],
        mode: "postcopy",
        route: "relayed",
    };
    for pump_dies_too in [false, true] {
        let mem = scratch("lazy-orphan");
        let pid = start_memtest(2, &mem);
        // The process runs on node 3 while its 256 MiB follow through the client; then
        // the client dies (the stream with it), and in the second round node 3's page
        // pump too, so that only the guard of its page daemon is left to kill the copy.
        let _ = migrate_with(relayed, 2, pid, 3, "restoring", |child| {
            std::thread::sleep(Duration::from_millis(800));
            let _ = child.kill();
            if pump_dies_too {
                let _ = bed().exec_status(
                    3,
                    &["pkill", "-KILL", "-f", "openmosix-agent pages receive"],
                );
            }
        });
        // One copy: the original, running on node 2 with its memory intact; none on 3.
        wait::until(
            Duration::from_secs(45),
            "the original running again on node 2",
            || {
                let _ = bed().cli(&["handoffs"]);
                find(2, pid).is_some_and(|p| p["state"] != "T")
            },
        );
        memtest_runs_on(&mem, memtest_status(&mem).0);
        wait::until(Duration::from_secs(10), "no copy on node 3", || {
            bed()
                .ps(3)
                .iter()
                .all(|p| !p["cmdline"].as_str().unwrap_or("").contains(&mem))
        });
        kill(2, pid);
    }
}
