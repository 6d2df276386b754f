//! The `--modes` report on stdout: markdown tables of the bare copies and the moves,
//! the goals met or not, and every failure in full.

use openmosix_testbed::stats::median;

use super::bare::{Bare, Path};
use super::modes::{Move, Row, Size};
use super::process::MIB;

/// Stop-and-copy: freeze ≤ SLOPE × bare copy + SLACK_MS.
const SLOPE: f64 = 1.3;
const SLACK_MS: f64 = 150.0;
/// Post-copy: freeze at most this…
const POSTCOPY_FREEZE_MS: f64 = 300.0;
/// …and total at most this × the bare copy.
const POSTCOPY_TOTAL: f64 = 1.3;
/// Workstation CPU of a direct move at most this share of a relayed one.
const CPU_SHARE: f64 = 0.05;

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

pub fn print(sizes: &[Size], samples: usize, before: &str, after: &str) {
    println!(
        "# Migration modes, node 1 ⇄ node 2: idle processes of random bytes, {samples} moves per way and size"
    );
    println!();
    println!("Load average (1, 5, 15 min): {before} before, {after} after.");
    println!();
    print_bare(sizes);
    print_moves(sizes);
    print_freeze_parts(sizes);
    print_goals(sizes);
    print_failures(sizes);
}

fn print_bare(sizes: &[Size]) {
    println!(
        "Bare copies of N = the process's size; rate = N ÷ (median − setup), setup = the same copy of 0 bytes:"
    );
    println!();
    println!("| size | path | copy | n | median ms | setup ms | MB/s |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for size in sizes {
        for (path, bare) in &size.bare {
            let head = format!("| {} MiB | {} | {} |", size.mib, path.label(), path.how());
            match bare {
                Ok(b) => println!(
                    "{head} {} | {:.0} | {:.0} | {:.0} |",
                    b.runs,
                    b.median.as_secs_f64() * 1000.0,
                    b.setup.as_secs_f64() * 1000.0,
                    b.rate / 1e6
                ),
                Err(e) => println!("{head} FAILED: {e} | | | |"),
            }
        }
    }
    println!();
}

/// A row's medians.
struct Medians {
    n: usize,
    freeze: f64,
    total: f64,
    bytes: f64,
    cpu_ms: f64,
    /// The bare copy of `bytes` along the row's path, in ms.
    copy: Option<f64>,
}

fn medians(size: &Size, row: &Row) -> Option<Medians> {
    if row.moves.is_empty() {
        return None;
    }
    let of = |f: fn(&Move) -> f64| median(row.moves.iter().map(f).collect());
    let bytes = of(|m| m.bytes as f64);
    Some(Medians {
        n: row.moves.len(),
        freeze: of(|m| m.freeze_ms as f64),
        total: of(|m| m.total_ms as f64),
        bytes,
        cpu_ms: of(|m| m.cpu.as_secs_f64() * 1000.0),
        copy: bare_of(size, row.kind.path()).map(|b| b.ms_for(bytes)),
    })
}

fn bare_of(size: &Size, path: Path) -> Option<&Bare> {
    size.bare
        .iter()
        .find(|(p, _)| *p == path)
        .and_then(|(_, b)| b.as_ref().ok())
}

fn ratio(a: f64, b: Option<f64>) -> String {
    b.map_or("—".into(), |b| format!("{:.2}×", a / b))
}

fn print_moves(sizes: &[Size]) {
    println!(
        "Moves, medians; copy = median bytes sent ÷ the bare rate of the way's path (direct: ssh n1 → n2; relayed and disk: through this machine); CPU = the workstation's, user + system:"
    );
    println!();
    println!(
        "| size | way | n | freeze ms | total ms | MiB sent | copy ms | freeze ÷ copy | total ÷ copy | workstation CPU ms |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for size in sizes {
        for row in &size.rows {
            let head = format!("| {} MiB | {} |", size.mib, row.kind.name);
            let Some(m) = medians(size, row) else {
                println!(
                    "{head} 0 | FAILED: all {} moves (below) | | | | | | |",
                    row.errors.len()
                );
                continue;
            };
            println!(
                "{head} {} | {:.0} | {:.0} | {:.1} | {} | {} | {} | {:.0} |",
                m.n,
                m.freeze,
                m.total,
                m.bytes / MIB as f64,
                m.copy.map_or("—".into(), |c| format!("{c:.0}")),
                ratio(m.freeze, m.copy),
                ratio(m.total, m.copy),
                m.cpu_ms
            );
        }
    }
    println!();
}

