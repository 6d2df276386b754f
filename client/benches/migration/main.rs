//! Freeze time and total time of a CRIU migration against the resident size of the
//! process: 64 MiB, 256 MiB and 1 GiB, each idle and with a writer dirtying random pages
//! continuously, each with and without pre-dump rounds. The process moves node 1 → node 2
//! → node 1 … of a 2-node testbed, one sample per move. The same run measures the bare
//! copy rate of `ssh node2 'cat > /dev/null'` and reports how far each freeze is from
//! copying the image bytes at that rate. Needs root (it builds a testbed). Figures go to
//! stdout.
//!
//! `cargo bench -p openmosix-client --bench migration [-- --quick | --handoff | --modes]
//! [--testbed NAME:NET]`
//!
//! `--quick`: 2 samples per configuration and only 64 and 256 MiB (default: 5 samples).
//! `--handoff`: the two-phase handoff against the single-phase one of older agents, 64
//! and 256 MiB idle, 5 moves each, the two kinds alternating on one process so that both
//! see the same machine.
//! `--modes`: the ways of moving (disk-less direct and relayed, disk, post-copy) against
//! the bare copy along the same paths, and the workstation's CPU ([`modes`]).

mod bare;
mod cpu;
mod modes;
mod process;
mod report;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use openmosix_client::migrate::{MigrateOptions, Migrated, Progress, migrate};
use openmosix_testbed::Testbed;
use openmosix_testbed::stats::median;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use process::{MIB, Mode, Nodes, TestProcess};

/// The bench's testbed: its name and net.
const TESTBED: (&str, u8) = ("bmmig", 181);

/// Bytes pushed through `ssh … 'cat > /dev/null'` per bare-copy run, and the runs.
const BARE_BYTES: u64 = 512 * MIB;
const BARE_RUNS: usize = 3;

/// One row of the table.
#[derive(Debug, Clone, Copy)]
struct Config {
    size_mib: u64,
    mode: Mode,
    predump: bool,
    /// The single-phase handoff (no commit/release round trip).
    one_phase: bool,
}

/// One move.
#[derive(Debug, Clone, Copy)]
struct Sample {
    freeze_ms: u64,
    handover_ms: u64,
    total_ms: u64,
    bytes: u64,
    rounds: u32,
}

/// Moves the process to the other node; returns the migration's figures and the pre-dump
/// rounds its progress events announced.
fn move_once(
    rt: &Runtime,
    nodes: &Nodes,
    process: &mut TestProcess<'_>,
    config: Config,
) -> Result<(Migrated, u32)> {
    let (from, to) = (process.node, 3 - process.node);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let moved = rt.block_on(migrate(
        nodes.conn(from),
        nodes.conn(to),
        process.pid,
        MigrateOptions {
            predump: config.predump,
            one_phase: config.one_phase,
            ..MigrateOptions::default()
        },
        Some(&tx),
    ));
    let m = moved.with_context(|| format!("moving pid {} {from} → {to}", process.pid))?;
    let mut announced = 0;
    while let Ok(p) = rx.try_recv() {
        if let Progress::PreDump { round, .. } = p {
            announced = announced.max(round);
        }
    }
    process.node = to;
    process.pid = m.new_pid;
    Ok((m, announced))
}

/// `samples` moves of a fresh test process of this configuration.
fn run_config(
    rt: &Runtime,
    bed: &Testbed,
    nodes: &Nodes,
    config: Config,
    samples: usize,
) -> Result<Vec<Sample>> {
    let mut process = TestProcess::start(bed, config.size_mib, config.mode)?;
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (m, announced) = move_once(rt, nodes, &mut process, config)?;
        if announced != m.rounds {
            bail!(
                "{} pre-dump rounds reported, {announced} announced",
                m.rounds
            );
        }
        out.push(Sample {
            freeze_ms: m.freeze_ms,
            handover_ms: m.handover_ms,
            total_ms: m.total_ms,
            bytes: m.bytes,
            rounds: m.rounds,
        });
        // Let the writer run again before the next freeze.
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    Ok(out)
}

