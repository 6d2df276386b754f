//! `openmosix node add DEST`: add a node by its ssh destination — host key shown and
//! accepted only by an explicit choice, the suite's agent copied over when the node has
//! none, the node recorded in the cluster file. Every step is printed as it happens.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand};
use openmosix_client::ClientOptions;
use openmosix_client::hostkey::{self, HostKeyCheck, HostKeyStatus};
use openmosix_client::provision::{self, AddNode, Added, Progress, Step, StepState};
use openmosix_hpc::model::NodeId;

/// `openmosix node …`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    pub command: NodeCmd,
}

/// The node subcommands.
#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Add a node by its ssh destination: check its host key, install the agent if it has
    /// none, record it in the --cluster file (created when missing), and check it answers.
    ///
    /// An unknown host key is printed with its SHA256 fingerprint and recorded in the
    /// known_hosts file ssh uses only when you accept it: answer `yes` at the prompt, or
    /// pass --accept-host-key with that exact fingerprint. A changed host key is refused
    /// with a warning and never overwritten. The agent goes to
    /// ~/.local/lib/openmosix/openmosix-agent on the node (see docs/provisioning.md).
    Add {
        /// The ssh destination: [user@]host or a Host of the cluster's ssh config.
        dest: String,
        /// The node id [default: one above the highest in the cluster file].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65535))]
        id: Option<u32>,
        /// Accept the node's unknown host key if its fingerprint is this one (SHA256:…).
        #[arg(long, value_name = "SHA256:…")]
        accept_host_key: Option<String>,
        /// The agent binary to install [default: openmosix-agent beside this program].
        #[arg(long, value_name = "PATH")]
        agent_binary: Option<PathBuf>,
        /// The node is a gateway (docs/fan-out.md): install the relay (`openmosix`) on it
        /// too. A node that some node of the cluster file is `via` is one without this.
        #[arg(long)]
        gateway: bool,
        /// The relay program a gateway gets [default: this program].
        #[arg(long, value_name = "PATH")]
        relay_binary: Option<PathBuf>,
        /// The node is reached through gateway node N of the cluster file: DEST is as N
        /// reaches it, and N checks its host key and installs its own agent there.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65535))]
        via: Option<u32>,
    },
}

/// The global options `node` uses.
#[derive(Debug)]
pub struct NodeGlobals {
    /// `--cluster`.
    pub cluster: Option<PathBuf>,
    /// `--map` was given.
    pub map: bool,
    /// `--json`.
    pub json: bool,
    /// `--timeout`.
    pub timeout: f64,
}

/// Runs `node …`; needs `--cluster FILE` (the file the node is recorded in).
pub async fn run(cli: NodeGlobals, args: NodeArgs) -> Result<ExitCode> {
    let NodeCmd::Add {
        dest,
        id,
        accept_host_key,
        agent_binary,
        gateway,
        relay_binary,
        via,
    } = args.command;
    let (cluster_file, options) = cluster_file_and_options(&cli)?;
    if via.is_some() {
        // The gateway checks the node's host key against its own known_hosts.
        if accept_host_key.is_some() {
            bail!(
                "--accept-host-key does not apply with --via: the gateway checks the node's host \
                 key against its own known_hosts (ssh to the node from the gateway once to record it)"
            );
        }
    } else {
        let check = hostkey::check(
            &dest,
            options.ssh_config.as_deref(),
            options.connect_timeout,
        )
        .await
        .map_err(|e| anyhow!("{e}"))?;
        if !host_key_decision(&check, accept_host_key.as_deref(), cli.json).await? {
            return Ok(ExitCode::FAILURE);
        }
    }

    let plan = AddNode {
        dest,
        cluster_file,
        id: id.map(|i| i as NodeId),
        agent_binary: agent_binary.unwrap_or_else(provision::default_agent_binary),
        relay_binary: relay_binary.unwrap_or_else(provision::default_relay_binary),
        gateway,
        via: via.map(|g| g as NodeId),
        options,
    };
    let json = cli.json;
    let mut report = move |p: Progress| print_progress(&p, json);
    let added = provision::provision(&plan, &mut report).await?;
    print_added(&plan, &added, json);
    Ok(ExitCode::SUCCESS)
}

