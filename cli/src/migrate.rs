//! `openmosix migrate`, and the mosctl verbs built on it (expel, bring).

use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};
use openmosix_client::AgentConn;
use openmosix_client::migrate::{
    MigrateOptions, Migrated, Progress, Target, bring_in, expel_in, figures, migrate, resolve,
    tell_home,
};
use openmosix_hpc::model::{NodeId, NodeInfo, ProcInfo};
use openmosix_hpc::protocol::Request;
use tokio::sync::mpsc;

use crate::commands::Ctx;

pub(crate) fn describe(p: &Progress) -> String {
    match p {
        Progress::Checking => "checking".into(),
        Progress::PreDump { round, pages } => format!("pre-dump round {round}: {pages} pages"),
        Progress::Freeze => "freezing and dumping".into(),
        Progress::Transfer { .. } => format!("sent {}", p.moved().unwrap_or_default()),
        Progress::Restore => "restoring on the target".into(),
        Progress::Resuming => "failed: resuming the process where it was".into(),
    }
}

/// Moves one process, printing progress on stderr.
pub async fn move_one(
    ctx: &Ctx,
    src: &AgentConn,
    dst: &AgentConn,
    pid: i32,
    options: MigrateOptions,
) -> Result<Migrated> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            eprintln!("openmosix: {}", describe(&p));
        }
    });
    let result = migrate(src, dst, pid, options, Some(&tx)).await;
    drop(tx);
    let _ = printer.await;
    let m = result?;
    if let Some(home) = m.home_elsewhere()
        && let Ok(h) = ctx.conn(home).await
    {
        tell_home(&h, &m).await;
    }
    Ok(m)
}

pub async fn run(
    ctx: &Ctx,
    node: NodeId,
    pid: i32,
    target: &str,
    options: MigrateOptions,
) -> Result<ExitCode> {
    let src = ctx.conn(node).await?;
    let target: Target = target.parse().map_err(|e: String| anyhow!(e))?;
    let to = match target {
        Target::Node(n) => n,
        Target::Home | Target::Best => {
            let p: ProcInfo = src
                .request(Request::Proc { pid })
                .await
                .with_context(|| format!("node {node}"))?;
            let mut nodes: Vec<(NodeId, NodeInfo)> = Vec::new();
            if target == Target::Best {
                nodes = figures(&ctx.all().await);
            }
            resolve(target, &p, node, &nodes)?
        }
    };
    let dst = ctx.conn(to).await?;
    let m = move_one(ctx, &src, &dst, pid, options)
        .await
        .with_context(|| format!("process {pid} stays on node {node}"))?;
    if ctx.json {
        outln!("{}", serde_json::to_string(&m)?);
    } else {
        outln!("{}", m.new_pid);
        let route = match m.route {
            openmosix_client::migrate::Route::Direct => "node to node".to_owned(),
            openmosix_client::migrate::Route::Relayed => match &m.relayed_because {
                Some(why) => format!("relayed here ({why})"),
                None => "relayed here".to_owned(),
            },
        };
        eprintln!(
            "openmosix: moved {} from node {} to node {} as pid {} (frozen {} ms, {} ms in all, {} KiB {}, {}, {} pre-dump rounds)",
            m.old_pid,
            m.from,
            m.to,
            m.new_pid,
            m.freeze_ms,
            m.total_ms,
            m.bytes / 1024,
            m.mode,
            route,
            m.rounds
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `mosctl NODE expel`: every guest of NODE goes home. Returns how many moved.
pub async fn expel(ctx: &Ctx, node: NodeId) -> Result<(u32, Vec<String>)> {
    let handle = ctx.all().await;
    Ok(expel_in(&handle, node).await?)
}

/// `mosctl NODE bring`: every process of NODE running elsewhere comes home.
pub async fn bring(ctx: &Ctx, node: NodeId) -> Result<(u32, Vec<String>)> {
    let handle = ctx.all().await;
    Ok(bring_in(&handle, node).await?)
}
