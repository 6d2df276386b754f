//! How fast the load balancer spreads 8 CPU-bound jobs started on node 1 of a 4-node
//! testbed (2 CPUs per node) until every node has 2, and the load-balancing efficiency
//! over time. Needs root (it builds the testbed `bbal`). Figures go to stdout; the first
//! run's series to `docs/balancing-efficiency.csv` and a plot of it to
//! `docs/balancing-efficiency.svg`.
//!
//! `cargo bench -p openmosix-client --bench balance [-- --runs N] [-- --quick]`
//!
//! Per run: every node `nostay` with speed 10000; 8 `nice -n 19` busy loops started on
//! node 1 with `run --cpujob`; then the balancer (the library's, default rule, hold-off
//! 30 s) starts, and the clock with it. Every second: the jobs per node (from the agents' process lists), the efficiency of
//! the agents' own load figures (what the main window's bar shows), of the job counts,
//! and of the balancer's loads. `--quick`: one run of 60 s (default: 3 runs, the first
//! one 150 s long so the plot shows the agents' figures settle).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openmosix_client::balance::{BalanceConfig, Balancer, Report, efficiency};
use openmosix_client::{ClientOptions, ClusterHandle};
use openmosix_hpc::bytes::BytesOrText;
use openmosix_hpc::map::Cluster;
use openmosix_hpc::model::{ProcInfo, RunOptions, Signal};
use openmosix_hpc::protocol::Request;
use openmosix_testbed::Testbed;
use openmosix_testbed::stats::median;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

const NODES: u32 = 4;
const JOBS: usize = 8;
const LOOP: &str = "while :; do :; done";

/// One second of a run.
#[derive(Debug, Clone)]
struct Point {
    t: f64,
    jobs: Vec<usize>,
    eff_agents: f64,
    eff_jobs: f64,
    /// None until the balancer's first round.
    eff_balancer: Option<f64>,
}

/// What one run measured.
#[derive(Debug)]
struct RunResult {
    balanced_after: Option<f64>,
    moves: usize,
    points: Vec<Point>,
}

/// `openmosix --timeout 20 args`: the machine may be busy with builds.
fn ok(bed: &Testbed, args: &[&str]) -> String {
    let mut all = vec!["--timeout", "20"];
    all.extend_from_slice(args);
    bed.cli_ok(&all)
}

/// The pids of this run's jobs, per node (index 0 = node 1).
async fn jobs(cluster: &ClusterHandle, tag: &str) -> Vec<Vec<i32>> {
    let mut out = Vec::new();
    for n in 1..=NODES {
        let list: Vec<ProcInfo> = cluster.request(n, Request::Procs).await.unwrap_or_default();
        out.push(
            list.iter()
                .filter(|p| p.cmdline.lossy().contains(tag))
                .map(|p| p.pid)
                .collect(),
        );
    }
    out
}

