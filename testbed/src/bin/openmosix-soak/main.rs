//! `openmosix-soak MINUTES`: the "never twice, never lost" promise under load and faults
//! (docs/migration.md). On a 4-node testbed: a dozen counting jobs (three of them busy,
//! for the balancer), `openmosix balance` and the collector running, and every few
//! seconds one of: a manual migration, a migration whose client is killed at a random
//! instant, an agent kill -9 on a node, a node's sshd stopped for a few seconds, the
//! collector killed with -9 and started again. Every second it checks that each job ran
//! as one copy (its log never repeats a number), that no job stood still for more than
//! 30 s (stopped or lost), and that the history database passes its integrity check.
//! Prints the figures; exits 1 on any violation. `scripts/soak.sh` builds and runs it.

mod faults;
mod jobs;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use openmosix_testbed::Testbed;
use openmosix_testbed::testbed::bin;

use faults::{Fault, Faults};
use jobs::Jobs;

/// The testbed of the soak.
const NAME: &str = "tsoak";
const NET: u8 = 223;
const NODES: u32 = 4;
/// Longest a job may stand still (stopped or gone) before the soak calls it a failure.
const STILL_LIMIT: Duration = Duration::from_secs(30);
/// A fault every this long.
const FAULT_EVERY: Duration = Duration::from_secs(4);

fn main() -> ExitCode {
    let minutes: f64 = match std::env::args().nth(1).map(|a| a.parse()) {
        Some(Ok(m)) if m > 0.0 => m,
        None => 2.0,
        _ => {
            eprintln!("usage: openmosix-soak [MINUTES]   (default 2)");
            return ExitCode::FAILURE;
        }
    };
    let bed = Testbed::shared(NAME, NET, NODES);
    let code = soak(bed, Duration::from_secs_f64(minutes * 60.0));
    let _ = std::process::Command::new(bin("openmosix-testbed"))
        .args(["down", "--name", NAME])
        .status();
    code
}

fn soak(bed: &'static Testbed, length: Duration) -> ExitCode {
    let jobs = Jobs::start(bed, 12);
    let mut faults = Faults::start(bed);
    let mut violations: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut next_fault = Instant::now() + FAULT_EVERY;
    let mut checks = 0u64;
    while started.elapsed() < length {
        std::thread::sleep(Duration::from_secs(1));
        faults.reap();
        if Instant::now() >= next_fault {
            faults.inject(&jobs);
            next_fault = Instant::now() + FAULT_EVERY;
        }
        checks += 1;
        violations.extend(jobs.check(STILL_LIMIT));
        violations.extend(faults.check_history());
        if !violations.is_empty() {
            break;
        }
    }
    faults.stop();
    // Let what the last faults left settle, then the final word.
    if violations.is_empty() {
        violations.extend(jobs.settle_and_check());
    }
    report(started.elapsed(), checks, &jobs, &faults, &violations);
    jobs.stop(bed);
    if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn report(took: Duration, checks: u64, jobs: &Jobs, faults: &Faults, violations: &[String]) {
    println!(
        "# soak: {NODES} nodes, {} jobs, {:.1} min, {checks} checks",
        jobs.len(),
        took.as_secs_f64() / 60.0
    );
    println!("moves seen: {} (balancer and manual)", jobs.moves());
    let mut by_kind: BTreeMap<&str, u32> = BTreeMap::new();
    for f in faults.done() {
        *by_kind.entry(Fault::name(*f)).or_default() += 1;
    }
    for (kind, n) in by_kind {
        println!("faults: {kind}: {n}");
    }
    println!(
        "duplicates: {}",
        violations
            .iter()
            .filter(|v| v.contains("two copies"))
            .count()
    );
    println!(
        "losses or stalls: {}",
        violations
            .iter()
            .filter(|v| v.contains("stood still"))
            .count()
    );
    println!(
        "history integrity failures: {}",
        violations
            .iter()
            .filter(|v| v.contains("integrity"))
            .count()
    );
    for v in violations {
        println!("VIOLATION: {v}");
    }
}
