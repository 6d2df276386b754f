//! Without a display the window program says so in one sentence, and exits 1
//! (issue #18): no source locations of the windowing libraries, no backtrace.

use std::process::Command;

use openmosix_testbed::testbed::bin;

#[test]
fn without_a_display_migmon_says_so_in_one_line_and_exits_1() {
    let output = Command::new(bin("openmosixmigmon"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("running openmosixmigmon");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, got: {stderr}");
    assert!(!stderr.contains(".rs:"), "a source location: {stderr}");
    assert!(
        stderr.starts_with("openmosixmigmon: cannot open a window: no display"),
        "{stderr}"
    );
}
