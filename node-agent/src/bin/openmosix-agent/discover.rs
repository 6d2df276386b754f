//! `openmosix-agent discover`: the discovery daemon (omdiscd). In the foreground (`-n`) it
//! logs to stderr; otherwise it starts itself again in the background (its own process
//! group, output appended to STATE_DIR/discovery.log) and returns once that copy runs,
//! or with the copy's error.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use openmosix_agent::discovery_daemon::{Daemon, DaemonConfig};
use openmosix_hpc::discovery::{
    DEFAULT_GROUP, DEFAULT_PORT, DiscoveryConfig, DiscoveryError, DiscoveryFile, state_file,
};

/// How long the background start waits for the daemon to run.
const START_WAIT: Duration = Duration::from_secs(10);

/// `discover`'s options.
#[derive(Debug, Clone, Args)]
pub struct DiscoverArgs {
    /// The interface to announce and listen on [default: the default route's].
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// Stay in the foreground and log to stderr.
    #[arg(short = 'n', long = "foreground")]
    pub foreground: bool,
    /// This node's id, 1 to 65535 [default: OPENMOSIX_NODE_ID, else the last two bytes of
    /// the interface's address, as openMosix did].
    #[arg(long, env = "OPENMOSIX_NODE_ID", value_name = "ID",
          value_parser = clap::value_parser!(u32).range(1..=65535))]
    pub id: Option<u32>,
    /// Seconds between announcements; a node not heard for four of them is dropped.
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub interval: f64,
    /// The multicast group.
    #[arg(long, default_value_t = DEFAULT_GROUP, value_name = "ADDR")]
    pub group: Ipv4Addr,
    /// The UDP port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Folder of the agent's state, where the map goes (discovery.json) [default: as
    /// for serve].
    #[arg(long, env = "OPENMOSIX_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Log into this file, rotated at 1 MiB (the background start passes
    /// STATE_DIR/discovery.log).
    #[arg(long, hide = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

/// The size at which the daemon's log is rotated (one old file kept, `discovery.log.1`).
pub const LOG_MAX_BYTES: u64 = 1024 * 1024;

/// Runs the daemon (in the foreground, or starts it in the background).
pub fn run(args: &DiscoverArgs, state_dir: &Path) -> Result<()> {
    if !(args.interval.is_finite() && (0.05..=3600.0).contains(&args.interval)) {
        bail!("--interval must be between 0.05 and 3600 seconds");
    }
    if !args.group.is_multicast() {
        bail!("--group {} is not a multicast address", args.group);
    }
    if args.foreground {
        foreground(args, state_dir)
    } else {
        background(state_dir)
    }
}

fn foreground(args: &DiscoverArgs, state_dir: &Path) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async {
        let config = DaemonConfig {
            discovery: DiscoveryConfig {
                interface: args.interface.clone(),
                group: args.group,
                port: args.port,
            },
            id: args.id,
            interval: Duration::from_secs_f64(args.interval),
            state_dir: state_dir.to_path_buf(),
        };
        let daemon = Daemon::start(&config).context("Unable to initialize network")?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("watching SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        daemon.run(shutdown).await?;
        Ok(())
    })
}

/// Starts `discover -n` with the same arguments in the background and waits until its
/// map names it.
fn background(state_dir: &Path) -> Result<()> {
    openmosix_hpc::files::private_dir(state_dir)?;
    if state_file::daemon_running(state_dir) {
        return Err(DiscoveryError::AlreadyRunning {
            state_dir: state_dir.to_path_buf(),
        }
        .into());
    }
    let log_path = state_dir.join("discovery.log");
    // Early errors (before the daemon's own log is set up) land here too.
    let mut log = openmosix_hpc::files::open_append(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let start = log.seek(SeekFrom::End(0)).unwrap_or(0);
    let exe = std::env::current_exe().context("finding this program")?;
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .arg("-n")
        .arg("--log-file")
        .arg(&log_path)
        .env("OPENMOSIX_STATE_DIR", state_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in the terminal that started it does not stop it.
        .process_group(0);
    let mut child = cmd.spawn().context("starting the daemon")?;
    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the daemon stopped at once ({status}): {}",
                log_since(&log_path, start)
            );
        }
        if let Ok(Some(map)) = DiscoveryFile::read_live(state_dir)
            && map.pid == child.id()
        {
            eprintln!(
                "openmosix-agent: discovery runs (pid {}): node {} at {} on {}; log {}",
                map.pid,
                map.my_id,
                map.address,
                map.interface,
                log_path.display()
            );
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the daemon (pid {}) did not start within {START_WAIT:?}; see {}",
                child.id(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the log got since `start`, on one line.
fn log_since(path: &Path, start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(start)).is_ok()
    {
        let _ = f.take(4096).read_to_string(&mut text);
    }
    let text = text.trim();
    if text.is_empty() {
        "no output".to_owned()
    } else {
        text.lines().collect::<Vec<_>>().join(" / ")
    }
}
