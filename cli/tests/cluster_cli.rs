//! The `openmosix` CLI against a real 3-node testbed: real sshd, real agents over SSH.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::Stdio;
use std::time::Duration;

use openmosix_testbed::{Testbed, serial, wait};
use serde_json::Value;

fn bed() -> &'static Testbed {
    Testbed::shared("tcli", 202, 3)
}

fn ok(args: &[&str]) -> String {
    bed().cli_ok(args)
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn procs(node: u32) -> Vec<Value> {
    bed().ps(node)
}

fn find(node: u32, pid: i64) -> Option<Value> {
    bed().find(node, pid)
}

/// Starts a marker process on a node through SSH (not through the suite).
fn marker_over_ssh(node: u32, seconds: &str) {
    // The redirections let ssh return: the channel stays open while anyone holds it.
    let script = format!("setsid -f sleep {seconds} </dev/null >/dev/null 2>&1");
    let out = bed().ssh(node, &["sh", "-c", &script]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn nodes_reports_all_three_up_with_sane_figures() {
    let _g = serial();
    let lines = json_lines(&ok(&["--json", "nodes"]));
    assert_eq!(lines.len(), 3, "{lines:?}");
    for (i, n) in lines.iter().enumerate() {
        assert_eq!(n["id"].as_u64(), Some(i as u64 + 1));
        assert_eq!(n["status"], "up", "{n}");
        assert!(n["cpus"].as_u64().expect("cpus") >= 1);
        assert!(n["tmem"].as_u64().expect("tmem") > 0);
        let util = n["util"].as_f64().expect("util");
        assert!((0.0..=100.0).contains(&util), "{util}");
        assert!(n["speed"].as_u64().expect("speed") >= 1);
        assert_eq!(n["address"], bed().addr(i as u32 + 1));
    }
}

#[test]
fn ps_lists_a_nodes_own_processes_only() {
    let _g = serial();
    marker_over_ssh(2, "4242.25");
    let has = |node: u32| {
        procs(node)
            .iter()
            .any(|p| p["cmdline"].as_str() == Some("sleep 4242.25"))
    };
    assert!(has(2), "marker missing from node 2");
    assert!(!has(3), "node 3 shows node 2's marker");
    let p2 = procs(2);
    let m = p2
        .iter()
        .find(|p| p["cmdline"].as_str() == Some("sleep 4242.25"))
        .expect("marker");
    assert_eq!(m["node"], 2);
    assert_eq!(m["where"], 2);
    assert_eq!(m["home"], 2);
    assert_eq!(m["cantmove"], "");
    let _ = bed().ssh(2, &["pkill", "-f", "sleep 4242.25"]);
}

fn kill_agents(node: u32) {
    // Every agent of the node goes away; the next command starts a fresh one.
    let _ = bed().exec(node, &["pkill", "-KILL", "-x", "openmosix-agent"]);
}

#[test]
fn switches_round_trip_and_survive_an_agent_restart() {
    let _g = serial();
    ok(&["mosctl", "2", "setspeed", "5000"]);
    assert_eq!(ok(&["mosctl", "2", "getspeed"]).trim(), "5000");
    kill_agents(2);
    assert_eq!(ok(&["mosctl", "getspeed", "2"]).trim(), "5000");

    // (block, lstay) of a node.
    let switches = |node: u32| {
        let a = bed().admin(node);
        (a["block"].as_bool(), a["lstay"].as_bool())
    };
    ok(&["mosctl", "2", "block"]);
    ok(&["mosctl", "2", "lstay"]);
    kill_agents(2);
    assert_eq!(switches(2), (Some(true), Some(true)));
    let n = json_lines(&ok(&["--json", "nodes"]));
    assert_eq!(n[1]["status"], "blocked");
    // Node 3 is untouched.
    assert_eq!(switches(3), (Some(false), Some(false)));

    ok(&["mosctl", "2", "noblock"]);
    ok(&["mosctl", "2", "nolstay"]);
    kill_agents(2);
    assert_eq!(switches(2), (Some(false), Some(false)));
    ok(&["mosctl", "2", "setspeed", "1000"]);

    // A bad verb or value: non-zero exit with one line.
    let out = bed().cli(&["mosctl", "2", "setspeed", "fast"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("number"), "{err}");
    let out = bed().cli(&["mosctl", "9", "getload"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("node 9 is not in the cluster"));
}

#[test]
fn run_signal_renice_and_kill_a_job() {
    let _g = serial();
    let pid: i64 = ok(&["run", "2", "--nomig", "--cpujob", "--", "sleep", "4343"])
        .trim()
        .parse()
        .expect("a pid");
    // The job outlived the SSH channel that started it.
    std::thread::sleep(Duration::from_millis(200));
    let p = find(2, pid).expect("job on node 2");
    assert_eq!(p["cmdline"], "sleep 4343");
    assert_eq!(p["lock"], true);
    assert!(p["cantmove"].as_str().expect("cantmove").contains("nomig"));
    assert_eq!(p["run"]["cpujob"], true);
    assert!(find(3, pid).is_none_or(|p| p["cmdline"] != "sleep 4343"));

    ok(&["signal", "2", &pid.to_string(), "STOP"]);
    assert_eq!(find(2, pid).expect("job")["state"], "T");
    ok(&["signal", "2", &pid.to_string(), "CONT"]);
    assert_eq!(find(2, pid).expect("job")["state"], "S");

    ok(&["renice", "2", &pid.to_string(), "10"]);
    assert_eq!(find(2, pid).expect("job")["nice"], 10);

    ok(&["signal", "2", &pid.to_string(), "KILL"]);
    wait::until(Duration::from_secs(5), "the job gone after KILL", || {
        find(2, pid).is_none_or(|p| p["state"] == "Z")
    });
    let out = bed().cli(&["signal", "2", "999999", "TERM"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process 999999"));
}

#[test]
fn agent_survives_bad_input_over_ssh() {
    let _g = serial();
    let bed = bed();
    let mut child = bed
        .agent_session(1)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ssh");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut reply = |input: &[u8]| -> Value {
        stdin.write_all(input).expect("write");
        stdin.flush().expect("flush");
        let mut line = String::new();
        out.read_line(&mut line).expect("read");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    let kind = |v: &Value| v["err"]["kind"].as_str().unwrap_or("none").to_owned();
    assert_eq!(kind(&reply(b"this is not json\n")), "bad_request");
    let mut big = vec![b'x'; 2 * 1024 * 1024];
    big.push(b'\n');
    assert_eq!(kind(&reply(&big)), "too_large");
    assert_eq!(
        kind(&reply(b"{\"id\":5,\"op\":\"node\xff\"}\n")),
        "bad_request"
    );
    let v = reply(b"{\"id\":6,\"op\":\"teleport\"}\n");
    assert_eq!((kind(&v), v["id"].as_u64()), ("unknown_op".into(), Some(6)));
    let v = reply(b"{\"id\":7,\"op\":\"signal\",\"pid\":999999,\"signal\":\"TERM\"}\n");
    assert_eq!(kind(&v), "no_such_process");
    let v = reply(b"{\"id\":8,\"op\":\"proc\",\"pid\":999999}\n");
    assert_eq!(kind(&v), "no_such_process");
    let v = reply(b"{\"id\":9,\"op\":\"hello\"}\n");
    assert_eq!(v["id"], 9);
    assert_eq!(v["ok"]["node_id"], 1);
    assert_eq!(v["ok"]["protocol"], 1);
    drop(stdin);
    let status = child.wait().expect("wait");
    assert!(status.success(), "agent exit {status}");
}

#[test]
fn setpe_installs_and_reads_back_the_map() {
    let _g = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let map = dir.path().join("openmosix.map");
    let text = format!("# the testbed\n1 {} 3\n", bed().addr(1));
    std::fs::write(&map, &text).expect("write map");
    ok(&["setpe", "-w", "-f", map.to_str().expect("utf-8")]);
    let back = ok(&["setpe", "-r", "--node", "3"]);
    let lines: Vec<&str> = back.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, [format!("1 {} 3", bed().addr(1))]);
    let show = ok(&["showmap", "--node", "2"]);
    assert!(show.contains("My Node-Id: 0x0002"), "{show}");
    assert!(show.contains(&bed().addr(1)), "{show}");
    // -off takes a node out of the pool; -w puts it back.
    ok(&["setpe", "-off", "--node", "3"]);
    assert_eq!(json_lines(&ok(&["--json", "nodes"]))[2]["status"], "off");
    ok(&["setpe", "-w", "-f", map.to_str().expect("utf-8")]);
    assert_eq!(json_lines(&ok(&["--json", "nodes"]))[2]["status"], "up");
}
