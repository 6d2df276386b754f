//! The writer's cost: commit time per tick and bytes on disk per node-sample, for 256
//! nodes at 1 Hz over an hour of synthetic samples (docs/collector.md "Figures").
//!
//! The samples: load a random walk (±20 a second between 0 and 400, so busy and idle
//! spells), util following it, free memory drifting by up to ±32 MiB a second, MemFree
//! half of it plus up to 256 MiB of noise, and now and then (once per node-hour on
//! average) a node down for 30 s to 5 min: no samples, a gap.
//!
//! `cargo bench -p openmosix-store --bench store`
//! (`BENCH_NODES=64 BENCH_SECONDS=600` for a shorter run; `BENCH_DIR` for where the file
//! goes, default a temporary folder; `BENCH_SKIP_VIEW=1` skips reading the whole hour
//! through the `samples_all` view, which takes about a minute.)

use std::time::{Duration, Instant};

use openmosix_hpc::model::{NodeInfo, NodeStatus};
use openmosix_store::History;
use openmosix_store::store::{Store, Tick};
use openmosix_testbed::fixtures::Rng;
use openmosix_testbed::stats::percentile;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of this thread (user + system), which a busy machine does not inflate the
/// way it inflates wall time.
#[allow(unsafe_code)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on the stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Bytes this process has handed to write(2) so far (/proc/self/io `wchar`).
fn written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("wchar:").map(|v| v.trim().parse().ok()))
        })
        .flatten()
        .unwrap_or(0)
}