fn run_once(bed: &Testbed, rt: &Runtime, cluster: &Arc<ClusterHandle>, secs: u64) -> RunResult {
    for n in 1..=NODES {
        let n = n.to_string();
        for verb in ["nostay", "noblock", "nolstay", "noquiet"] {
            ok(bed, &["mosctl", &n, verb]);
        }
        ok(bed, &["mosctl", &n, "setspeed", "10000"]);
    }
    let tag = format!("bbal-{}-{}", std::process::id(), rand_suffix());
    // The 8 jobs first, through the agent's `run` (mosrun), all on node 1.
    let argv: Vec<BytesOrText> = ["nice", "-n", "19", "sh", "-c", LOOP, tag.as_str()]
        .into_iter()
        .map(BytesOrText::from)
        .collect();
    let cpujob = RunOptions {
        cpujob: true,
        ..RunOptions::default()
    };
    for _ in 0..JOBS {
        rt.block_on(cluster.request::<serde_json::Value>(
            1,
            Request::Run {
                argv: argv.clone(),
                options: cpujob.clone(),
            },
        ))
        .expect("start a job on node 1");
    }
    assert_eq!(rt.block_on(jobs(cluster, &tag))[0].len(), JOBS);
    // Then the balancer; the clock starts with it.
    let config = BalanceConfig {
        report_rounds: true,
        ..BalanceConfig::default()
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let latest = Arc::new(Mutex::new((None::<f64>, 0usize)));
    let sink = Arc::clone(&latest);
    rt.spawn(async move {
        while let Some(r) = rx.recv().await {
            let mut l = sink.lock().expect("latest");
            match r {
                Report::Round { efficiency, .. } => l.0 = Some(efficiency),
                Report::Moved { .. } => l.1 += 1,
                _ => {}
            }
        }
    });
    let start = Instant::now();
    let balancer = Balancer::new(Arc::clone(cluster), config, Some(tx));
    let task = rt.spawn(balancer.run(async {
        let _ = stopped.await;
    }));
    let mut points = Vec::new();
    let mut balanced_after = None;
    while start.elapsed() < Duration::from_secs(secs) {
        let per_node = rt.block_on(jobs(cluster, &tag));
        let counts: Vec<usize> = per_node.iter().map(Vec::len).collect();
        let t = start.elapsed().as_secs_f64();
        if balanced_after.is_none() && counts.iter().all(|&c| c == JOBS / 4) {
            balanced_after = Some(t);
        }
        let agents: Vec<(f64, u32)> = cluster
            .nodes()
            .iter()
            .filter_map(|v| v.info.as_ref().map(|i| (i.load, i.cpus)))
            .collect();
        let by_jobs: Vec<(f64, u32)> = counts.iter().map(|&c| (c as f64 * 100.0, 2)).collect();
        points.push(Point {
            t,
            jobs: counts,
            eff_agents: efficiency(&agents),
            eff_jobs: efficiency(&by_jobs),
            eff_balancer: latest.lock().expect("latest").0,
        });
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = stop.send(());
    let _ = rt.block_on(task);
    for (i, pids) in rt.block_on(jobs(cluster, &tag)).iter().enumerate() {
        for &pid in pids {
            let node = u32::try_from(i + 1).unwrap_or(1);
            let _ = rt.block_on(cluster.request::<serde_json::Value>(
                node,
                Request::Signal {
                    pid,
                    signal: Signal::Kill,
                },
            ));
        }
    }
    let moves = latest.lock().expect("latest").1;
    RunResult {
        balanced_after,
        moves,
        points,
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

fn csv(points: &[Point]) -> String {
    let mut s = String::from(
        "t_s,jobs_node1,jobs_node2,jobs_node3,jobs_node4,efficiency_agents,efficiency_jobs,efficiency_balancer\n",
    );
    for p in points {
        let jobs: Vec<String> = p.jobs.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "{:.1},{},{:.1},{:.1},{}",
            p.t,
            jobs.join(","),
            p.eff_agents,
            p.eff_jobs,
            p.eff_balancer.map_or(String::new(), |e| format!("{e:.1}"))
        );
    }
    s
}

/// A plotted series: its name, colour and value at a point.
type Series = (&'static str, &'static str, fn(&Point) -> Option<f64>);

/// A line plot of the three efficiency series, 0..100 % over the run's seconds.
fn svg(points: &[Point], balanced_after: Option<f64>) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 360.0, 56.0, 16.0, 36.0, 44.0);
    let t_max = points.last().map_or(1.0, |p| p.t.max(1.0));
    let x = |t: f64| left + (w - left - right) * t / t_max;
    let y = |e: f64| top + (h - top - bottom) * (1.0 - e / 100.0);
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{h}" fill="white"/>
<text x="{left}" y="22" font-size="14">Load-balancing efficiency: 8 jobs on node 1 of 4, then the balancer starts</text>
"##
    );
    for e in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let (x2, ye, xt, yt) = (w - right, y(e), left - 6.0, y(e) + 4.0);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{ye:.1}" y2="{ye:.1}" stroke="#ddd"/><text x="{xt}" y="{yt:.1}" text-anchor="end">{e:.0} %</text>"##
        );
    }
    let step = if t_max > 100.0 { 30.0 } else { 10.0 };
    let mut t = 0.0;
    while t <= t_max + 0.01 {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1:.1}" stroke="#eee"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{t:.0}</text>"##,
            x(t),
            h - bottom,
            h - bottom + 16.0
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds after the balancer started</text>"##,
        f64::midpoint(left, w - right),
        h - 8.0
    );
    if let Some(b) = balanced_after {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1:.1}" stroke="#888" stroke-dasharray="4 3"/><text x="{2:.1}" y="{3:.1}" fill="#555">2 jobs per node at {b:.1} s</text>"##,
            x(b),
            h - bottom,
            x(b) + 4.0,
            top + 14.0
        );
    }
    let series: [Series; 3] = [
        ("jobs per node", "#2a7", |p| Some(p.eff_jobs)),
        ("the balancer's loads", "#e90", |p| p.eff_balancer),
        ("the agents' load figures (main window)", "#36c", |p| {
            Some(p.eff_agents)
        }),
    ];
    for (i, (name, color, f)) in series.iter().enumerate() {
        let pts: Vec<String> = points
            .iter()
            .filter_map(|p| f(p).map(|e| format!("{:.1},{:.1}", x(p.t), y(e))))
            .collect();
        let ly = h - bottom - 14.0 - 16.0 * (2 - i) as f64;
        let (lx1, lx2, tx, ty) = (
            w - right - 260.0,
            w - right - 236.0,
            w - right - 230.0,
            ly + 4.0,
        );
        let _ = writeln!(
            s,
            r##"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/><line x1="{lx1:.1}" x2="{lx2:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/><text x="{tx:.1}" y="{ty:.1}">{name}</text>"##,
            pts.join(" ")
        );
    }
    s.push_str("</svg>\n");
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let bed = Testbed::shared("bbal", 242, NODES);
    let cluster = Cluster::from_file(&bed.cluster_file).expect("cluster file");
    let mut options = ClientOptions::for_cluster(&cluster);
    options.connect_timeout = Duration::from_secs(20);
    options.request_timeout = Duration::from_secs(20);
    let rt = Runtime::new().expect("tokio runtime");
    let handle = Arc::new(rt.block_on(async {
        let h = ClusterHandle::connect(&cluster, &options);
        h.settled(Duration::from_secs(10)).await;
        h
    }));

    println!("# balancer: {JOBS} jobs started on node 1 of {NODES} (2 CPUs each), {runs} run(s)");
    println!("| run | 2 jobs per node after | moves |");
    println!("| --- | --- | --- |");
    let mut times = Vec::new();
    let mut first: Option<RunResult> = None;
    for run in 1..=runs {
        let secs = match (quick, run) {
            (true, _) => 60,
            (false, 1) => 150,
            (false, _) => 75,
        };
        let r = run_once(bed, &rt, &handle, secs);
        let after = r
            .balanced_after
            .map_or_else(|| format!("not within {secs} s"), |t| format!("{t:.1} s"));
        println!("| {run} | {after} | {} |", r.moves);
        if let Some(t) = r.balanced_after {
            times.push(t);
        }
        if first.is_none() {
            first = Some(r);
        }
        // Let the nodes' loads fall back before the next run.
        std::thread::sleep(Duration::from_secs(5));
    }
    println!(
        "median time to 2 jobs per node: {:.1} s ({} of {runs} runs balanced)",
        median(times.clone()),
        times.len()
    );
    if let Some(r) = first {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let eff_at = |secs: f64| {
            r.points
                .iter()
                .find(|p| p.t >= secs)
                .map_or(f64::NAN, |p| p.eff_agents)
        };
        println!(
            "run 1, efficiency of the agents' load figures: {:.0} % at 10 s, {:.0} % at 30 s, {:.0} % at 60 s, {:.0} % at 120 s",
            eff_at(10.0),
            eff_at(30.0),
            eff_at(60.0),
            eff_at(120.0)
        );
        let written = std::fs::write(docs.join("balancing-efficiency.csv"), csv(&r.points))
            .and_then(|()| {
                std::fs::write(
                    docs.join("balancing-efficiency.svg"),
                    svg(&r.points, r.balanced_after),
                )
            });
        match written {
            Ok(()) => println!(
                "series: docs/balancing-efficiency.csv, plot: docs/balancing-efficiency.svg"
            ),
            Err(e) => println!("could not write the series into {}: {e}", docs.display()),
        }
    }
}
