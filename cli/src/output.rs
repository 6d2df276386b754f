//! Printing: a table for people, one JSON object per line with `--json`.

use openmosix_client::{LinkState, NodeView};
use openmosix_hpc::model::{NodeId, NodeStatus, ProcInfo};
use serde_json::{Value, json};

/// Writes to stdout; exits quietly when the reader has gone away.
pub fn write_out(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("openmosix: cannot write output: {e}");
        std::process::exit(1);
    }
}

/// Bytes as whole MiB.
pub fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

/// Prints `value` as JSON or `text` as a line.
pub fn print_value(json: bool, value: &Value, text: &str) {
    if json {
        outln!("{value}");
    } else {
        outln!("{text}");
    }
}

fn status_word(v: &NodeView) -> &'static str {
    match (v.state, v.info.as_ref().map(|i| i.status)) {
        (LinkState::Connecting, _) => "connecting",
        (LinkState::Down, _) => "down",
        (LinkState::Up, Some(NodeStatus::Blocked)) => "blocked",
        (LinkState::Up, Some(NodeStatus::Off)) => "off",
        (LinkState::Up, _) => "up",
    }
}

/// `openmosix nodes`.
pub fn nodes(views: &[NodeView], as_json: bool) {
    if as_json {
        for v in views {
            let up = v.state == LinkState::Up;
            let info = v.info.as_ref().filter(|_| up);
            let obj = json!({
                "id": v.id,
                "address": v.address,
                "status": status_word(v),
                "cpus": info.map(|i| i.cpus),
                "load": info.map(|i| i.load),
                "speed": info.map(|i| i.speed),
                "mem": info.map(|i| i.mem),
                "rmem": info.map(|i| i.rmem),
                "tmem": info.map(|i| i.tmem),
                "util": info.map(|i| i.util),
                "reason": if up { None } else { v.reason.clone() },
            });
            outln!("{obj}");
        }
        return;
    }
    outln!(
        "{:>4}  {:<18} {:<10} {:>4} {:>7} {:>7} {:>9} {:>9} {:>9} {:>6}",
        "NODE",
        "ADDRESS",
        "STATUS",
        "CPUS",
        "LOAD",
        "SPEED",
        "MEM MiB",
        "RMEM MiB",
        "TMEM MiB",
        "UTIL%"
    );
    for v in views {
        match v.info.as_ref().filter(|_| v.state == LinkState::Up) {
            Some(i) => outln!(
                "{:>4}  {:<18} {:<10} {:>4} {:>7.1} {:>7} {:>9} {:>9} {:>9} {:>6.1}",
                v.id,
                v.address,
                status_word(v),
                i.cpus,
                i.load,
                i.speed,
                mib(i.mem),
                mib(i.rmem),
                mib(i.tmem),
                i.util
            ),
            None => outln!(
                "{:>4}  {:<18} {:<10} {}",
                v.id,
                v.address,
                status_word(v),
                v.reason.as_deref().unwrap_or("")
            ),
        }
    }
}

/// `openmosix ps`.
pub fn procs(rows: &[(NodeId, ProcInfo)], as_json: bool) {
    if as_json {
        for (node, p) in rows {
            let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("node".into(), json!(node));
                m.insert("cmdline".into(), json!(p.cmdline.lossy()));
                m.insert("comm".into(), json!(p.comm.lossy()));
            }
            outln!("{v}");
        }
        return;
    }
    outln!(
        "{:>4} {:>7} {:>7} {:>6} {:>2} {:>4} {:>5} {:>4} {:>5} {:>4}  COMMAND",
        "NODE",
        "PID",
        "PPID",
        "UID",
        "S",
        "NI",
        "WHERE",
        "HOME",
        "NMIGS",
        "LOCK"
    );
    for (node, p) in rows {
        outln!(
            "{:>4} {:>7} {:>7} {:>6} {:>2} {:>4} {:>5} {:>4} {:>5} {:>4}  {}",
            node,
            p.pid,
            p.ppid,
            p.uid,
            p.state,
            p.nice,
            p.where_,
            p.home,
            p.nmigs,
            if p.lock { "yes" } else { "" },
            p.cmdline.lossy()
        );
    }
}
