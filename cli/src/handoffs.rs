//! `openmosix handoffs`: the moves that wait for a decision (docs/migration.md), settled
//! where the source can be asked; `--release`/`--discard` decide by hand when the
//! source cannot say (its record is lost).

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;
use serde_json::Value;

use crate::commands::Ctx;
use openmosix_client::Unsettled;
use openmosix_hpc::model::NodeId;
use openmosix_hpc::protocol::Request;

/// `openmosix handoffs` options.
#[derive(Debug, Args)]
pub struct HandoffArgs {
    /// Let the stopped copy of IMAGE on NODE run (only when its original is gone).
    #[arg(long, num_args = 2, value_names = ["NODE", "IMAGE"], conflicts_with = "discard")]
    release: Option<Vec<String>>,
    /// Kill the stopped copy of IMAGE on NODE (only when its original still runs).
    #[arg(long, num_args = 2, value_names = ["NODE", "IMAGE"])]
    discard: Option<Vec<String>>,
}

/// Runs `openmosix handoffs`.
pub async fn run(ctx: &Ctx, args: HandoffArgs) -> Result<ExitCode> {
    let by_hand = match (args.release, args.discard) {
        (Some(w), _) => Some((w, true)),
        (_, Some(w)) => Some((w, false)),
        _ => None,
    };
    if let Some((words, run)) = by_hand {
        let node: NodeId = words[0]
            .parse()
            .with_context(|| format!("{:?} is not a node id", words[0]))?;
        let image = words[1].clone();
        let request = if run {
            Request::Release { image }
        } else {
            Request::Discard { image }
        };
        let what = request.op();
        let conn = ctx.conn(node).await?;
        conn.request::<Value>(request)
            .await
            .with_context(|| format!("node {node}: {what}"))?;
        outln!("node {node}: {what} done");
        return Ok(ExitCode::SUCCESS);
    }
    let handle = ctx.all().await;
    let waiting = handle.settle_now().await;
    print(&waiting, ctx.json);
    Ok(ExitCode::SUCCESS)
}

/// Prints what waits, one sentence a line (or one JSON object a line).
pub fn print(waiting: &[Unsettled], json: bool) {
    for u in waiting {
        if json {
            let v = serde_json::json!({ "node": u.node, "handoff": u.handoff, "why": u.why });
            outln!("{v}");
        } else {
            outln!("node {}: {}", u.node, u.why);
        }
    }
}
