//! `openmosixcollector`: the history daemon of HOWTO 10.6 (docs/collector.md).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser;

use openmosix_collector::daemon;
use openmosix_collector::poll::Config;
use openmosix_hpc::map::Cluster;
use openmosix_store::store::SNAPSHOT_EVERY;

const SHORT_HELP: &str = "\
openmosixcollector -d   start the collector as a daemon
openmosixcollector -k   stop the collector
openmosixcollector -n [NOTE]  write a checkpoint to the history
openmosixcollector -r   save the current history and start a new one
openmosixcollector --export   every sample of the history as CSV (for sqlite3 and scripts)
openmosixcollector --help     all the options (--interval, --db, --cluster, --metrics …)";

/// Log the load, memory, processes and events of every node of the cluster to a history
/// (SQLite) for openmosixanalyzer and openmosixhistory.
///
/// With no --cluster or --map the cluster is this machine alone.
#[derive(Debug, Parser)]
#[command(
    name = "openmosixcollector",
    version,
    long_about,
    group(clap::ArgGroup::new("mode").args(["daemon", "kill", "checkpoint", "rotate", "foreground", "export"])),
    after_help = "Exit status is 0 on success, 1 with a one-line reason on stderr otherwise."
)]
struct Cli {
    /// Start the collector as a daemon.
    #[arg(short = 'd')]
    daemon: bool,
    /// Stop the collector.
    #[arg(short = 'k')]
    kill: bool,
    /// Write a checkpoint (a blue line in the analyzer) to the history, with an optional note.
    #[arg(short = 'n', value_name = "NOTE", num_args = 0..=1, default_missing_value = "checkpoint")]
    checkpoint: Option<String>,
    /// Save the current history and start a new one.
    #[arg(short = 'r')]
    rotate: bool,
    /// Write every sample of the history (--db: the live one or a saved file) to stdout as
    /// CSV: time,node,load,util,mem,rmem (Unix s, load ×100, util %, MiB), by time and node.
    #[arg(long)]
    export: bool,
    /// With --export: the first second (Unix time) to write.
    #[arg(long, value_name = "UNIX_S", requires = "export")]
    from: Option<i64>,
    /// With --export: the last second (Unix time) to write.
    #[arg(long, value_name = "UNIX_S", requires = "export")]
    to: Option<i64>,
    /// Run in the foreground until SIGTERM or SIGINT, logging to stderr (the systemd unit
    /// runs this); the pid file is kept, so -k, -n and -r reach it.
    #[arg(long)]
    foreground: bool,
    /// With --foreground: leave the session first (the child `-d` starts).
    #[arg(long, hide = true, requires = "foreground")]
    detached: bool,
    /// Seconds between two samples of every node.
    #[arg(long, default_value_t = 1, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval: u64,
    /// Save the history and start a new one every H hours (0: never).
    #[arg(long, default_value_t = 12.0, value_name = "H")]
    rotate_hours: f64,
    /// Rotated histories to keep beside the live one; older ones are removed at each
    /// rotation (0: keep them all).
    #[arg(long, default_value_t = 10, value_name = "N")]
    keep: usize,
    /// Seconds between two full process lists of a node (a list is also written whenever
    /// a node's set of processes changes).
    #[arg(long, default_value_t = SNAPSHOT_EVERY as u64, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    snapshot: u64,
    /// Seconds between fetches of the process lists (to see changes).
    #[arg(long, default_value_t = 2, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    procs_poll: u64,
    /// The live history (a link to the dated file being written)
    /// [default: /var/lib/openmosix/collector/history.db for root,
    /// $XDG_STATE_HOME/openmosix/collector/history.db for other users].
    #[arg(long, value_name = "PATH", env = "OPENMOSIX_COLLECTOR_DB")]
    db: Option<PathBuf>,
    /// The pid file [default: /run/openmosixcollector.pid for root,
    /// $XDG_STATE_HOME/openmosix/collector/openmosixcollector.pid for other users].
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// A cluster file (docs/cluster-files.md).
    #[arg(long, value_name = "FILE", env = "OPENMOSIX_CLUSTER")]
    cluster: Option<PathBuf>,
    /// An openmosix.map file (HOWTO 4.4.2); each node is reached by ssh at its address.
    #[arg(long, value_name = "FILE", conflicts_with = "cluster")]
    map: Option<PathBuf>,
    /// Take the nodes from auto-discovery on this interface (docs/discovery.md); nodes
    /// that join are collected from then on.
    #[arg(long, value_name = "IFACE", conflicts_with_all = ["cluster", "map"])]
    discover: Option<String>,
    /// Serve the current figures for Prometheus at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("bad path {}", p.display()))
}

