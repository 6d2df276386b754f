//! The cluster in a terminal: `openmosix mon` (mosmon's bars) and `openmosix top`
//! (mtop: every node's processes, acted on from the keyboard). The view states live in
//! [`mon`] and [`top`], the drawing in [`bars`] and [`table`], the terminal and the event
//! loops in [`term`] and [`top_loop`].

mod bars;
mod mon;
mod table;
mod term;
mod top;
mod top_loop;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use openmosix_hpc::model::NodeId;

use crate::commands::Ctx;

/// `openmosix mon`: bars per node until `q`; with `once`, one frame as text on stdout.
pub async fn mon(ctx: &Ctx, once: bool) -> Result<ExitCode> {
    if once {
        let handle = ctx.all().await;
        let lines = bars::frame(&mon::Mon::default(), &handle.nodes(), 80, None);
        out!("{}", bars::plain(&lines));
        return Ok(ExitCode::SUCCESS);
    }
    let handle = openmosix_client::ClusterHandle::connect(&ctx.cluster, &ctx.options);
    term::run_mon(&handle).await?;
    Ok(ExitCode::SUCCESS)
}

/// `openmosix top`: the processes of every node (or of `node`) until `q`; with `once`,
/// one frame as text on stdout, CPU shares measured over one second.
pub async fn top(ctx: &Ctx, node: Option<NodeId>, once: bool) -> Result<ExitCode> {
    if let Some(n) = node
        && ctx.cluster.node(n).is_none()
    {
        bail!("node {n} is not in the cluster");
    }
    if once {
        let handle = Arc::new(ctx.all().await);
        let mut state = top::Top::default();
        let nodes = top_loop::wanted(&handle, node);
        for round in 0..2 {
            if round > 0 {
                tokio::time::sleep(top_loop::POLL_EVERY).await;
            }
            let mut lists = tokio::task::JoinSet::new();
            for &id in &nodes {
                let h = Arc::clone(&handle);
                lists.spawn(async move { (id, top_loop::list(&h, id).await) });
            }
            while let Some(Ok((id, list))) = lists.join_next().await {
                state.take_list(id, list, std::time::Instant::now());
            }
        }
        let lines = table::frame(&mut state, &handle.nodes(), 80, None);
        out!("{}", table::plain(&lines));
        return Ok(ExitCode::SUCCESS);
    }
    let handle = openmosix_client::ClusterHandle::connect(&ctx.cluster, &ctx.options);
    top_loop::run_top(Arc::new(handle), node).await?;
    Ok(ExitCode::SUCCESS)
}
