//! `openmosix lock`, `unlock` and `mask` (HOWTO table 8-5 and 8.4) and the cantmove
//! reasons of open devices, on a real 3-node testbed.

use std::time::Duration;

use openmosix_testbed::{Testbed, serial, wait};
use serde_json::Value;

fn bed() -> &'static Testbed {
    Testbed::shared("tmask", 207, 3)
}

fn ok(args: &[&str]) -> String {
    bed().cli_ok(args)
}

/// Runs the CLI expecting exit status 1 and returns the error: the last line of stderr
/// (the only one, but for `migrate`, which reports its progress there first).
fn fails(args: &[&str]) -> String {
    let out = bed().cli(args);
    assert_eq!(out.status.code(), Some(1), "openmosix {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = err.trim_end().lines().collect();
    if args.first() != Some(&"migrate") {
        assert_eq!(lines.len(), 1, "{err}");
    }
    let last = lines.last().copied().unwrap_or_default();
    assert!(last.starts_with("openmosix: "), "{err}");
    last.to_owned()
}

fn find(node: u32, pid: i64) -> Value {
    bed()
        .find(node, pid)
        .unwrap_or_else(|| panic!("process {pid} is not on node {node}"))
}

/// A process started with `openmosix run`, killed when the test ends.
struct Job {
    node: u32,
    pid: i64,
}

impl Job {
    fn start(node: u32, flags: &[&str], argv: &[&str]) -> Job {
        let pid = bed().run_job(node, flags, argv);
        Job { node, pid }
    }

    fn pid(&self) -> String {
        self.pid.to_string()
    }

    fn info(&self) -> Value {
        find(self.node, self.pid)
    }

    /// Its cluster mask: (migfilter, migpolicy, mignodes).
    fn mask(&self) -> (bool, u64, u64) {
        let p = self.info();
        (
            p["migfilter"].as_bool().expect("migfilter"),
            p["migpolicy"].as_u64().expect("migpolicy"),
            p["mignodes"].as_u64().expect("mignodes"),
        )
    }

    fn kill(&self) {
        bed().kill(self.node, self.pid);
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn lock_unlock_and_mask() {
    let _g = serial();
    let job = Job::start(2, &[], &["sleep", "700"]);
    let pid = job.pid();
    let p = job.info();
    assert_eq!(
        (p["lock"].as_bool(), p["cantmove"].as_str()),
        (Some(false), Some(""))
    );

    // lock: nothing printed, ps shows it, migrate refuses before trying.
    assert_eq!(ok(&["lock", "2", &pid]), "");
    let p = job.info();
    assert_eq!(p["lock"], true, "{p}");
    assert!(
        p["cantmove"].as_str().unwrap_or("").contains("locked"),
        "{p}"
    );
    let err = fails(&["migrate", "2", &pid, "3"]);
    assert!(err.contains("locked"), "{err}");
    assert_eq!(job.info()["pid"].as_i64(), Some(job.pid));

    // unlock, with --json: the new process object.
    let out = ok(&["--json", "unlock", "2", &pid]);
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["pid"].as_i64(), Some(job.pid));
    assert_eq!(v["node"], 2);
    assert_eq!(v["lock"], false);
    let p = job.info();
    assert_eq!(
        (p["lock"].as_bool(), p["cantmove"].as_str()),
        (Some(false), Some(""))
    );

    // deny 3: migrating there names the mask.
    assert_eq!(ok(&["mask", "2", &pid, "deny", "3"]), "");
    assert_eq!(job.mask(), (true, 0, 4));
    let err = fails(&["migrate", "2", &pid, "3"]);
    assert!(err.contains("cluster mask does not allow node 3"), "{err}");

    // allow 1.
    ok(&["mask", "2", &pid, "allow", "1"]);
    assert_eq!(job.mask(), (true, 1, 1));
    let err = fails(&["migrate", "2", &pid, "3"]);
    assert!(err.contains("cluster mask does not allow node 3"), "{err}");

    // ranges, with --json.
    let out = ok(&["--json", "mask", "2", &pid, "allow", "1", "2-3"]);
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["mignodes"], 7, "{v}");

    // off clears it.
    assert_eq!(ok(&["mask", "2", &pid, "off"]), "");
    assert_eq!(job.mask(), (false, 0, 0));
    assert_eq!(job.info()["cantmove"], "");

    // Bad arguments are refused by the CLI.
    let err = fails(&["mask", "2", &pid, "allow"]);
    assert!(err.contains("at least one node"), "{err}");
    let err = fails(&["mask", "2", &pid, "deny", "0"]);
    assert!(err.contains("outside 1..64"), "{err}");

    // A dead pid.
    job.kill();
    wait::until(
        Duration::from_secs(5),
        &format!("process {pid} gone"),
        || bed().find(2, job.pid).is_none(),
    );
    let err = fails(&["lock", "2", &pid]);
    assert!(err.contains(&format!("no process {pid}")), "{err}");
    let err = fails(&["mask", "2", &pid, "deny", "1"]);
    assert!(err.contains(&format!("no process {pid}")), "{err}");
}

#[test]
fn unlock_frees_a_nomig_job() {
    let _g = serial();
    let job = Job::start(2, &["--nomig"], &["sleep", "700"]);
    let pid = job.pid();
    let p = job.info();
    assert_eq!(p["lock"], true, "{p}");
    assert_eq!(p["cantmove"], "locked (nomig)", "{p}");
    ok(&["unlock", "2", &pid]);
    let p = job.info();
    assert_eq!(
        (p["lock"].as_bool(), p["cantmove"].as_str()),
        (Some(false), Some(""))
    );
    // The agent restarts (a fresh one per connection): the override is in the state file.
    let _ = bed().exec(2, &["pkill", "-KILL", "-x", "openmosix-agent"]);
    assert_eq!(job.info()["lock"], false);
    ok(&["lock", "2", &pid]);
    assert_eq!(job.info()["lock"], true);
}

#[test]
fn an_open_device_keeps_a_process_home() {
    let _g = serial();
    // A device criu does not move, that root can open for reading in a node.
    let dev = ["/dev/kmsg", "/dev/mem", "/dev/loop-control"]
        .into_iter()
        .find(|d| {
            bed()
                .exec(2, &["sh", "-c", &format!("exec 3<{d}")])
                .status
                .success()
        })
        .expect("no device to open in node 2");
    let job = Job::start(
        2,
        &[],
        &["sh", "-c", &format!("exec 3<{dev}; exec sleep 700")],
    );
    let want = format!("it has the device {dev} open");
    wait::until_ok(Duration::from_secs(5), &format!("{want:?}"), || {
        let reason = job.info()["cantmove"].as_str().unwrap_or("").to_owned();
        if reason == want {
            Ok(())
        } else {
            Err(format!("{reason:?}"))
        }
    });
    let err = fails(&["migrate", "2", &job.pid(), "3"]);
    assert!(err.contains(&want), "{err}");

    // /dev/null, /dev/zero and /dev/urandom are fine.
    let fine = Job::start(
        2,
        &[],
        &[
            "sh",
            "-c",
            "exec 3</dev/zero 4</dev/urandom 5>/dev/null; exec sleep 700",
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fine.info()["cantmove"], "");
}
