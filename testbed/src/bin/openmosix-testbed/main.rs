//! `openmosix-testbed`: a test cluster on one machine, as root. Each node is a network
//! namespace on a bridge with its own PID namespace (tini as PID 1) running sshd; the file
//! system is shared. See docs/testbed.md.

mod layout;

mod pool;

mod ops;

mod sys;

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use layout::parse_name;

/// A test cluster on one machine: network namespaces on a bridge, sshd and the agent per node (run as root).
#[derive(Debug, Parser)]
#[command(name = "openmosix-testbed", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a testbed of N nodes (removing an earlier one of the same name first); prints the path of its cluster.toml.
    Up {
        /// Number of nodes (1..=250).
        #[arg(value_parser = clap::value_parser!(u32).range(1..=i64::from(layout::MAX_NODES)))]
        nodes: u32,
        /// Testbed name, [a-z0-9]{1,6}: prefixes its namespaces and interfaces.
        #[arg(long, default_value = "omx", value_parser = parse_name)]
        name: String,
        /// K of the subnet 10.77.K.0/24 (1..=254); beyond 244 nodes also 10.78.K.0/24.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
        net: u8,
        /// Agent binary to copy into the testbed [default: openmosix-agent next to this program].
        #[arg(long)]
        agent: Option<PathBuf>,
        /// Also start a discovery daemon on each node (`openmosix-agent discover -i eth0
        /// --id I`) and write cluster-discovery.toml, which takes its nodes from them.
        #[arg(long)]
        discovery: bool,
        /// Node I has no agent on its PATH (to try `openmosix node add`); repeat or use commas.
        #[arg(long, value_name = "I", value_delimiter = ',')]
        bare: Vec<u32>,
        /// The nodes cannot reach each other (the bridge isolates their ports); the
        /// machine (root namespace) still reaches every node.
        #[arg(long)]
        isolated: bool,
    },
    /// Remove a testbed: kill its processes, delete namespaces, interfaces and state folder.
    Down {
        /// Testbed name.
        #[arg(long, default_value = "omx", value_parser = parse_name, conflicts_with = "all")]
        name: String,
        /// Remove every testbed found under /run/openmosix-testbed/ (and stray namespaces).
        #[arg(long)]
        all: bool,
    },
    /// Show each node's namespace, init and sshd (exits 1 unless all are fine).
    Status {
        /// Testbed name.
        #[arg(long, default_value = "omx", value_parser = parse_name)]
        name: String,
    },
    /// Stop or start a node's sshd.
    Sshd {
        #[command(subcommand)]
        action: SshdCmd,
    },
    /// Run a command inside node I (its network, PID and mount namespaces); passes its exit status through.
    Exec {
        /// Node number.
        node: u32,
        /// Testbed name.
        #[arg(long, default_value = "omx", value_parser = parse_name)]
        name: String,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        argv: Vec<OsString>,
    },
}

#[derive(Debug, Subcommand)]
enum SshdCmd {
    /// Kill every sshd process of node I (listener and connections), so its SSH connections drop.
    Stop {
        /// Node number.
        node: u32,
        /// Testbed name.
        #[arg(long, default_value = "omx", value_parser = parse_name)]
        name: String,
    },
    /// Start node I's sshd again inside its PID namespace and wait until it accepts connections.
    Start {
        /// Node number.
        node: u32,
        /// Testbed name.
        #[arg(long, default_value = "omx", value_parser = parse_name)]
        name: String,
    },
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Up {
            nodes,
            name,
            net,
            agent,
            discovery,
            bare,
            isolated,
        } => {
            let cluster = ops::up(&name, nodes, net, agent, &bare, isolated)?;
            if discovery {
                ops::start_discovery(&name, nodes)?;
            }
            println!("{}", cluster.display());
        }
        Cmd::Down { all: true, .. } => ops::down_all()?,
        Cmd::Down { name, .. } => ops::down_one(&name)?,
        Cmd::Status { name } => {
            if !ops::status(&name)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Sshd {
            action: SshdCmd::Stop { node, name },
        } => ops::sshd_stop(&name, node)?,
        Cmd::Sshd {
            action: SshdCmd::Start { node, name },
        } => ops::sshd_start(&name, node)?,
        Cmd::Exec { node, name, argv } => {
            let status = ops::exec(&name, node, &argv)?;
            let code = status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    openmosix_docgen::generate_if_asked::<Cli>("openmosix-testbed");
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("openmosix-testbed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