/// Where the post-copy freezes went: the dump (request to answer), the rest up to the
/// restored copy (image, lazy pages, restore), the handover; medians and every freeze.
fn print_freeze_parts(sizes: &[Size]) {
    println!("Post-copy freezes, medians: dump | image, lazy pages and restore | handover:");
    println!();
    println!(
        "| size | way | n | freeze ms | dump ms | image to restored ms | handover ms | freezes |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for size in sizes {
        for row in size
            .rows
            .iter()
            .filter(|r| r.kind.postcopy() && !r.moves.is_empty())
        {
            let of = |f: fn(&Move) -> u64| median(row.moves.iter().map(|m| f(m) as f64).collect());
            let all: Vec<String> = row.moves.iter().map(|m| m.freeze_ms.to_string()).collect();
            println!(
                "| {} MiB | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
                size.mib,
                row.kind.name,
                row.moves.len(),
                of(|m| m.freeze_ms),
                of(|m| m.dump_ms),
                of(|m| m.freeze_ms.saturating_sub(m.dump_ms + m.handover_ms)),
                of(|m| m.handover_ms),
                all.join(", ")
            );
        }
    }
    println!();
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}

fn print_goals(sizes: &[Size]) {
    println!("Goals:");
    println!();
    for size in sizes {
        let mib = size.mib;
        for row in &size.rows {
            let name = row.kind.name;
            let Some(m) = medians(size, row) else {
                println!("- {mib} MiB {name}: no move succeeded, **not met**");
                continue;
            };
            let Some(copy) = m.copy else {
                println!("- {mib} MiB {name}: no bare copy of its path to compare with");
                continue;
            };
            if row.kind.postcopy() {
                let limit = copy * POSTCOPY_TOTAL;
                println!(
                    "- {mib} MiB {name}: freeze {:.0} ms ≤ {POSTCOPY_FREEZE_MS:.0} ms (the goal is for 1 GiB): {}; total {:.0} ms ≤ {POSTCOPY_TOTAL} × copy = {limit:.0} ms: {}",
                    m.freeze,
                    verdict(m.freeze <= POSTCOPY_FREEZE_MS),
                    m.total,
                    verdict(m.total <= limit)
                );
            } else {
                let limit = copy * SLOPE + SLACK_MS;
                println!(
                    "- {mib} MiB {name}: freeze {:.0} ms ≤ {SLOPE} × copy {copy:.0} ms + {SLACK_MS:.0} ms = {limit:.0} ms: {}",
                    m.freeze,
                    verdict(m.freeze <= limit)
                );
            }
        }
        print_cpu_goal(size);
    }
    println!();
}

/// The workstation's CPU, direct against relayed (the goal is for 1 GiB).
fn print_cpu_goal(size: &Size) {
    let cpu = |name: &str| {
        size.rows
            .iter()
            .find(|r| r.kind.name == name)
            .and_then(|r| medians(size, r))
            .map(|m| m.cpu_ms)
    };
    let mib = size.mib;
    match (cpu("disk-less direct"), cpu("disk-less relayed")) {
        (Some(direct), Some(relayed)) if relayed > 0.0 => {
            let share = direct / relayed;
            println!(
                "- {mib} MiB workstation CPU: direct {direct:.0} ms = {:.1} % of relayed {relayed:.0} ms, ≤ {:.0} % (the goal is for 1 GiB): {}",
                share * 100.0,
                CPU_SHARE * 100.0,
                verdict(share <= CPU_SHARE)
            );
        }
        _ => println!("- {mib} MiB workstation CPU: direct or relayed has no figures"),
    }
}

fn print_failures(sizes: &[Size]) {
    let failures = sizes
        .iter()
        .any(|s| s.failed.is_some() || s.rows.iter().any(|r| !r.errors.is_empty()));
    if !failures {
        println!("No move failed.");
        return;
    }
    println!("Failures:");
    println!();
    for size in sizes {
        if let Some(e) = &size.failed {
            println!("- {} MiB: stopped: {e}", size.mib);
        }
        for row in &size.rows {
            for e in &row.errors {
                println!("- {} MiB {}: {e}", size.mib, row.kind.name);
            }
        }
    }
}
