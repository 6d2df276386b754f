//! `openmosix migrate`, and the mosctl verbs built on it (expel, bring).

use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use openmosix_agent::client::migrate::{MigrateOptions, Migrated, Progress, migrate};
use openmosix_agent::client::{AgentConn, LinkState};
use openmosix_agent::model::{NodeId, NodeInfo, NodeStatus, ProcInfo};
use openmosix_agent::protocol::Request;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::commands::Ctx;

/// The best target for a process: the node where it would get the most CPU, i.e. the
/// lowest `(load + 100) / (cpus · speed / 1000)` among nodes that are up, accept guests
/// and have the memory (docs/migration.md).
pub fn best_node(nodes: &[(NodeId, NodeInfo)], from: NodeId, rss: u64) -> Option<NodeId> {
    nodes
        .iter()
        .filter(|(id, i)| *id != from && i.status == NodeStatus::Up && i.mem > rss)
        .map(|(id, i)| {
            let capacity = f64::from(i.cpus.max(1)) * f64::from(i.speed.max(1)) / 1000.0;
            (*id, (i.load + 100.0) / capacity)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(id, _)| id)
}

fn describe(p: &Progress) -> String {
    match p {
        Progress::Checking => "checking".into(),
        Progress::PreDump { round, pages } => format!("pre-dump round {round}: {pages} pages"),
        Progress::Freeze => "freezing and dumping".into(),
        Progress::Transfer { sent, total } => {
            format!("sent {} of {} KiB", sent / 1024, total / 1024)
        }
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
    predump: bool,
) -> Result<Migrated> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            eprintln!("openmosix: {}", describe(&p));
        }
    });
    let result = migrate(src, dst, pid, MigrateOptions { predump }, Some(&tx)).await;
    drop(tx);
    let _ = printer.await;
    let m = result?;
    // Tell the home node where its process is now, when it is neither end of the move.
    let (home, home_pid) = m.home;
    if home != m.from
        && home != m.to
        && let Ok(h) = ctx.conn(home).await
    {
        let _ = h
            .request::<Value>(Request::Whereabouts {
                home_pid,
                at: Some((m.to, m.new_pid)),
            })
            .await;
    }
    Ok(m)
}

pub async fn run(
    ctx: &Ctx,
    node: NodeId,
    pid: i32,
    target: &str,
    predump: bool,
) -> Result<ExitCode> {
    let src = ctx.conn(node).await?;
    let to = match target {
        "home" => {
            let p: ProcInfo = src
                .request(Request::Proc { pid })
                .await
                .with_context(|| format!("node {node}"))?;
            if p.home == node {
                bail!("process {pid} already runs on its home node {node}");
            }
            p.home
        }
        "best" => {
            let p: ProcInfo = src
                .request(Request::Proc { pid })
                .await
                .with_context(|| format!("node {node}"))?;
            let handle = ctx.all().await;
            let nodes: Vec<(NodeId, NodeInfo)> = handle
                .nodes()
                .into_iter()
                .filter(|v| v.state == LinkState::Up)
                .filter_map(|v| Some((v.id, v.info?)))
                .collect();
            best_node(&nodes, node, p.rss)
                .ok_or_else(|| anyhow!("no other node can take process {pid}"))?
        }
        n => n
            .parse()
            .map_err(|_| anyhow!("target {n:?} is not a node id, `home` or `best`"))?,
    };
    let dst = ctx.conn(to).await?;
    let m = move_one(ctx, &src, &dst, pid, predump)
        .await
        .with_context(|| format!("process {pid} stays on node {node}"))?;
    if ctx.json {
        outln!("{}", serde_json::to_string(&m)?);
    } else {
        outln!("{}", m.new_pid);
        eprintln!(
            "openmosix: moved {} from node {} to node {} as pid {} (frozen {} ms, {} ms in all, {} KiB, {} pre-dump rounds)",
            m.old_pid,
            m.from,
            m.to,
            m.new_pid,
            m.freeze_ms,
            m.total_ms,
            m.bytes / 1024,
            m.rounds
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `mosctl NODE expel`: every guest of NODE goes home. Returns how many moved.
pub async fn expel(ctx: &Ctx, node: NodeId) -> Result<(u32, Vec<String>)> {
    let src = ctx.conn(node).await?;
    let procs: Vec<ProcInfo> = src.request(Request::Procs).await?;
    let mut moved = 0;
    let mut failed = Vec::new();
    for p in procs.iter().filter(|p| p.home != node) {
        let r = async {
            let dst = ctx.conn(p.home).await?;
            move_one(ctx, &src, &dst, p.pid, true).await
        }
        .await;
        match r {
            Ok(_) => moved += 1,
            Err(e) => failed.push(format!("{} (home {}): {e:#}", p.pid, p.home)),
        }
    }
    Ok((moved, failed))
}

/// `mosctl NODE bring`: every process of NODE running elsewhere comes home.
pub async fn bring(ctx: &Ctx, node: NodeId) -> Result<(u32, Vec<String>)> {
    let home = ctx.conn(node).await?;
    let away: Vec<(i32, NodeId, i32)> = home.request(Request::Emigrants).await?;
    let mut moved = 0;
    let mut failed = Vec::new();
    for (home_pid, at, pid) in away {
        let r = async {
            let src = ctx.conn(at).await?;
            move_one(ctx, &src, &home, pid, true).await
        }
        .await;
        match r {
            Ok(_) => moved += 1,
            Err(e) => failed.push(format!("{home_pid} (now {pid} on node {at}): {e:#}")),
        }
    }
    Ok((moved, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(load: f64, cpus: u32, speed: u32, status: NodeStatus) -> NodeInfo {
        NodeInfo {
            id: 0,
            cpus,
            speed,
            load,
            util: 0.0,
            mem: 1 << 30,
            rmem: 0,
            tmem: 1 << 31,
            status,
        }
    }

    #[test]
    fn best_prefers_idle_fast_nodes_that_take_guests() {
        let nodes = vec![
            (1, info(0.0, 1, 1000, NodeStatus::Up)),
            (2, info(0.0, 1, 4000, NodeStatus::Up)),
            (3, info(0.0, 8, 4000, NodeStatus::Blocked)),
            (4, info(300.0, 2, 4000, NodeStatus::Up)),
        ];
        assert_eq!(best_node(&nodes, 9, 1 << 20), Some(2));
        // Two fast CPUs with 300 of load still beat one slow idle CPU: 400/8 < 100/1.
        assert_eq!(best_node(&nodes, 2, 1 << 20), Some(4));
        assert_eq!(best_node(&nodes, 2, 1 << 40), None);
    }
}
