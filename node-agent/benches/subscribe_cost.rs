//! What the agent costs a node while a window watches its process list: the real agent
//! binary serving `subscribe` at 1 Hz with the process list, in a PID and a network
//! namespace of its own (`unshare --pid --net --fork --mount-proc`: the processes and the
//! TCP connections it sees are those of a quiet node, not whatever else runs on this
//! machine) with N sleeping processes beside it. Per run it reads the agent's CPU time
//! (utime + stime of /proc/PID/stat), its RSS (VmRSS) and the bytes it writes, over
//! `--secs` seconds after `--warmup` seconds; per N and mode it prints the median of
//! `--runs` runs. Needs root (the PID namespace). docs/benchmarks.md keeps the figures.
//!
//! ```text
//! cargo bench -p openmosix-agent --bench subscribe_cost -- \
//!     [--procs 100,600,2000] [--runs 3] [--secs 30] [--warmup 5] [--mode full,delta] \
//!     [--agent PATH]
//! ```
//!
//! `--mode full` subscribes as a protocol 1 client does (the whole list every second),
//! `delta` as a protocol 2 client does (`hello` with `"protocol":2`, `subscribe` with
//! `"delta":true`). `--agent` measures another build of the agent (an older one, for the
//! figures before a change; it gets the same requests and ignores what it does not know).

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Full,
    Delta,
}

#[derive(Debug)]
struct Options {
    procs: Vec<usize>,
    runs: usize,
    secs: u64,
    warmup: u64,
    modes: Vec<Mode>,
    agent: String,
}

fn options() -> Options {
    let mut o = Options {
        procs: vec![100, 600, 2000],
        runs: 3,
        secs: 30,
        warmup: 5,
        modes: vec![Mode::Full, Mode::Delta],
        agent: env!("CARGO_BIN_EXE_openmosix-agent").to_owned(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match a.as_str() {
            "--procs" => {
                o.procs = value()
                    .split(',')
                    .filter_map(|n| n.trim().parse().ok())
                    .collect();
            }
            "--runs" => o.runs = value().parse().unwrap_or(o.runs).max(1),
            "--secs" => o.secs = value().parse().unwrap_or(o.secs).max(1),
            "--warmup" => o.warmup = value().parse().unwrap_or(o.warmup),
            "--agent" => o.agent = value(),
            "--mode" => {
                o.modes = value()
                    .split(',')
                    .filter_map(|m| match m.trim() {
                        "full" => Some(Mode::Full),
                        "delta" => Some(Mode::Delta),
                        _ => None,
                    })
                    .collect();
            }
            _ => {} // cargo bench passes --bench
        }
    }
    o
}

/// (utime + stime in ticks, VmRSS in kB) of a process.
fn cpu_and_rss(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks, rss))
}

fn ppid_and_comm(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let comm = stat[stat.find('(')? + 1..stat.rfind(')')?].to_owned();
    let ppid = stat[stat.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ppid, comm))
}

/// The agent below `root` (unshare → sh → agent), by its pid in this namespace; `comm` is
/// its file name as the kernel keeps it (15 bytes at most).
fn find_agent(root: u32, comm: &str) -> Option<u32> {
    let all: Vec<(u32, u32, String)> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| ppid_and_comm(p).map(|(pp, c)| (p, pp, c)))
        .collect();
    let shells: Vec<u32> = all
        .iter()
        .filter(|(_, pp, _)| *pp == root)
        .map(|(p, _, _)| *p)
        .collect();
    all.iter()
        .find(|(_, pp, c)| c == comm && shells.contains(pp))
        .map(|(p, _, _)| *p)
}

/// One run's figures: % of one core, RSS kB at the end, max RSS kB, bytes a second, and
/// the processes the agent listed.
struct Figures {
    cpu: f64,
    rss: u64,
    max_rss: u64,
    bytes_per_s: f64,
    procs: usize,
}

