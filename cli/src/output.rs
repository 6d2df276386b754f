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

/// `openmosix nodes`; `via` says through which gateway node a node is reached (the
/// cluster file's `via`, docs/fan-out.md).
pub fn nodes(views: &[NodeView], via: impl Fn(NodeId) -> Option<NodeId>, as_json: bool) {
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
                "via": via(v.id),
            });
            outln!("{obj}");
        }
        return;
    }
    // A cluster without gateways keeps the table it always had.
    let gateways = views.iter().any(|v| via(v.id).is_some());
    let address = |v: &NodeView| match via(v.id).filter(|_| gateways) {
        Some(g) => format!("{} via {g}", v.address),
        None => v.address.clone(),
    };
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
                address(v),
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
                address(v),
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
        outln!("{}", proc_row(*node, p));
    }
}

/// One row of `openmosix ps`: the command line with its control characters escaped, so
/// that a process stays on one row whatever its arguments hold.
fn proc_row(node: NodeId, p: &ProcInfo) -> String {
    format!(
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
        escape_controls(&p.cmdline.lossy())
    )
}

/// `text` with its control characters written out: `\n`, `\t`, `\r`, and `\u{1b}` for
/// the others; a backslash stays as it is.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(
            escape_controls("esc\u{1b}[31m del\u{7f}"),
            "esc\\u{1b}[31m del\\u{7f}"
        );
        assert_eq!(escape_controls("plain -- x\\y é"), "plain -- x\\y é");
    }

    #[test]
    fn a_command_line_with_a_newline_stays_on_one_row() {
        let p = ProcInfo {
            pid: 42,
            cmdline: "sh -c echo a\necho b".into(),
            ..ProcInfo::default()
        };
        let row = proc_row(1, &p);
        assert_eq!(row.lines().count(), 1, "{row}");
        assert!(row.ends_with("sh -c echo a\\necho b"), "{row}");
    }
}
