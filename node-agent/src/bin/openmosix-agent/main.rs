//! `openmosix-agent`: the node agent. `serve` answers the JSON-lines protocol on
//! stdin/stdout; the client starts it over SSH (or locally) and keeps the channel open.

mod discover;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use openmosix_agent::backend::criu::CriuChecks;
use openmosix_agent::backend::events::EventLog;
use openmosix_agent::backend::kernel::KernelBackend;
use openmosix_agent::backend::linux::{LinuxBackend, LinuxConfig, calibrate};
use openmosix_agent::backend::migration::Migrator;
use openmosix_agent::backend::procfs::ProcFs;
use openmosix_agent::backend::syscalls;
use openmosix_agent::server::Server;

/// The openMosix node agent: reports what openMosix reported under /proc/hpc and applies
/// what mosctl applied, for the openmosixview suite.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BackendKind {
    /// kernel if PROC_ROOT/hpc exists, else linux.
    Auto,
    /// Any modern Linux: /proc figures, switches in the state file.
    Linux,
    /// An openMosix kernel: /proc/hpc.
    Kernel,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Direction {
    /// Write the image to stdout.
    Send,
    /// Read the image from stdin.
    Receive,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Answer protocol requests on stdin/stdout (docs/protocol.md) until stdin ends.
    Serve {
        /// Which backend to use.
        #[arg(long, value_enum, default_value = "auto")]
        backend: BackendKind,
        /// The /proc root to read (a fixture tree in tests).
        #[arg(long, default_value = "/proc", value_name = "PATH")]
        proc_root: PathBuf,
        /// Folder of the agent's state file [default: /var/lib/openmosix for root,
        /// $XDG_STATE_HOME/openmosix (~/.local/state/openmosix) for other users].
        #[arg(long, env = "OPENMOSIX_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// This node's openMosix id [default: the id its running discovery daemon
        /// announces, else the state file's, else 1].
        #[arg(long, env = "OPENMOSIX_NODE_ID", value_name = "ID")]
        node_id: Option<u32>,
        /// The criu binary [default: criu on PATH or in an sbin folder].
        #[arg(long, env = "OPENMOSIX_CRIU", value_name = "PATH")]
        criu: Option<PathBuf>,
    },
    /// Stream a migration image: `send ID` writes it to stdout as tar, `receive ID` reads
    /// it from stdin. The client runs these on its SSH connection while a process moves.
    Images {
        /// send or receive.
        #[arg(value_enum)]
        direction: Direction,
        /// The image name (as `dump` answered).
        image: String,
        /// Folder of the agent's state (images live in its `images/`).
        #[arg(long, env = "OPENMOSIX_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// `receive` only: the stream is the rest of a disk-less dump, whose pages
        /// `pages receive` has taken already.
        #[arg(long)]
        onto_pages: bool,
        /// `receive` only: about how many bytes come (the image goes into memory when
        /// that fits there).
        #[arg(long, value_name = "BYTES")]
        size: Option<u64>,
    },
    /// Carry a disk-less migration's memory pages (docs/migration.md): `send ID` on the
    /// source takes them from the dump, `receive ID` on the target gives them to a criu
    /// page server; between them the client's relay or a direct, sealed TCP link.
    Pages {
        /// send or receive.
        #[arg(value_enum)]
        direction: Direction,
        /// The image name (as `prepare` answered).
        image: String,
        /// Folder of the agent's state (images live in its `images/`).
        #[arg(long, env = "OPENMOSIX_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// The criu binary [default: criu on PATH or in an sbin folder].
        #[arg(long, env = "OPENMOSIX_CRIU", value_name = "PATH")]
        criu: Option<PathBuf>,
        /// `receive` only: post-copy — after the client's `start` (the rest of the image
        /// has arrived) run `criu lazy-pages`, which fetches the pages the restored
        /// process touches, then all the others.
        #[arg(long)]
        lazy: bool,
        /// `receive` only: about how many bytes of pages come (they go into memory
        /// when that fits there).
        #[arg(long, value_name = "BYTES")]
        size: Option<u64>,
    },
    /// The guard of a post-copy move's page daemon on the target, started by `pages
    /// receive --lazy` with criu's end of the page stream on stdin: kills the restored
    /// copy if the daemon ends before every page came (docs/migration.md, "Post-copy").
    #[command(hide = true)]
    LazyGuard {
        /// The image name.
        image: String,
        /// Folder of the agent's state (images live in its `images/`).
        #[arg(long, env = "OPENMOSIX_STATE_DIR", value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// The criu binary [default: criu on PATH or in an sbin folder].
        #[arg(long, env = "OPENMOSIX_CRIU", value_name = "PATH")]
        criu: Option<PathBuf>,
    },
    /// Measure this machine's speed (PIII/1GHz = 1000) and print it.
    Calibrate,
    /// Auto-discovery (omdiscd, HOWTO 5): announce this node by UDP multicast on an
    /// interface and keep the map of the nodes heard in the state folder
    /// (`openmosix showmap` prints it). Runs in the background unless -n is given.
    Discover(discover::DiscoverArgs),
}