fn main() {
    let nodes = env_or("BENCH_NODES", 256) as u32;
    let seconds = env_or("BENCH_SECONDS", 3600) as i64;
    let keep = std::env::var_os("BENCH_DIR");
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = keep.map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join("bench-history.db");
    let _ = std::fs::remove_file(&path);
    let mut store = Store::open_file(&path).expect("open");
    store
        .set_nodes(
            &(1..=nodes)
                .map(|i| (i, format!("10.0.{}.{}", i / 256, i % 256)))
                .collect::<Vec<_>>(),
        )
        .expect("nodes");

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut state: Vec<NodeInfo> = (1..=nodes)
        .map(|i| NodeInfo {
            id: i,
            cpus: [1, 2, 4, 8][i as usize % 4],
            speed: 1000 + (i % 7) * 250,
            load: 0.0,
            util: 0.0,
            mem: 12 << 30,
            rmem: 8 << 30,
            tmem: 16 << 30,
            status: NodeStatus::Up,
        })
        .collect();
    let start = 1_700_000_000i64;
    // Seconds each node stays down from now (0: up).
    let mut down = vec![0u32; state.len()];
    let mut written_samples = 0i64;
    let mut packed = 0usize;
    let mut times = Vec::with_capacity(seconds as usize);
    let mut pack_times = Vec::new();
    let mut cpu_times = Vec::with_capacity(seconds as usize);
    let wall = Instant::now();
    let written_before = written();
    for s in 0..seconds {
        let mut tick = Tick {
            time: start + s,
            ..Tick::default()
        };
        for (n, down) in state.iter_mut().zip(&mut down) {
            if *down > 0 {
                *down -= 1;
                continue;
            }
            if rng.bits().is_multiple_of(3600) {
                *down = 30 + (rng.bits() % 270) as u32;
                continue;
            }
            // A random walk: busy and idle spells, memory drifting by megabytes.
            n.load = (n.load + (rng.unit() - 0.5) * 40.0).clamp(0.0, 400.0);
            n.util = (n.load / f64::from(n.cpus)).min(100.0);
            let drift = ((rng.unit() - 0.5) * 64.0 * 1048576.0) as i64;
            n.mem = (n.mem as i64 + drift).clamp(1 << 30, 15 << 30) as u64;
            n.rmem = n.mem / 2 + (rng.bits() % (256 << 20));
            tick.samples.push((n.id, n.clone()));
        }
        written_samples += tick.samples.len() as i64;
        let cpu = thread_cpu();
        let r = store.write_tick(&tick).expect("tick");
        cpu_times.push(thread_cpu().saturating_sub(cpu));
        packed += r.packed;
        if r.packed > 0 {
            pack_times.push(r.duration);
        }
        times.push(r.duration);
        if s % 60 == 59 {
            store.wal_checkpoint().expect("checkpoint");
        }
    }
    let wall = wall.elapsed();
    store.wal_checkpoint().expect("checkpoint");
    let written_per_tick = (written() - written_before) as f64 / seconds as f64;
    let conn = store.connection();
    let pragma = |name: &str| -> i64 {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .expect("pragma")
    };
    let page_size = pragma("page_size");
    let used = (pragma("page_count") - pragma("freelist_count")) * page_size;
    drop(store);
    let file_bytes = std::fs::metadata(&path).expect("size").len();
    let samples = written_samples;

    times.sort_unstable();
    let total: Duration = times.iter().sum();
    println!(
        "store bench: {nodes} nodes × {seconds} s = {samples} node-samples written \
         ({} missing: nodes down; {packed} packed into blocks) in {:.1} s",
        i64::from(nodes) * seconds - samples,
        wall.as_secs_f64()
    );
    println!(
        "commit per tick: median {:.2} ms, p99 {:.2} ms, max {:.2} ms, mean {:.2} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        total.as_secs_f64() * 1e3 / times.len() as f64
    );
    cpu_times.sort_unstable();
    println!(
        "CPU time per tick (user + system): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&cpu_times, 0.5).as_secs_f64() * 1e3,
        percentile(&cpu_times, 0.99).as_secs_f64() * 1e3,
        cpu_times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    pack_times.sort_unstable();
    if !pack_times.is_empty() {
        println!(
            "ticks that pack the minute before ({} of {}): median {:.2} ms, max {:.2} ms",
            pack_times.len(),
            times.len(),
            percentile(&pack_times, 0.5).as_secs_f64() * 1e3,
            pack_times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
        );
    }
    println!(
        "written (WAL and checkpoints): {:.1} KiB per tick",
        written_per_tick / 1024.0
    );
    println!(
        "on disk: {file_bytes} bytes ({:.2} bytes per node-sample; pages in use {:.2})",
        file_bytes as f64 / samples as f64,
        used as f64 / samples as f64
    );

    let h = History::open(&path).expect("history");
    if std::env::var_os("BENCH_SKIP_VIEW").is_none() {
        view_all(&h, samples);
    }
    read_back(&h, start, seconds);
}

/// Reads every sample through the `samples_all` view (what a sqlite3 user pays).
fn view_all(h: &History, samples: i64) {
    let t0 = Instant::now();
    let viewed: i64 = h
        .connection()
        .query_row("SELECT count(*) FROM samples_all", [], |r| r.get(0))
        .expect("view");
    let view_time = t0.elapsed();
    assert_eq!(viewed, samples, "the view shows every sample");
    println!(
        "sqlite3 view samples_all: all {viewed} rows in {:.1} s",
        view_time.as_secs_f64()
    );
}

/// What a reader pays: the analyzer's overview, a "find out", one node.
fn read_back(h: &History, start: i64, seconds: i64) {
    let t0 = Instant::now();
    let agg = h
        .aggregate_all(start, start + seconds - 1, 1000)
        .expect("aggregate");
    let agg_time = t0.elapsed();
    let t0 = Instant::now();
    let stats = h
        .stats(None, start, start + seconds - 1)
        .expect("stats")
        .expect("some");
    let stats_time = t0.elapsed();
    let t0 = Instant::now();
    let one = h.samples(1, start, start + seconds - 1).expect("samples");
    let one_time = t0.elapsed();
    println!(
        "reading: aggregate of every node to ≤1000 points {:.0} ms ({} points); \
         cluster stats {:.0} ms ({} samples); one node's samples {:.1} ms ({} rows)",
        agg_time.as_secs_f64() * 1e3,
        agg.values().map(Vec::len).sum::<usize>(),
        stats_time.as_secs_f64() * 1e3,
        stats.samples,
        one_time.as_secs_f64() * 1e3,
        one.len()
    );
}