/// The cluster file the node goes in, and how to reach nodes (its ssh config and agent
/// command, if it exists yet; the `--timeout`).
fn cluster_file_and_options(cli: &NodeGlobals) -> Result<(PathBuf, ClientOptions)> {
    if cli.map {
        bail!("node add records the node in a cluster file: give --cluster FILE instead of --map");
    }
    let Some(cluster_file) = cli.cluster.clone() else {
        bail!(
            "node add records the node in a cluster file: give --cluster FILE (created if missing)"
        );
    };
    let timeout = crate::commands::seconds(cli.timeout)?;
    let cluster = provision::load_cluster(&cluster_file).map_err(|e| anyhow!(e))?;
    let mut options = cluster
        .as_ref()
        .map_or_else(ClientOptions::default, ClientOptions::for_cluster);
    options.connect_timeout = timeout;
    options.request_timeout = timeout;
    Ok((cluster_file, options))
}

/// The last line: the node added.
fn print_added(plan: &AddNode, added: &Added, json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::json!({
                "added": added.id,
                "dest": plan.dest,
                "installed": added.installed,
                "appended": added.appended,
                "agent_version": added.hello.agent_version,
                "protocol": added.hello.protocol,
            })
        );
    } else {
        outln!(
            "node {} ({}) is in {}{}",
            added.id,
            plan.dest,
            plan.cluster_file.display(),
            if added.installed {
                ", with the agent installed"
            } else {
                ""
            }
        );
    }
}

/// Known: go on. Unknown: record it if the user accepts (the flag's fingerprint, or
/// `yes` at a terminal prompt). Changed: the warning, and stop.
async fn host_key_decision(check: &HostKeyCheck, accept: Option<&str>, json: bool) -> Result<bool> {
    match &check.status {
        HostKeyStatus::Known { .. } | HostKeyStatus::Vouched { .. } => Ok(true),
        HostKeyStatus::Changed { recorded, offered } => {
            bail!(
                "{}",
                HostKeyCheck::changed_warning(&check.target, recorded, offered)
            )
        }
        HostKeyStatus::Unknown { offered } => {
            let fp = offered.fingerprint();
            let shown = format!(
                "the host key of {} ({}) is not known: {} key fingerprint is {fp}",
                check.target.dest,
                check.target.lookup,
                offered.short_kind()
            );
            let chosen = match accept {
                Some(given) => {
                    print_line(json, Step::HostKey, "unknown", &shown);
                    given.to_owned()
                }
                None if std::io::stdin().is_terminal() && !json => {
                    ask_at_terminal(&shown, check)?;
                    fp.clone()
                }
                None => {
                    bail!(
                        "{shown}. Check it (on the node: ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub) and, if it matches, run again with --accept-host-key {fp}",
                        offered.short_kind().to_lowercase()
                    );
                }
            };
            let file = hostkey::accept(check, &chosen)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            print_line(
                json,
                Step::HostKey,
                "accepted",
                &format!(
                    "recorded {} {fp} in {}",
                    offered.short_kind(),
                    file.display()
                ),
            );
            Ok(true)
        }
    }
}

/// Shows the unknown key and asks; anything but `yes` refuses it.
fn ask_at_terminal(shown: &str, check: &HostKeyCheck) -> Result<()> {
    outln!("{shown}");
    out!(
        "Accept it and record it in {}? Type yes to accept: ",
        check.target.record_file_name()
    );
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() != "yes" {
        bail!("host key not accepted; nothing was changed");
    }
    Ok(())
}

fn print_line(json: bool, step: Step, state: &str, detail: &str) {
    if json {
        outln!(
            "{}",
            serde_json::json!({"step": step.title(), "state": state, "detail": detail})
        );
    } else {
        outln!(
            "[{}/{}] {}: {state}, {detail}",
            step.number(),
            Step::ALL.len(),
            step.title()
        );
    }
}

fn print_progress(p: &Progress, json: bool) {
    let (state, detail) = match &p.state {
        StepState::Running(d) => ("running", d),
        StepState::Done(d) => ("ok", d),
        StepState::Skipped(d) => ("skipped", d),
        StepState::Failed(d) => ("FAILED", d),
    };
    print_line(json, p.step, state, detail);
}
