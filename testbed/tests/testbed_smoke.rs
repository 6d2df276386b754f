//! The testbed itself: real sshd with checked host keys, one PID namespace per node,
//! sshd stop/start. Runs as root; fails (never skips) if the testbed cannot be built.

use openmosix_testbed::{Testbed, stdout_ok as ok};

fn testbed() -> &'static Testbed {
    Testbed::shared("tsmoke", 201, 3)
}

/// `ssh nNODE ARGV`, which must succeed: its stdout.
fn ssh_ok(tb: &Testbed, node: u32, argv: &[&str]) -> String {
    ok(
        &format!("ssh n{node} {}", argv.join(" ")),
        &tb.ssh(node, argv),
    )
}

#[test]
fn ssh_reaches_the_right_node_with_its_environment() {
    let _serial = openmosix_testbed::serial();
    let tb = testbed();
    let id = ssh_ok(tb, 2, &["printenv", "OPENMOSIX_NODE_ID"]);
    assert_eq!(id.trim(), "2");

    let state = ssh_ok(tb, 2, &["printenv", "OPENMOSIX_STATE_DIR"]);
    assert_eq!(
        state.trim(),
        tb.state_dir.join("node2/state").display().to_string()
    );

    // The agent copy is what a session finds on PATH.
    let agent = ssh_ok(tb, 1, &["sh", "-c", "command -v openmosix-agent"]);
    assert_eq!(
        agent.trim(),
        tb.state_dir
            .join("bin/openmosix-agent")
            .display()
            .to_string()
    );

    // Arguments reach the remote command as separate words, quotes and all.
    let echo = ssh_ok(tb, 3, &["printf", "%s|", "a b", "it's", "$HOME"]);
    assert_eq!(echo, "a b|it's|$HOME|");
}

#[test]
fn each_node_has_its_own_process_table() {
    let _serial = openmosix_testbed::serial();
    let tb = testbed();
    let status = tb.exec_status(2, &["setsid", "-f", "sleep", "1234"]);
    assert!(status.success(), "starting sleep 1234 in node 2: {status}");

    let ps2 = ssh_ok(tb, 2, &["ps", "-eo", "args"]);
    let ps3 = ssh_ok(tb, 3, &["ps", "-eo", "args"]);
    assert!(
        ps2.lines().any(|l| l.trim() == "sleep 1234"),
        "node 2 lacks its sleep:\n{ps2}"
    );
    assert!(
        !ps3.lines().any(|l| l.trim() == "sleep 1234"),
        "node 3 sees node 2's sleep:\n{ps3}"
    );
    // A node sees a handful of processes, not the machine's.
    assert!(ps3.lines().count() < 20, "node 3 sees too much:\n{ps3}");

    let ps1 = ok("exec ps in node 1", &tb.exec(1, &["ps", "-eo", "args"]));
    assert!(
        !ps1.contains("sleep 1234"),
        "node 1 sees node 2's sleep:\n{ps1}"
    );
    let _ = tb.exec(2, &["pkill", "-x", "-f", "sleep 1234"]);
}

#[test]
fn exec_passes_the_exit_status_through() {
    let _serial = openmosix_testbed::serial();
    let tb = testbed();
    let out = tb.exec(1, &["sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn sshd_stop_and_start() {
    let _serial = openmosix_testbed::serial();
    let tb = testbed();
    ssh_ok(tb, 3, &["true"]);

    /// Starts node 3's sshd again even if an assertion below fails.
    struct Restart(&'static Testbed);
    impl Drop for Restart {
        fn drop(&mut self) {
            if std::thread::panicking()
                && let Err(e) = self.0.try_sshd_start(3)
            {
                eprintln!("{e}");
            }
        }
    }
    let _restart = Restart(tb);

    tb.sshd_stop(3);
    let down = tb.ssh(3, &["true"]);
    assert!(
        !down.status.success(),
        "ssh to node 3 works with its sshd stopped"
    );
    // The other nodes do not care.
    ssh_ok(tb, 2, &["true"]);

    tb.sshd_start(3);
    let id = ssh_ok(tb, 3, &["printenv", "OPENMOSIX_NODE_ID"]);
    assert_eq!(id.trim(), "3");
    // It runs in the node's PID namespace again, not the machine's.
    let ps = ssh_ok(tb, 3, &["ps", "-o", "comm=", "-p", "1"]);
    assert_eq!(ps.trim(), "tini");
}

#[test]
fn host_keys_are_checked() {
    let _serial = openmosix_testbed::serial();
    let tb = testbed();
    let out = tb.ssh_with(2, &["-o", "UserKnownHostsFile=/dev/null"], &["true"]);
    assert!(
        !out.status.success(),
        "ssh without known host keys was let in"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Host key verification failed"),
        "unexpected refusal: {err}"
    );
}
