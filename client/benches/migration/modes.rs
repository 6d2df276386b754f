//! `--modes`: issue #15's goals in one run. For idle processes of 256 MiB and 1 GiB
//! (random bytes, every page resident; `--quick`: 64 MiB only) it moves each 5 times
//! (`--quick`: 2) in every way — stop-and-copy disk-less direct (the default), disk-less
//! relayed, through the source's disk, and post-copy direct — the four ways taking turns
//! on one process (each round in another order, so each way moves both ways and sees
//! the same machine). Beside each move it measures the workstation's CPU ([`cpu`]), and
//! before the moves of a size the bare copy of as many bytes along each path ([`bare`]).
//! The report ([`report`]) is a markdown table with the goals:
//!
//! - stop-and-copy: freeze ≤ 1.3 × (bytes ÷ bare rate of its path) + 150 ms;
//! - post-copy: freeze ≤ 300 ms at 1 GiB, total ≤ 1.3 × the bare copy;
//! - the workstation's CPU during a 1 GiB move: direct ≤ 5 % of relayed.
//!
//! A move that fails is reported with its error, not retried.

use std::time::Duration;

use anyhow::Result;
use openmosix_client::migrate::{MigrateOptions, Migrated, Route, migrate};
use openmosix_testbed::Testbed;
use tokio::runtime::Runtime;

use super::bare::{self, Bare, PATHS, Path};
use super::cpu::Meter;
use super::process::{MIB, Mode, Nodes, TestProcess};
use super::report;

/// A way of moving a process.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub name: &'static str,
    pub options: MigrateOptions,
    /// What the result must say: its `mode` and `route`.
    pub mode: &'static str,
    pub route: Route,
}

impl Kind {
    pub fn postcopy(&self) -> bool {
        self.options.postcopy
    }

    /// The bare path its pages take.
    pub fn path(&self) -> Path {
        match self.route {
            Route::Direct => Path::Direct,
            Route::Relayed => Path::Relayed,
        }
    }
}

/// The four ways of the goals and, to measure what the image link saves, post-copy
/// with the image through the client; pre-dump off (this project's kernels cannot pre-dump anyway, and a
/// pre-dump would send the move through the disk).
pub fn kinds() -> [Kind; 5] {
    let base = MigrateOptions {
        predump: false,
        ..MigrateOptions::default()
    };
    [
        Kind {
            name: "disk-less direct",
            options: base,
            mode: "disk-less",
            route: Route::Direct,
        },
        Kind {
            name: "disk-less relayed",
            options: MigrateOptions {
                relay: true,
                ..base
            },
            mode: "disk-less",
            route: Route::Relayed,
        },
        Kind {
            name: "disk",
            options: MigrateOptions {
                disk_less: false,
                ..base
            },
            mode: "disk",
            route: Route::Relayed,
        },
        Kind {
            name: "post-copy direct",
            options: MigrateOptions {
                postcopy: true,
                ..base
            },
            mode: "postcopy",
            route: Route::Direct,
        },
        Kind {
            name: "post-copy direct, image via client",
            options: MigrateOptions {
                postcopy: true,
                image_via_client: true,
                ..base
            },
            mode: "postcopy",
            route: Route::Direct,
        },
    ]
}

/// The ways `--ways A,B` names (a part of each name; `--ways post-copy` takes both
/// post-copy ways); without it the four ways of the goals.
fn chosen_kinds() -> Vec<Kind> {
    let asked = arg_after("--ways");
    kinds()
        .into_iter()
        .filter(|k| match &asked {
            Some(list) => list.split(',').any(|w| k.name.contains(w.trim())),
            None => !k.options.image_via_client,
        })
        .collect()
}