/// Five single-phase and five two-phase moves of one idle process of `size_mib`,
/// alternating; a row each, and the median handover (commit + release) of the second.
fn compare_handoffs(
    rt: &Runtime,
    bed: &Testbed,
    nodes: &Nodes,
    size_mib: u64,
    available: bool,
    rate: f64,
) {
    let config = |one_phase| Config {
        size_mib,
        mode: Mode::Idle,
        predump: false,
        one_phase,
    };
    let result = (|| {
        let mut process = TestProcess::start(bed, size_mib, Mode::Idle)?;
        let mut by_kind: [Vec<Sample>; 2] = [Vec::new(), Vec::new()];
        for i in 0..10 {
            let one_phase = i % 2 == 0;
            let (m, _) = move_once(rt, nodes, &mut process, config(one_phase))?;
            by_kind[usize::from(one_phase)].push(Sample {
                freeze_ms: m.freeze_ms,
                handover_ms: m.handover_ms,
                total_ms: m.total_ms,
                bytes: m.bytes,
                rounds: m.rounds,
            });
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        Ok::<_, anyhow::Error>(by_kind)
    })();
    match result {
        Ok([two, one]) => {
            print_row(config(true), available, rate, &Ok(one));
            print_row(config(false), available, rate, &Ok(two.clone()));
            println!(
                "{size_mib} MiB: the two-phase handover (commit + release) took a median {:.0} ms of the freeze",
                median_of(&two, |s| s.handover_ms)
            );
        }
        Err(e) => print_row(config(false), available, rate, &Err(e)),
    }
}

/// One timed run of `BARE_BYTES` zeros through `ssh node2 'cat > /dev/null'`, in bytes/s
/// (the ssh handshake included, as `time (… | ssh …)` would count it).
fn bare_copy_rate(bed: &Testbed) -> Result<f64> {
    let start = Instant::now();
    let mut child = Command::new("ssh")
        .arg("-F")
        .arg(bed.ssh_config())
        .arg(bed.addr(2))
        .arg("cat > /dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run ssh")?;
    let mut stdin = child.stdin.take().context("ssh stdin")?;
    let chunk = vec![0u8; MIB as usize];
    for _ in 0..BARE_BYTES / MIB {
        stdin.write_all(&chunk).context("writing to ssh")?;
    }
    drop(stdin);
    let status = child.wait().context("waiting for ssh")?;
    if !status.success() {
        bail!("ssh 'cat > /dev/null' failed: {status}");
    }
    Ok(BARE_BYTES as f64 / start.elapsed().as_secs_f64())
}

fn median_of(samples: &[Sample], f: impl Fn(&Sample) -> u64) -> f64 {
    median(samples.iter().map(|s| f(s) as f64).collect())
}

fn configs(quick: bool, handoff: bool) -> Vec<Config> {
    if handoff {
        let mut out = Vec::new();
        for size_mib in [64, 256] {
            for one_phase in [true, false] {
                out.push(Config {
                    size_mib,
                    mode: Mode::Idle,
                    predump: false,
                    one_phase,
                });
            }
        }
        return out;
    }
    let sizes: &[u64] = if quick { &[64, 256] } else { &[64, 256, 1024] };
    let mut out = Vec::new();
    for &size_mib in sizes {
        for mode in [Mode::Idle, Mode::Writer] {
            for predump in [false, true] {
                out.push(Config {
                    size_mib,
                    mode,
                    predump,
                    one_phase: false,
                });
            }
        }
    }
    out
}

/// The predump column: off; on with the median rounds; or n/a when the agent skipped it.
fn predump_label(config: Config, available: bool, samples: &[Sample]) -> String {
    match (config.predump, available) {
        (false, _) => "off".into(),
        (true, false) => "n/a".into(),
        (true, true) => format!("on ({:.0} rnd)", median_of(samples, |s| s.rounds.into())),
    }
}

fn print_header() {
    println!(
        "{:>8} {:>7} {:>12} {:>8} {:>3} {:>10} {:>10} {:>9} {:>12}",
        "size",
        "mode",
        "predump",
        "handoff",
        "n",
        "freeze ms",
        "total ms",
        "MiB sent",
        "freeze/copy"
    );
}

fn print_row(config: Config, available: bool, rate: f64, result: &Result<Vec<Sample>>) {
    let size = format!("{} MiB", config.size_mib);
    let head = format!("{size:>8} {:>7}", config.mode.arg());
    let handoff = if config.one_phase {
        "1-phase"
    } else {
        "2-phase"
    };
    let samples = match result {
        Ok(s) => s,
        Err(e) => {
            let predump = if config.predump { "on" } else { "off" };
            println!("{head} {predump:>12} {handoff:>8} FAILED: {e:#}");
            return;
        }
    };
    let freeze = median_of(samples, |s| s.freeze_ms);
    let bytes = median_of(samples, |s| s.bytes);
    let bare_ms = bytes / rate * 1000.0;
    println!(
        "{head} {:>12} {handoff:>8} {:>3} {freeze:>10.0} {:>10.0} {:>9.1} {:>11.2}x",
        predump_label(config, available, samples),
        samples.len(),
        median_of(samples, |s| s.total_ms),
        bytes / MIB as f64,
        freeze / bare_ms,
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let handoff = std::env::args().any(|a| a == "--handoff");
    // `--testbed NAME:NET` puts the bench's testbed elsewhere.
    let asked = modes::arg_after("--testbed");
    let (name, net) = asked
        .as_deref()
        .and_then(|t| t.split_once(':'))
        .and_then(|(n, net)| Some((n.to_owned(), net.parse().ok()?)))
        .unwrap_or((TESTBED.0.to_owned(), TESTBED.1));
    let bed = Testbed::shared(&name, net, 2);
    let rt = Runtime::new().expect("tokio runtime");
    let nodes = Nodes::connect(&rt, bed);
    if std::env::args().any(|a| a == "--modes") {
        modes::run(&rt, bed, &nodes, quick);
        return;
    }
    let samples = if quick && !handoff { 2 } else { 5 };

    let rates: Vec<f64> = (0..BARE_RUNS)
        .map(|_| bare_copy_rate(bed).expect("bare ssh copy"))
        .collect();
    let rate = median(rates);
    let (available, detail) = nodes.predump_capability();

    println!("# migration node 1 ⇄ node 2 (testbed, 2 nodes), {samples} moves per row");
    println!(
        "bare copy `ssh node2 'cat > /dev/null'`, {} MiB × {BARE_RUNS}: median {:.0} MB/s",
        BARE_BYTES / MIB,
        rate / 1e6
    );
    println!("pre-dump on the source: {detail}");
    if !available {
        println!(
            "(predump n/a: asked for, but the agent dumps at once — 0 rounds — on this kernel)"
        );
    }
    println!("freeze/copy = median freeze ÷ (median bytes sent ÷ bare copy rate)");
    print_header();
    if handoff {
        for size_mib in [64, 256] {
            compare_handoffs(&rt, bed, &nodes, size_mib, available, rate);
        }
        return;
    }
    for config in configs(quick, handoff) {
        let result = run_config(&rt, bed, &nodes, config, samples);
        print_row(config, available, rate, &result);
    }
}
