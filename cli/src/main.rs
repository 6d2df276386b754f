//! `openmosix`: the workstation-side command line of the suite. It drives the agents of a
//! cluster over SSH as the HOWTO's userspace tools drove /proc/hpc (chapter 8.3).

/// Prints a line on stdout; a closed stdout (`openmosix ps | head`) ends the program
/// quietly instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        crate::output::write_out(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// Like [`outln!`] without the newline.
macro_rules! out {
    ($($arg:tt)*) => {
        crate::output::write_out(&format!($($arg)*))
    };
}

mod balance;
mod commands;
mod discovered;
mod gateway;
mod handoffs;
mod mask;
mod migrate;
mod mosctl;
mod node;
mod output;
mod tui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Administer an openMosix-style cluster: node figures, processes, mosctl switches, jobs.
///
/// With no --cluster or --map the cluster is this machine alone, served by a locally
/// started agent.
#[derive(Debug, Parser)]
#[command(
    version,
    long_about,
    after_help = "Exit status is 0 on success, 1 with a one-line reason on stderr otherwise."
)]
pub struct Cli {
    /// A cluster file (TOML: nodes with ids and ssh destinations; see docs/cluster-files.md).
    #[arg(long, global = true, value_name = "FILE", env = "OPENMOSIX_CLUSTER")]
    pub cluster: Option<PathBuf>,
    /// An openmosix.map file (HOWTO 4.4.2); each node is reached by ssh at its address.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "cluster")]
    pub map: Option<PathBuf>,
    /// Take the nodes from auto-discovery on this interface: those heard within 2.5 s
    /// (docs/discovery.md).
    #[arg(long, global = true, value_name = "IFACE", conflicts_with_all = ["cluster", "map"])]
    pub discover: Option<String>,
    /// Print JSON, one object per line.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for a node before calling it down.
    #[arg(long, global = true, default_value_t = 5.0, value_name = "SECS")]
    pub timeout: f64,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Every node with its status and figures (id, address, status, cpus, load, speed, mem, rmem, tmem, util).
    Nodes,
    /// Processes of one node, or of every node, with the openMosix fields.
    Ps {
        /// The node (all nodes when left out).
        node: Option<u32>,
    },
    /// Moves that wait for a decision (a client died mid-migration): settles what can be
    /// settled by asking the source node, and says why the rest waits.
    Handoffs(handoffs::HandoffArgs),
    /// The mosctl verbs of HOWTO table 8-6: `mosctl NODE VERB [ARG]` (or `mosctl VERB NODE`).
    ///
    /// Verbs: stay nostay lstay nolstay block noblock quiet noquiet nomfs mfs expel bring
    /// gettune getyard getdecay whois getload getspeed status isup getmem getfree getutil
    /// setspeed N, setdecay INTERVAL [SLOW FAST], setyard PROCESSOR-TYPE|this|SPEED (the
    /// standard processor the node's speed is measured against; PIII/1GHz = 1000).
    Mosctl {
        /// NODE VERB [ARG...]
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// Start a program on a node, as mosrun did (HOWTO table 8-7); prints its pid.
    ///
    /// The command is passed as an argument array, never through a shell, and is
    /// detached from the SSH session so it outlives it.
    Run(RunArgs),
    /// Send a signal (STOP, CONT, TERM, KILL) to a process.
    Signal {
        /// The node.
        node: u32,
        /// The process id on that node.
        pid: i32,
        /// STOP, CONT, TERM or KILL (with or without SIG, or the number).
        signal: String,
    },
    /// Set the nice value (-20..19) of a process.
    Renice {
        /// The node.
        node: u32,
        /// The process id on that node.
        pid: i32,
        /// The new nice value.
        #[arg(allow_hyphen_values = true)]
        nice: i32,
    },
    /// Move a running process to another node (CRIU checkpoint/restore); prints the new pid.
    ///
    /// TARGET is a node id, `home` (the process's home node) or `best` (the node where it
    /// would run fastest: see docs/migration.md). Progress goes to stderr. A migration that
    /// fails leaves the process running where it was.
    Migrate {
        /// The node it runs on.
        node: u32,
        /// Its pid there.
        pid: i32,
        /// A node id, `home` or `best`.
        target: String,
        /// Dump at once, without pre-dump rounds.
        #[arg(long)]
        no_predump: bool,
        /// Dump the whole image to the source's disk first and stream it after, as
        /// before disk-less moves (by default the memory pages go to the target while the
        /// dump runs: docs/migration.md).
        #[arg(long)]
        disk: bool,
        /// Send the pages through this machine even when the nodes reach each other.
        #[arg(long, conflicts_with = "disk")]
        relay: bool,
        /// Post-copy, for big processes: the process runs on the target after only its
        /// non-memory state moved, and its memory follows as it touches it. If the page
        /// stream breaks after that, the target's copy is killed and the original runs
        /// on: what it did on the target is lost (docs/migration.md).
        #[arg(long, conflicts_with = "disk")]
        postcopy: bool,
    },
    /// Set the cluster mask of a process (HOWTO 8.4): the nodes it may migrate to.
    ///
    /// `allow NODES…` lets it go only to those nodes (migpolicy 1), `deny NODES…` anywhere
    /// but there (migpolicy 0), `off` switches the filter off. NODES are ids (`1 3 5`) or
    /// ranges (`2-4`), 1 to 64. With --json the process is printed as `ps --json` does.
    Mask {
        /// The node it runs on.
        node: u32,
        /// Its pid there.
        pid: i32,
        /// allow, deny or off.
        #[arg(value_enum)]
        mode: mask::MaskMode,
        /// Node ids or ranges (for allow and deny).
        nodes: Vec<String>,
    },
    /// Lock a process to the node it runs on (/proc/PID/lock): it will not migrate.
    ///
    /// With --json the process is printed as `ps --json` does.
    Lock {
        /// The node it runs on.
        node: u32,
        /// Its pid there.
        pid: i32,
    },
    /// Unlock a process (also one started with --nomig, --runhome or --runon).
    ///
    /// With --json the process is printed as `ps --json` does.
    Unlock {
        /// The node it runs on.
        node: u32,
        /// Its pid there.
        pid: i32,
    },
    /// Install (-w), read back (-r) or switch off (-off) the cluster configuration, as setpe.
    Setpe(SetpeArgs),
    /// Print the cluster map in showmap's format.
    ///
    /// With no cluster file or map, on a node whose discovery daemon runs
    /// (`openmosix-agent discover`), the map it hears; with -i, listen on that interface
    /// for announcements (docs/discovery.md) and print the nodes heard.
    Showmap {
        /// Ask this node for the map it has installed and its own id.
        #[arg(long, conflicts_with = "interface")]
        node: Option<u32>,
        /// Listen for discovery announcements on this interface instead.
        #[arg(short = 'i', long = "interface", value_name = "IFACE")]
        interface: Option<String>,
        /// With -i: seconds to listen.
        #[arg(
            long,
            default_value_t = 2.5,
            value_name = "SECS",
            requires = "interface"
        )]
        listen: f64,
    },
    /// Balance the load automatically, in the foreground until SIGINT or SIGTERM.
    ///
    /// Moves jobs started with `run` (and processes unlocked with `unlock`) from busy
    /// nodes to less busy ones, weighted by speed, honouring block, lstay, quiet, the
    /// cluster masks and locks. Only nodes switched to `mosctl NODE nostay` take part.
    /// A process is not moved again within the hold-off. Prints each move (--json: one
    /// object per line); see docs/balancing.md.
    Balance(balance::BalanceArgs),
    /// The cluster in a terminal, as mosmon: one bar per node for the chosen figure.
    ///
    /// Keys: l load, s speed, m memory (used/total), u utilization, c CPUs, t the total
    /// of nodes up; arrows, PageUp, PageDown scroll a large cluster; q quits. Down nodes
    /// are drawn in red; the second line holds the cluster totals. The screen is redrawn
    /// when the nodes report new figures or a key is pressed (docs/terminal.md).
    Mon {
        /// Print one frame as plain text on stdout and exit (no terminal needed).
        #[arg(long)]
        once: bool,
    },
    /// The processes of every node in a terminal, as mtop: a NODE column, acted on by key.
    ///
    /// Columns: NODE, PID, WHERE, HOME, NMIGS, CPU% (user time over the last second),
    /// MEM (resident), state, command. Keys: c m p n sort by CPU, memory, pid, node; /
    /// filters on command or pid (Enter); arrows, PageUp, PageDown, Home, End select; s
    /// signals the selected process (then s STOP, c CONT, t TERM, k KILL), r renices, g
    /// migrates to a node (or home, best), h home, b best, l locks or unlocks; q quits.
    /// The line under the rows says why the selected process cannot move; the status line
    /// the migration's phases and every refusal (docs/terminal.md).
    Top {
        /// Only this node's processes.
        #[arg(long)]
        node: Option<u32>,
        /// Print one frame as plain text on stdout and exit (no terminal needed).
        #[arg(long)]
        once: bool,
    },
    /// Add a node by its ssh destination (`node add DEST`): host key, agent, cluster file.
    Node(node::NodeArgs),
    /// What the workstation runs on a gateway node (docs/fan-out.md); not for people.
    #[command(hide = true)]
    Gateway(gateway::GatewayArgs),
}

