//! `openmosix balance`: the cluster's automatic load balancer, in the foreground until
//! SIGINT or SIGTERM (docs/balancing.md).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use openmosix_client::ClusterHandle;
use openmosix_client::balance::{BalanceConfig, Balancer, Report};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::commands::Ctx;

/// `openmosix balance`.
#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// Seconds a process stays where it is after it moved (by the balancer or anyone).
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub holdoff: f64,
    /// Share (0..1) of a process's own load per CPU a move must take off the busier node
    /// of the two; 0 moves whenever the busier node gets less busy.
    #[arg(long, default_value_t = 0.25, value_name = "FRACTION")]
    pub min_gain: f64,
    /// Print the moves it would make, and make none.
    #[arg(long)]
    pub dry_run: bool,
    /// Also print every node's load as the balancer sees it, every round.
    #[arg(long)]
    pub rounds: bool,
    /// Move processes of at least this many MiB (resident) post-copy: frozen only for
    /// their non-memory state, their memory following (docs/migration.md says what
    /// post-copy risks). Off by default.
    #[arg(long, value_name = "MIB")]
    pub postcopy_above: Option<u64>,
}

fn seconds(what: &str, secs: f64) -> Result<Duration> {
    if !(secs.is_finite() && (0.0..=86_400.0).contains(&secs)) {
        bail!("--{what} must be a number of seconds from 0 to 86400");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn describe(r: &Report) -> Option<String> {
    match r {
        Report::Moving {
            planned,
            dry_run: true,
            ..
        } => Some(format!(
            "would move {} from node {} to node {} (load per CPU {:.1} → {:.1} there, {:.1} → {:.1} here)",
            planned.pid,
            planned.from,
            planned.to,
            planned.before.0,
            planned.after.0,
            planned.before.1,
            planned.after.1
        )),
        Report::Moving { .. } => None,
        Report::Moved {
            pid,
            from,
            to,
            new_pid,
            ms,
            ..
        } => Some(format!(
            "moved {pid} from node {from} to node {to} as {new_pid} ({ms} ms)"
        )),
        Report::Failed {
            pid,
            from,
            to,
            reason,
            ..
        } => Some(format!(
            "could not move {pid} from node {from} to node {to}: {reason}"
        )),
        Report::Round {
            nodes, efficiency, ..
        } => {
            let parts: Vec<String> = nodes
                .iter()
                .map(|n| match &n.out {
                    Some(why) => format!("{}: {why}", n.id),
                    None => format!("{}: load {:.0} ({:.1}/CPU)", n.id, n.load, n.pressure),
                })
                .collect();
            Some(format!(
                "efficiency {efficiency:.0} % — {}",
                parts.join("; ")
            ))
        }
    }
}

/// Resolves on the first SIGINT or SIGTERM.
async fn stop_signal() {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot watch SIGINT/SIGTERM: stop the balancer with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

pub async fn run(ctx: &Ctx, args: BalanceArgs) -> Result<ExitCode> {
    if !(args.min_gain.is_finite() && (0.0..=1.0).contains(&args.min_gain)) {
        bail!("--min-gain must be a share from 0 to 1");
    }
    let config = BalanceConfig {
        holdoff: seconds("holdoff", args.holdoff)?,
        min_gain: args.min_gain,
        dry_run: args.dry_run,
        report_rounds: args.rounds,
        postcopy_above: args.postcopy_above.map(|mib| mib.saturating_mul(1 << 20)),
        ..BalanceConfig::default()
    };
    let cluster = Arc::new(ClusterHandle::connect(&ctx.cluster, &ctx.options));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let json = ctx.json;
    let printer = tokio::spawn(async move {
        while let Some(r) = rx.recv().await {
            if json {
                if let Ok(line) = serde_json::to_string(&r) {
                    outln!("{line}");
                }
            } else if let Some(line) = describe(&r) {
                outln!("{line}");
            }
        }
    });
    eprintln!(
        "openmosix: balancing {} node(s) (nodes take part after `mosctl NODE nostay`); stop with Ctrl-C",
        ctx.cluster.nodes.len()
    );
    let summary = Balancer::new(cluster, config, Some(tx))
        .run(stop_signal())
        .await;
    let _ = printer.await;
    eprintln!(
        "openmosix: balancer stopped: {} move(s), {} failed",
        summary.moved, summary.failed
    );
    Ok(ExitCode::SUCCESS)
}