fn start(o: &Options, n: usize, state: &std::path::Path) -> Child {
    // sh stays PID 1 of the namespace (the agent is not its init) and starts the sleepers.
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do sleep 100000 & i=$((i+1)); done; \
         \"$0\" serve --backend linux --state-dir \"$1\" --node-id 1"
    );
    Command::new("unshare")
        .args([
            "--pid",
            "--net",
            "--fork",
            "--mount-proc",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .arg(&o.agent)
        .arg(state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare (the bench needs root)")
}

fn run_once(o: &Options, n: usize, mode: Mode, state: &std::path::Path) -> Figures {
    let mut child = start(o, n, state);
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (hello, sub) = match mode {
        Mode::Full => (
            r#"{"id":1,"op":"hello"}"#,
            r#"{"id":2,"op":"subscribe","interval_ms":1000,"procs":true}"#,
        ),
        Mode::Delta => (
            r#"{"id":1,"op":"hello","protocol":2}"#,
            r#"{"id":2,"op":"subscribe","interval_ms":1000,"procs":true,"delta":true}"#,
        ),
    };
    writeln!(stdin, "{hello}\n{sub}").expect("requests");
    let bytes = Arc::new(AtomicU64::new(0));
    let listed = Arc::new(AtomicU64::new(0));
    let reader = {
        let (bytes, listed) = (Arc::clone(&bytes), Arc::clone(&listed));
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                bytes.fetch_add(line.len() as u64, Ordering::Relaxed);
                if listed.load(Ordering::Relaxed) == 0 && line.starts_with(r#"{"sub""#) {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    let count = v["data"]["procs"].as_array().map_or(0, Vec::len);
                    listed.store(count as u64, Ordering::Relaxed);
                }
                line.clear();
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let name = std::path::Path::new(&o.agent)
        .file_name()
        .map(|f| f.to_string_lossy().chars().take(15).collect::<String>())
        .unwrap_or_default();
    let agent = loop {
        if let Some(p) =
            find_agent(child.id(), &name).filter(|_| listed.load(Ordering::Relaxed) > 0)
        {
            break p;
        }
        assert!(Instant::now() < deadline, "the agent did not push a list");
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(o.warmup));
    let (t0, _) = cpu_and_rss(agent).expect("agent stat");
    let b0 = bytes.load(Ordering::Relaxed);
    let start = Instant::now();
    let mut max_rss = 0;
    while start.elapsed() < Duration::from_secs(o.secs) {
        std::thread::sleep(Duration::from_millis(500));
        if let Some((_, rss)) = cpu_and_rss(agent) {
            max_rss = max_rss.max(rss);
        }
    }
    let (t1, rss) = cpu_and_rss(agent).expect("agent stat");
    let elapsed = start.elapsed().as_secs_f64();
    let sent = bytes.load(Ordering::Relaxed) - b0;
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    // USER_HZ, the unit of utime and stime, is 100 on every architecture Linux runs on.
    Figures {
        cpu: (t1 - t0) as f64 / 100.0 / elapsed * 100.0,
        rss,
        max_rss,
        bytes_per_s: sent as f64 / elapsed,
        procs: usize::try_from(listed.load(Ordering::Relaxed)).unwrap_or(0),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn main() {
    let o = options();
    let state = tempfile::tempdir().expect("state folder");
    println!("# agent {} — subscribe 1 Hz with the process list", o.agent);
    println!(
        "| sleepers | listed | mode | CPU % of a core | RSS MiB (max) | bytes/s | runs (CPU %) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for &n in &o.procs {
        for &mode in &o.modes {
            let runs: Vec<Figures> = (0..o.runs)
                .map(|_| run_once(&o, n, mode, state.path()))
                .collect();
            let each: Vec<String> = runs.iter().map(|f| format!("{:.2}", f.cpu)).collect();
            let mib = |kb: f64| kb / 1024.0;
            println!(
                "| {n} | {} | {mode:?} | {:.2} | {:.1} ({:.1}) | {:.0} | {} |",
                runs[0].procs,
                median(runs.iter().map(|f| f.cpu).collect()),
                mib(median(runs.iter().map(|f| f.rss as f64).collect())),
                mib(median(runs.iter().map(|f| f.max_rss as f64).collect())),
                median(runs.iter().map(|f| f.bytes_per_s).collect()),
                each.join(", ")
            );
        }
    }
}