/// The value after `flag` on the command line.
pub fn arg_after(flag: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One move's figures.
#[derive(Debug, Clone, Copy)]
pub struct Move {
    pub freeze_ms: u64,
    /// The dump's share of the freeze, and the handover's.
    pub dump_ms: u64,
    pub handover_ms: u64,
    pub total_ms: u64,
    pub bytes: u64,
    pub cpu: Duration,
}

/// The moves of one way at one size, and the errors of those that failed.
#[derive(Debug, Clone)]
pub struct Row {
    pub kind: Kind,
    pub moves: Vec<Move>,
    pub errors: Vec<String>,
}

/// Everything measured at one size.
#[derive(Debug)]
pub struct Size {
    pub mib: u64,
    pub bare: Vec<(Path, Result<Bare, String>)>,
    pub rows: Vec<Row>,
    /// Why no move could run at all.
    pub failed: Option<String>,
}

pub fn run(rt: &Runtime, bed: &Testbed, nodes: &Nodes, quick: bool) {
    let (sizes, samples): (Vec<u64>, usize) = if quick {
        (vec![64], 2)
    } else {
        (vec![256, 1024], 5)
    };
    // `--sizes 1024` (MiB, comma-separated) and `--runs N` narrow a run.
    let sizes = arg_after("--sizes").map_or(sizes, |l| {
        l.split(',').filter_map(|n| n.trim().parse().ok()).collect()
    });
    let samples = arg_after("--runs")
        .and_then(|n| n.parse().ok())
        .unwrap_or(samples);
    let meter = Meter::new(&bed.ssh_config());
    let load_before = report::load_average();
    let results: Vec<Size> = sizes
        .iter()
        .map(|&mib| measure_size(rt, bed, nodes, &meter, mib, samples))
        .collect();
    report::print(&results, samples, &load_before, &report::load_average());
}

fn measure_size(
    rt: &Runtime,
    bed: &Testbed,
    nodes: &Nodes,
    meter: &Meter,
    mib: u64,
    samples: usize,
) -> Size {
    eprintln!("{mib} MiB: bare copies");
    let kinds = chosen_kinds();
    // The paths the chosen ways take (plain TCP, for scale, with the direct one).
    let used = |p: Path| {
        kinds
            .iter()
            .any(|k| k.path() == p || (k.path() == Path::Direct && p == Path::Tcp))
    };
    let bare = PATHS
        .iter()
        .filter(|&&p| used(p))
        .map(|&p| {
            let b = bare::measure(bed, p, mib * MIB, samples).map_err(|e| format!("{e:#}"));
            (p, b)
        })
        .collect();
    let mut rows: Vec<Row> = kinds
        .iter()
        .map(|&kind| Row {
            kind,
            moves: Vec::new(),
            errors: Vec::new(),
        })
        .collect();
    let failed = (|| {
        let mut process = TestProcess::start(bed, mib, Mode::Random)?;
        for round in 0..samples {
            for k in 0..kinds.len() {
                let row = &mut rows[(round + k) % kinds.len()];
                eprintln!("{mib} MiB: {} (round {})", row.kind.name, round + 1);
                if let Some(fresh) = move_once(rt, bed, nodes, meter, mib, &mut process, row)? {
                    process = fresh;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        Ok::<_, anyhow::Error>(())
    })()
    .err()
    .map(|e| format!("{e:#}"));
    Size {
        mib,
        bare,
        rows,
        failed,
    }
}

/// Moves the process (of `mib`) to the other node the row's way and records it. After a
/// failed move whose process is gone from the source, a fresh one (returned) takes its
/// place.
fn move_once<'a>(
    rt: &Runtime,
    bed: &'a Testbed,
    nodes: &Nodes,
    meter: &Meter,
    mib: u64,
    process: &mut TestProcess<'a>,
    row: &mut Row,
) -> Result<Option<TestProcess<'a>>> {
    let (from, to) = (process.node, 3 - process.node);
    let before = meter.snapshot();
    let moved = rt.block_on(migrate(
        nodes.conn(from),
        nodes.conn(to),
        process.pid,
        row.kind.options,
        None,
    ));
    let cpu = meter.between(&before, &meter.snapshot());
    match moved {
        Ok(m) => {
            process.node = to;
            process.pid = m.new_pid;
            record(row, &m, cpu);
            Ok(None)
        }
        Err(e) => {
            let e = format!("{from} → {to}: {e}");
            eprintln!("  failed: {e}");
            row.errors.push(e);
            if process.rss().is_ok() {
                return Ok(None);
            }
            Ok(Some(TestProcess::start(bed, mib, Mode::Random)?))
        }
    }
}

fn record(row: &mut Row, m: &Migrated, cpu: Duration) {
    let kind = row.kind;
    if m.mode != kind.mode || m.route != kind.route {
        row.errors.push(format!(
            "asked for {}, the move went {} {:?}{}",
            kind.name,
            m.mode,
            m.route,
            m.relayed_because
                .as_ref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default()
        ));
        return;
    }
    row.moves.push(Move {
        freeze_ms: m.freeze_ms,
        dump_ms: m.dump_ms,
        handover_ms: m.handover_ms,
        total_ms: m.total_ms,
        bytes: m.bytes,
        cpu,
    });
}
