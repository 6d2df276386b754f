//! `openmosix node add` against a 4-node testbed whose nodes 3 and 4 have no agent
//! (`up --bare 3,4`): the agent is installed over SSH and the node answers; a damaged copy
//! is caught by its checksum and sent again; an unknown host key is recorded only with the
//! explicit choice; a changed one is refused; a foreign architecture and a missing library
//! get sentences. Real sshd, real ssh, real agents.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use openmosix_client::install;
use openmosix_testbed::{Testbed, serial};

fn bed() -> &'static Testbed {
    Testbed::shared_with("tprov", 251, 4, &["--bare", "3,4"])
}

fn cli_bin() -> &'static str {
    env!("CARGO_BIN_EXE_openmosix")
}

fn agent_bin() -> String {
    openmosix_testbed::testbed::bin("openmosix-agent")
}

/// `openmosix --cluster FILE args…` with the environment given.
fn cli(cluster: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(cli_bin())
        .arg("--cluster")
        .arg(cluster)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("cannot run openmosix")
}

use openmosix_testbed::output_text as text;

/// A cluster file in `dir` with node 1 only, using `ssh_config`.
fn cluster_with_node1(dir: &Path, ssh_config: &Path) -> PathBuf {
    let path = dir.join("cluster.toml");
    std::fs::write(
        &path,
        format!(
            "# my cluster\nssh_config = {:?}\n\n[[node]]\nid = 1\ndest = {:?}  # the first\n",
            ssh_config.display().to_string(),
            bed().addr(1)
        ),
    )
    .expect("write cluster file");
    path
}