/// `openmosix run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The node to start it on.
    pub node: u32,
    /// The process(es) won't migrate.
    #[arg(long)]
    pub nomig: bool,
    /// Locked to its home node.
    #[arg(long)]
    pub runhome: bool,
    /// Run on node N and lock it there.
    #[arg(long, value_name = "N")]
    pub runon: Option<u32>,
    /// A CPU-bound job.
    #[arg(long)]
    pub cpujob: bool,
    /// An I/O-bound job.
    #[arg(long)]
    pub iojob: bool,
    /// Don't refresh its load-balancing statistics.
    #[arg(long)]
    pub nodecay: bool,
    /// Slow decay of its statistics.
    #[arg(long)]
    pub slowdecay: bool,
    /// Fast decay of its statistics.
    #[arg(long)]
    pub fastdecay: bool,
    /// The program and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub argv: Vec<std::ffi::OsString>,
}

/// `openmosix setpe`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["write", "read", "off"])))]
pub struct SetpeArgs {
    /// Install the map given with -f on every node it names (and put them in the pool).
    #[arg(short = 'w', requires = "file")]
    pub write: bool,
    /// Write the configuration installed on a node to -f FILE (or stdout).
    #[arg(short = 'r')]
    pub read: bool,
    /// Take nodes out of the pool (`-off` also works).
    #[arg(long = "off")]
    pub off: bool,
    /// The map file.
    #[arg(short = 'f', value_name = "MAP")]
    pub file: Option<PathBuf>,
    /// With -r: the node to read from (default the first). With -off: only this node.
    #[arg(long)]
    pub node: Option<u32>,
}

fn main() -> ExitCode {
    openmosix_docgen::generate_if_asked::<Cli>("openmosix");
    // setpe spells its switch `-off`; clap wants `--off`.
    let args = std::env::args_os().map(|a| if a == "-off" { "--off".into() } else { a });
    let cli = Cli::parse_from(args);
    openmosix_hpc::logging::init("error");
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("openmosix: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let msg = openmosix_hpc::errors::sentence(e.as_ref());
            eprintln!("openmosix: {}", msg.lines().next().unwrap_or(""));
            ExitCode::FAILURE
        }
    }
}
