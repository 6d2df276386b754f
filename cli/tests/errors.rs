//! Errors of the `openmosix` command as one sentence (issue #18); no testbed needed.

use std::process::Command;

use openmosix_testbed::testbed::bin;

#[test]
fn a_missing_cluster_file_is_said_once_with_its_cause_once() {
    let output = Command::new(bin("openmosix"))
        .args(["--cluster", "/nonexistent", "nodes"])
        .env_remove("OPENMOSIX_CLUSTER")
        .output()
        .expect("running openmosix");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    let os_cause = std::io::Error::from_raw_os_error(2).to_string();
    assert_eq!(
        stderr.trim_end(),
        format!("openmosix: cannot read /nonexistent: {os_cause}"),
        "the cause once"
    );
    assert_eq!(stderr.matches(&os_cause).count(), 1, "{stderr}");
}