fn main() -> ExitCode {
    openmosix_docgen::generate_if_asked::<Cli>("openmosixcollector");
    if std::env::args_os().len() <= 1 {
        println!("{SHORT_HELP}");
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    openmosix_hpc::logging::init("info");
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "openmosixcollector: {}",
                openmosix_hpc::errors::sentence(e.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let db = absolute(
        &cli.db
            .clone()
            .unwrap_or_else(openmosix_store::paths::default_db),
    )?;
    let pid_file = absolute(
        &cli.pid_file
            .clone()
            .unwrap_or_else(daemon::default_pid_file),
    )?;
    if !(0.0..=87_600.0).contains(&cli.rotate_hours) || cli.rotate_hours.is_nan() {
        bail!("--rotate-hours {} is outside 0..87600", cli.rotate_hours);
    }
    if cli.kill {
        let pid = daemon::stop(&pid_file)?;
        println!("openmosixcollector (pid {pid}) stopped");
        return Ok(());
    }
    if let Some(note) = &cli.checkpoint {
        let file = daemon::checkpoint(&db, note)?;
        println!("checkpoint written to {}", file.display());
        return Ok(());
    }
    if cli.export {
        let h = openmosix_store::History::open(&db)
            .with_context(|| format!("cannot read {}", db.display()))?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        openmosix_store::export::samples_csv(&h, cli.from, cli.to, &mut out)?;
        return Ok(());
    }
    if cli.rotate {
        let (saved, new) = daemon::rotate(&db, &pid_file, cli.keep)?;
        println!(
            "history saved as {}; new history {}",
            saved.display(),
            new.display()
        );
        return Ok(());
    }
    let cluster = match &cli.discover {
        Some(interface) => Cluster::discovered(Some(interface)),
        None => Cluster::load(cli.cluster.as_deref(), cli.map.as_deref())?,
    };
    if cli.daemon {
        let pid = daemon::start(
            &child_args(cli, &db, &pid_file)?,
            &pid_file,
            &daemon::log_file(&db),
        )?;
        println!(
            "openmosixcollector started (pid {pid}), writing {}",
            db.display()
        );
        return Ok(());
    }
    if cli.foreground {
        let config = Config {
            cluster,
            db,
            interval: cli.interval,
            snapshot_every: cli.snapshot,
            procs_poll: cli.procs_poll,
            rotate_after: (cli.rotate_hours > 0.0)
                .then(|| Duration::from_secs_f64(cli.rotate_hours * 3600.0)),
            keep: cli.keep,
        };
        return daemon::run(config, &pid_file, cli.metrics, cli.detached);
    }
    println!("{SHORT_HELP}");
    bail!("say what to do: -d, -k, -n, -r or --export")
}

/// The daemon child's command line: the same settings, every path absolute.
fn child_args(cli: &Cli, db: &Path, pid_file: &Path) -> Result<Vec<OsString>> {
    let mut a: Vec<OsString> = vec!["--foreground".into(), "--detached".into()];
    let mut push = |k: &str, v: OsString| {
        a.push(k.into());
        a.push(v);
    };
    push("--interval", cli.interval.to_string().into());
    push("--rotate-hours", cli.rotate_hours.to_string().into());
    push("--keep", cli.keep.to_string().into());
    push("--snapshot", cli.snapshot.to_string().into());
    push("--procs-poll", cli.procs_poll.to_string().into());
    push("--db", db.into());
    push("--pid-file", pid_file.into());
    if let Some(c) = &cli.cluster {
        push("--cluster", absolute(c)?.into());
    }
    if let Some(m) = &cli.map {
        push("--map", absolute(m)?.into());
    }
    if let Some(interface) = &cli.discover {
        push("--discover", interface.into());
    }
    if let Some(addr) = cli.metrics {
        push("--metrics", addr.to_string().into());
    }
    Ok(a)
}
