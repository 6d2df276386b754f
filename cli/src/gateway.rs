//! `openmosix gateway serve|pipe|provision`: what the workstation runs on a gateway node
//! over its one SSH connection there (docs/fan-out.md). Not for people: the workstation
//! starts it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use openmosix_client::ClientOptions;
use openmosix_client::gateway::relay;
use openmosix_client::provision;

/// The gateway's options and what to run.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(subcommand)]
    what: GatewayCommand,
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Relay the agent protocol of a group of nodes on stdin/stdout.
    Serve(GatewayOptions),
    /// Open a side channel (`images`/`pages` send/receive) on a node and copy its bytes.
    Pipe {
        #[command(flatten)]
        options: GatewayOptions,
        /// The node, as this gateway reaches it over ssh.
        dest: String,
        /// The agent's arguments.
        #[arg(last = true, required = true)]
        args: Vec<String>,
    },
    /// Steps 1–6 of `node add` for a node of this gateway's group (docs/provisioning.md),
    /// each step a JSON line on stdout; exit status 1 when one fails.
    Provision {
        #[command(flatten)]
        options: GatewayOptions,
        /// The id the node gets.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65535))]
        id: u32,
        /// The node, as this gateway reaches it over ssh.
        #[arg(last = true, required = true)]
        dest: String,
    },
}

#[derive(Debug, Args)]
struct GatewayOptions {
    /// The ssh_config(5) file for the group's nodes (default: the user's own).
    #[arg(long, value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// The agent command on the group's nodes.
    #[arg(long, default_value = openmosix_hpc::map::DEFAULT_AGENT)]
    agent: String,
}

impl GatewayOptions {
    fn client(&self) -> ClientOptions {
        ClientOptions {
            ssh_config: self.ssh_config.clone(),
            remote_agent: self.agent.clone(),
            // The relay waits longer than a workstation's attempt: a handshake the
            // workstation gave up on is kept for its next try (docs/fan-out.md).
            connect_timeout: std::time::Duration::from_secs(20),
            ..ClientOptions::default()
        }
    }
}

/// Runs `gateway serve` or `gateway pipe`.
pub async fn run(args: GatewayArgs) -> Result<ExitCode> {
    match args.what {
        GatewayCommand::Serve(o) => {
            if o.agent.starts_with('-') {
                bail!("the agent command may not start with '-'");
            }
            relay::serve(tokio::io::stdin(), tokio::io::stdout(), o.client()).await;
            Ok(ExitCode::SUCCESS)
        }
        GatewayCommand::Pipe {
            options,
            dest,
            args,
        } => match relay::pipe(&dest, &args, &options.client()).await {
            Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
            Err(e) => bail!("{dest}: {e}"),
        },
        GatewayCommand::Provision { options, id, dest } => {
            // This gateway's own agent goes to its group.
            let mut report = |p: provision::Progress| {
                outln!("{}", provision::progress_line(&p));
            };
            let installed = provision::install_only(
                &dest,
                id,
                provision::default_agent_binary(),
                options.client(),
                &mut report,
            )
            .await;
            Ok(if installed.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