/// Gives `m` its folder for images in memory: `$OPENMOSIX_MEMORY_IMAGES` (`off`: none),
/// else this user's folder on /dev/shm for `state_dir`; none, with a warning, when that
/// folder is not safe to use.
fn with_memory(m: Migrator, state_dir: &Path) -> Migrator {
    use openmosix_agent::backend::migration::memory;
    use openmosix_hpc::memory_images;
    let asked = std::env::var_os(memory_images::ENV);
    let prepared = match asked.as_deref() {
        Some(v) if v == "off" => return m,
        Some(dir) => memory::prepare(Path::new(dir), false),
        None => memory::prepare(
            &memory_images::default_dir(state_dir, openmosix_agent::backend::syscalls::euid()),
            true,
        ),
    };
    match prepared {
        Ok(dir) => m.with_memory(dir),
        Err(why) => {
            tracing::warn!("images stay on disk: {why}");
            m
        }
    }
}

fn default_state_dir() -> PathBuf {
    openmosix_hpc::discovery::state_file::default_state_dir()
}

fn main() -> std::process::ExitCode {
    openmosix_docgen::generate_if_asked::<Cli>("openmosix-agent");
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "openmosix-agent: {}",
                openmosix_hpc::errors::sentence(e.as_ref())
            );
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    // The discovery daemon logs who joins and leaves, as omdiscd did.
    let level = if matches!(cli.command, Command::Discover(_)) {
        "info"
    } else {
        "warn"
    };
    match &cli.command {
        Command::Discover(args) if args.foreground && args.log_file.is_some() => {
            if let Some(file) = &args.log_file {
                openmosix_hpc::logging::init_file(level, file, discover::LOG_MAX_BYTES);
            }
        }
        _ => openmosix_hpc::logging::init(level),
    }
    match cli.command {
        Command::Discover(args) => {
            let state_dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
            discover::run(&args, &state_dir)
        }
        Command::Calibrate => {
            println!("{}", calibrate());
            Ok(())
        }
        Command::Images {
            direction,
            image,
            state_dir,
            onto_pages,
            size,
        } => images(
            direction,
            &image,
            &state_dir.unwrap_or_else(default_state_dir),
            onto_pages,
            size,
        ),
        Command::Pages {
            direction,
            image,
            state_dir,
            criu,
            lazy,
            size,
        } => pages(
            direction,
            &image,
            &state_dir.unwrap_or_else(default_state_dir),
            criu.as_deref(),
            lazy,
            size,
        ),
        Command::Serve {
            backend,
            proc_root,
            state_dir,
            node_id,
            criu,
        } => serve(backend, &proc_root, state_dir, node_id, criu.as_deref()),
        Command::LazyGuard {
            image,
            state_dir,
            criu,
        } => lazy_guard(
            &image,
            &state_dir.unwrap_or_else(default_state_dir),
            criu.as_deref(),
        ),
    }
}

/// `lazy-guard IMAGE`: criu's end of the page stream on stdin, its word on stdout.
fn lazy_guard(image: &str, state_dir: &Path, criu: Option<&Path>) -> Result<()> {
    use openmosix_agent::backend::migration::guard;
    let m = with_memory(
        Migrator::new(None, String::new(), state_dir, ProcFs::new("/proc")),
        state_dir,
    );
    let Some(criu) = openmosix_agent::backend::criu::locate(criu) else {
        bail!("criu is not installed here, so no page daemon can run");
    };
    let (stdin, stdout) = openmosix_agent::backend::syscalls::take_stdio();
    // criu gets the socket on a descriptor of its own: its stdin is /dev/null.
    // (Every copy of criu's end must close when criu ends: the pump reads that end.)
    let on_stdin = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(stdin));
    let socket = on_stdin.try_clone()?;
    drop(on_stdin);
    guard::run(&m, &criu, image, socket, stdout)?;
    Ok(())
}