/// The script's stdout; a failed ssh (or script) fails the test, so an empty answer is
/// never mistaken for an empty folder.
fn remote_sh(node: u32, script: &str) -> String {
    let out = bed().ssh(node, &["sh", "-c", script]);
    assert!(
        out.status.success(),
        "ssh node {node} {script:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_bare_node_is_provisioned_and_a_damaged_copy_is_sent_again() {
    let _g = serial();
    let tb = bed();
    // Before: the testbed's own cluster cannot reach node 3.
    let before = text(&tb.cli(&["nodes"]));
    assert!(
        before
            .lines()
            .any(|l| l.trim_start().starts_with("3 ") && l.contains("not installed")),
        "{before}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = cluster_with_node1(dir.path(), &tb.ssh_config());
    let original = std::fs::read_to_string(&cluster).expect("read");
    let out = cli(
        &cluster,
        // The testbed gives node 3's machine the id 3 (OPENMOSIX_NODE_ID), and the client
        // checks that a node is the one it meant: it is added as node 3.
        &["node", "add", &tb.addr(3), "--id", "3"],
        &[("OPENMOSIX_TEST_CORRUPT_UPLOAD", "1")],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    for step in [
        "[1/9] host key: ok",
        "[3/9] agent: ok, no compatible agent",
        "[4/9] architecture: ok",
        "attempt 1: checksum mismatch",
        "attempt 2: sha256",
        "verified on the node",
        "[6/9] run agent: ok, openmosix-agent 0.1.0 runs",
        "[8/9] cluster file: ok, node 3",
        "[9/9] answers: ok, node 3 answers",
    ] {
        assert!(said.contains(step), "missing {step:?} in:\n{said}");
    }
    // The file kept what it had and gained node 3.
    let now = std::fs::read_to_string(&cluster).expect("read");
    assert!(now.starts_with(&original), "{now}");
    assert!(
        now.contains(&format!("id = 3\ndest = \"{}\"", tb.addr(3))),
        "{now}"
    );

    // The node's copy is the agent, byte for byte; no temporary file is left.
    let remote = remote_sh(
        3,
        "sha256sum \"$HOME/.local/lib/openmosix/openmosix-agent\"; ls -A \"$HOME/.local/lib/openmosix\"",
    );
    assert!(
        remote.starts_with(&install::sha256_hex(
            &std::fs::read(agent_bin()).expect("agent")
        )),
        "remote: {remote}"
    );
    assert!(!remote.contains(".upload"), "{remote}");

    // It answers `openmosix nodes`, through the new file and the testbed's own.
    let nodes = cli(&cluster, &["--json", "nodes"], &[]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&nodes.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2, "{}", text(&nodes));
    assert!(
        lines.iter().all(|n| n["status"] == "up"),
        "{}",
        text(&nodes)
    );
    let all = tb.cli_ok(&["nodes"]);
    assert!(
        all.lines()
            .any(|l| l.trim_start().starts_with("3 ") && l.contains(" up ")),
        "{all}"
    );

    // Again: nothing to install, nothing to append.
    let again = cli(&cluster, &["node", "add", &tb.addr(3)], &[]);
    let said = text(&again);
    assert!(again.status.success(), "{said}");
    assert!(
        said.contains("[3/9] agent: ok, agent 0.1.0 is there"),
        "{said}"
    );
    assert!(said.contains("[5/9] copy agent: skipped"), "{said}");
    assert!(
        said.contains("[8/9] cluster file: skipped, already node 3"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&cluster).expect("read"), now);
}

#[test]
fn an_unknown_host_key_needs_the_explicit_choice() {
    let _g = serial();
    let tb = bed();
    let dir = tempfile::tempdir().expect("tempdir");
    let known = dir.path().join("known_hosts");
    let config = tb.ssh_config_with_known_hosts(dir.path(), &known);
    let cluster = cluster_with_node1(dir.path(), &config);
    let original = std::fs::read_to_string(&cluster).expect("read");
    let fp = tb.host_key_fingerprint();

    // No choice: the fingerprint is shown, nothing is recorded or added.
    let out = cli(&cluster, &["node", "add", &tb.addr(2)], &[]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("is not known") && said.contains(&fp),
        "{said}"
    );
    assert!(said.contains(&format!("--accept-host-key {fp}")), "{said}");
    assert!(!known.exists(), "known_hosts was written without a choice");
    assert_eq!(std::fs::read_to_string(&cluster).expect("read"), original);

    // Another fingerprint than the node's: refused.
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let out = cli(
        &cluster,
        &["node", "add", &tb.addr(2), "--accept-host-key", wrong],
        &[],
    );
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("is not the one"), "{said}");
    assert!(!known.exists());

    // The node's own fingerprint: recorded (0600), and the node joins.
    let out = cli(
        &cluster,
        &["node", "add", &tb.addr(2), "--accept-host-key", &fp],
        &[],
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("[1/9] host key: accepted, recorded ED25519"),
        "{said}"
    );
    assert!(said.contains("[9/9] answers: ok"), "{said}");
    let recorded = std::fs::read_to_string(&known).expect("known_hosts written");
    assert!(
        recorded.starts_with(&format!("{} ssh-ed25519 ", tb.addr(2))),
        "{recorded}"
    );
    assert_eq!(
        std::fs::metadata(&known)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn a_changed_host_key_is_refused_and_left_alone() {
    let _g = serial();
    let tb = bed();
    let dir = tempfile::tempdir().expect("tempdir");
    // known_hosts records another key for node 2.
    let line = tb.changed_key_line(2, dir.path());
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, &line).expect("write");
    let config = tb.ssh_config_with_known_hosts(dir.path(), &known);
    let cluster = cluster_with_node1(dir.path(), &config);
    let original = std::fs::read_to_string(&cluster).expect("read");

    let (addr, fp) = (tb.addr(2), tb.host_key_fingerprint());
    for extra in [&[][..], &["--accept-host-key", &fp][..]] {
        let mut args = vec!["node", "add", &addr];
        args.extend_from_slice(extra);
        let out = cli(&cluster, &args, &[]);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains("WARNING") && said.contains("has CHANGED"),
            "{said}"
        );
        assert!(said.contains(&fp), "{said}");
        assert_eq!(std::fs::read_to_string(&known).expect("read"), line);
        assert_eq!(std::fs::read_to_string(&cluster).expect("read"), original);
    }
}

/// The agent with its ELF machine changed to aarch64.
fn foreign_agent(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(agent_bin()).expect("agent");
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    let path = dir.join("openmosix-agent-aarch64");
    std::fs::write(&path, bytes).expect("write");
    path
}

/// A program that needs libomxgone.so, which is nowhere to be found.
fn program_missing_a_library(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("lib.c"), "int omx_gone(void) { return 0; }\n").expect("write");
    std::fs::write(
        dir.join("main.c"),
        "int omx_gone(void);\nint main(void) { return omx_gone(); }\n",
    )
    .expect("write");
    let cc = |args: &[&str]| {
        let st = Command::new("cc")
            .current_dir(dir)
            .args(args)
            .status()
            .expect("cc (the C compiler) is needed by this test");
        assert!(st.success(), "cc {args:?}");
    };
    cc(&["-shared", "-fPIC", "-o", "libomxgone.so", "lib.c"]);
    cc(&["-o", "needs-lib", "main.c", "-L.", "-lomxgone"]);
    std::fs::remove_file(dir.join("libomxgone.so")).expect("rm");
    dir.join("needs-lib")
}

#[test]
fn another_architecture_or_a_missing_library_gets_a_sentence() {
    let _g = serial();
    let tb = bed();
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = cluster_with_node1(dir.path(), &tb.ssh_config());
    let original = std::fs::read_to_string(&cluster).expect("read");
    let installed = || remote_sh(4, "ls -A \"$HOME/.local/lib/openmosix\" 2>/dev/null; true");

    let add_with = |binary: &Path| {
        let binary = binary.display().to_string();
        cli(
            &cluster,
            &["node", "add", &tb.addr(4), "--agent-binary", &binary],
            &[],
        )
    };

    let out = add_with(&foreign_agent(dir.path()));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("runs on x86_64, but this suite's agent is built for aarch64"),
        "{said}"
    );
    assert_eq!(installed(), "");

    let out = add_with(&program_missing_a_library(dir.path()));
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("[6/9] run agent: FAILED")
            && said.contains("lacks the library libomxgone.so"),
        "{said}"
    );
    // Nothing was left on the node, nothing added to the file.
    assert_eq!(installed(), "");
    assert_eq!(std::fs::read_to_string(&cluster).expect("read"), original);
}
