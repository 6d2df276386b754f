//! The page stream's path (issue #15, docs/migration.md): node to node where the nodes
//! reach each other, and relayed through the client, chosen by itself, where they cannot
//! (a testbed built `--isolated`). Real agents, sshd and criu; runs as root.

use openmosix_testbed::{Options, OwnTestbed, Testbed};
use serde_json::Value;

fn own(options: &Options) -> OwnTestbed {
    options.own().unwrap_or_else(|e| panic!("{e}"))
}

/// Moves `pid` from `from` to `to` with `flags`; the `--json` result.
fn moved(tb: &Testbed, flags: &[&str], from: u32, pid: i64, to: u32) -> Value {
    let (from, pid, to) = (from.to_string(), pid.to_string(), to.to_string());
    let mut args = vec!["--json", "migrate"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[&from, &pid, &to]);
    serde_json::from_str(&tb.cli_ok(&args)).expect("migrate --json")
}

/// How many copies of the loop run on each node (by its marker word).
fn copies(tb: &Testbed, marker: &str) -> Vec<usize> {
    (1..=2)
        .map(|n| {
            tb.ps(n)
                .iter()
                .filter(|p| p["cmdline"].as_str().unwrap_or("").contains(marker))
                .count()
        })
        .collect()
}

#[test]
fn nodes_that_cannot_reach_each_other_relay_by_themselves() {
    let tb = own(&Options::new("tpath", 238, 2).isolated());
    let marker = "pathloop";
    let script = format!("while :; do sleep 0.1; done # {marker}");
    let pid = tb.run_job(1, &[], &["sh", "-c", &script]);

    // The default (disk-less): the direct link cannot open, so the pages are relayed,
    // and the result says why.
    let out = moved(&tb, &[], 1, pid, 2);
    assert_eq!(out["mode"], "disk-less", "{out}");
    assert_eq!(out["route"], "relayed", "{out}");
    let why = out["relayed_because"].as_str().unwrap_or("");
    assert!(why.contains("node to node"), "{out}");
    assert_eq!(copies(&tb, marker), [0, 1]);

    // Post-copy falls back the same way, and back home it goes.
    let pid = out["new_pid"].as_i64().expect("new pid");
    let out = moved(&tb, &["--postcopy"], 2, pid, 1);
    assert_eq!(
        (out["mode"].as_str(), out["route"].as_str()),
        (Some("postcopy"), Some("relayed")),
        "{out}"
    );
    assert_eq!(copies(&tb, marker), [1, 0]);
}

#[test]
fn nodes_that_reach_each_other_move_pages_node_to_node() {
    let tb = own(&Options::new("tpath2", 239, 2));
    let marker = "directloop";
    let script = format!("while :; do sleep 0.1; done # {marker}");
    let pid = tb.run_job(1, &[], &["sh", "-c", &script]);
    let out = moved(&tb, &[], 1, pid, 2);
    assert_eq!(
        (out["mode"].as_str(), out["route"].as_str()),
        (Some("disk-less"), Some("direct")),
        "{out}"
    );
    assert!(out.get("relayed_because").is_none(), "{out}");
    assert_eq!(copies(&tb, marker), [0, 1]);
}