/// `images send|receive`: streams image `image` of the agent's state in `state_dir`.
fn images(
    direction: Direction,
    image: &str,
    state_dir: &Path,
    onto_pages: bool,
    size: Option<u64>,
) -> Result<()> {
    let m = with_memory(
        Migrator::new(None, String::new(), state_dir, ProcFs::new("/proc")),
        state_dir,
    );
    match direction {
        Direction::Send => {
            m.send(image, std::io::BufWriter::new(std::io::stdout().lock()))?;
        }
        Direction::Receive => {
            m.receive(
                image,
                std::io::BufReader::new(std::io::stdin().lock()),
                onto_pages,
                size,
            )?;
        }
    }
    Ok(())
}

/// `pages send|receive`: one end of a disk-less migration's page stream.
fn pages(
    direction: Direction,
    image: &str,
    state_dir: &Path,
    criu: Option<&Path>,
    lazy: bool,
    size: Option<u64>,
) -> Result<()> {
    use openmosix_agent::backend::migration::pages;
    let m = with_memory(
        Migrator::new(None, String::new(), state_dir, ProcFs::new("/proc")),
        state_dir,
    );
    let (stdin, stdout) = openmosix_agent::backend::syscalls::take_stdio();
    let stdin = std::io::BufReader::with_capacity(256 * 1024, stdin);
    match direction {
        Direction::Send => {
            pages::send(&m, image, stdin, stdout)?;
        }
        Direction::Receive => {
            let Some(criu) = openmosix_agent::backend::criu::locate(criu) else {
                bail!("criu is not installed here, so no page server can run");
            };
            pages::receive(&m, &criu, image, stdin, stdout, lazy, size)?;
        }
    }
    Ok(())
}

/// `serve`: answers the protocol on stdin/stdout with the backend asked for.
fn serve(
    backend: BackendKind,
    proc_root: &Path,
    state_dir: Option<PathBuf>,
    node_id: Option<u32>,
    criu: Option<&Path>,
) -> Result<()> {
    let use_kernel = match backend {
        BackendKind::Auto => KernelBackend::detect(proc_root),
        BackendKind::Linux => false,
        BackendKind::Kernel => true,
    };
    // Before any thread starts (docs/benchmarks.md, "Agent cost"): a lean allocator, and
    // room for the stat files a listing keeps open.
    syscalls::lean_allocator();
    syscalls::raise_fd_limit(8192);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let stdout = tokio::io::stdout();
    if use_kernel {
        let b = KernelBackend::open(proc_root)?;
        if node_id.is_some_and(|id| id != openmosix_agent::backend::Backend::node_id(&b)) {
            bail!(
                "--node-id disagrees with {}/hpc/admin/mospe",
                proc_root.display()
            );
        }
        rt.block_on(Server::new(b).serve(stdin, stdout))?;
    } else {
        let state_dir = state_dir.unwrap_or_else(default_state_dir);
        let server = linux_server(proc_root, &state_dir, node_id, criu)?;
        rt.block_on(server.serve(stdin, stdout))?;
    }
    Ok(())
}

/// The server of a linux node: its backend, criu if it passes `criu check` (found out in
/// the background), and the node's event log.
fn linux_server(
    proc_root: &Path,
    state_dir: &Path,
    node_id: Option<u32>,
    criu: Option<&Path>,
) -> Result<Server<LinuxBackend>> {
    // Unless told, the node has the id its discovery daemon announces.
    let node_id = node_id.or_else(|| {
        openmosix_hpc::discovery::DiscoveryFile::read_live(state_dir)
            .ok()
            .flatten()
            .map(|found| found.my_id)
    });
    let config = LinuxConfig {
        proc_root: proc_root.to_path_buf(),
        state_dir: state_dir.to_path_buf(),
        node_id,
    };
    let b = LinuxBackend::open(&config)?;
    // criu's checks run while the agent already answers (hello says `checking`).
    let checks = CriuChecks::start(criu.map(Path::to_path_buf), state_dir.to_path_buf());
    let migrator = with_memory(
        Migrator::with_checks(checks, state_dir, ProcFs::new(proc_root)),
        state_dir,
    );
    let server = Server::new(b).with_migration(migrator).with_state_lock(
        openmosix_agent::backend::state::StateFile::lock_path_in(state_dir),
    );
    // The events of this node, shared by all its agents (docs/collector.md).
    Ok(match EventLog::open(state_dir) {
        Ok(log) => server.with_events(log),
        Err(e) => {
            tracing::warn!(
                "no event log in {}: {e}; events are not recorded",
                state_dir.display()
            );
            server
        }
    })
}
