//! The cluster in a terminal: `openmosix mon` (mosmon's bars). The view state lives in
//! [`mon`], the drawing in [`bars`], the terminal and its event loop in [`term`].

mod bars;
mod mon;
mod term;

use std::process::ExitCode;

use anyhow::Result;

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
