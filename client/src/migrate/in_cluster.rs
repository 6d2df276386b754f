//! Moves within a cluster: the target resolved from the cluster's figures (`home`,
//! `best`), the process's home node told where it went, and `mosctl expel`/`bring`.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{MigrateOptions, Migrated, Progress, cannot, migrate};
use crate::{AgentConn, ClientError, ClusterHandle, LinkState};
use openmosix_hpc::model::{NodeId, NodeInfo, NodeStatus, ProcInfo};
use openmosix_hpc::protocol::Request;

/// Moves `pid` of node `node` within a cluster: resolves `home`/`best` from the cluster's
/// figures, migrates over the nodes' live connections, and tells the process's home node
/// where it is when that is neither end of the move.
pub async fn migrate_in(
    cluster: &ClusterHandle,
    node: NodeId,
    pid: i32,
    target: Target,
    options: MigrateOptions,
    progress: Option<&mpsc::UnboundedSender<Progress>>,
) -> Result<Migrated, ClientError> {
    let src = cluster.conn(node)?;
    let to = match target {
        Target::Node(n) => n,
        Target::Home | Target::Best => {
            let p: ProcInfo = src.request(Request::Proc { pid }).await?;
            resolve(target, &p, node, &figures(cluster))?
        }
    };
    let dst = cluster.conn(to)?;
    let m = migrate(&src, &dst, pid, options, progress).await?;
    if let Some(home) = m.home_elsewhere()
        && let Ok(h) = cluster.conn(home)
    {
        tell_home(&h, &m).await;
    }
    Ok(m)
}

/// The figures of the cluster's nodes that are up, for [`resolve`].
pub fn figures(cluster: &ClusterHandle) -> Vec<(NodeId, NodeInfo)> {
    cluster
        .nodes()
        .into_iter()
        .filter(|v| v.state == LinkState::Up)
        .filter_map(|v| Some((v.id, v.info?)))
        .collect()
}

/// Tells the process's home node where it runs after move `m` (best effort: the move is
/// done either way).
pub async fn tell_home(home: &AgentConn, m: &Migrated) {
    let _ = home
        .request::<serde_json::Value>(Request::Whereabouts {
            home_pid: m.home.1,
            at: Some((m.to, m.new_pid)),
        })
        .await;
}

/// On an openMosix kernel the kernel moves the processes itself: how many it moved for
/// `request` ([`Request::Expel`] or [`Request::Bring`]); `None` on other backends.
pub async fn kernel_moves(conn: &AgentConn, request: Request) -> Result<Option<u32>, ClientError> {
    if conn.hello().backend != "kernel" {
        return Ok(None);
    }
    conn.request(request).await.map(Some)
}

/// `mosctl NODE expel`: every guest of `node` migrates home. Returns how many moved and,
/// for those that did not, why. On an openMosix kernel the kernel does it.
pub async fn expel_in(
    cluster: &ClusterHandle,
    node: NodeId,
) -> Result<(u32, Vec<String>), ClientError> {
    let conn = cluster.conn(node)?;
    if let Some(moved) = kernel_moves(&conn, Request::Expel).await? {
        return Ok((moved, Vec::new()));
    }
    let procs: Vec<ProcInfo> = conn.request(Request::Procs).await?;
    let mut moved = 0;
    let mut stayed = Vec::new();
    for p in procs.iter().filter(|p| p.home != node) {
        match migrate_in(
            cluster,
            node,
            p.pid,
            Target::Node(p.home),
            MigrateOptions::default(),
            None,
        )
        .await
        {
            Ok(_) => moved += 1,
            Err(e) => stayed.push(format!("{} (home node {}): {e}", p.pid, p.home)),
        }
    }
    Ok((moved, stayed))
}

/// `mosctl NODE bring`: every process whose home is `node` and that runs elsewhere
/// migrates home. Returns how many moved and, for those that did not, why.
pub async fn bring_in(
    cluster: &ClusterHandle,
    node: NodeId,
) -> Result<(u32, Vec<String>), ClientError> {
    let conn = cluster.conn(node)?;
    if let Some(moved) = kernel_moves(&conn, Request::Bring).await? {
        return Ok((moved, Vec::new()));
    }
    let away: Vec<(i32, NodeId, i32)> = conn.request(Request::Emigrants).await?;
    let mut moved = 0;
    let mut stayed = Vec::new();
    for (home_pid, at, pid) in away {
        // A process that ended over there is only a stale record: forget it.
        let gone = match cluster.request::<ProcInfo>(at, Request::Proc { pid }).await {
            Ok(p) => p.home != node || p.home_pid != home_pid,
            Err(ClientError::Agent(e)) => {
                e.kind == openmosix_hpc::protocol::ErrorKind::NoSuchProcess
            }
            Err(_) => false,
        };
        if gone {
            let _ = conn
                .request::<serde_json::Value>(Request::Whereabouts { home_pid, at: None })
                .await;
            continue;
        }
        match migrate_in(
            cluster,
            at,
            pid,
            Target::Node(node),
            MigrateOptions::default(),
            None,
        )
        .await
        {
            Ok(_) => moved += 1,
            Err(e) => stayed.push(format!("{home_pid} (now {pid} on node {at}): {e}")),
        }
    }
    Ok((moved, stayed))
}

/// Where a process should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A node by id.
    Node(NodeId),
    /// The process's home node.
    Home,
    /// The node where it would run fastest ([`best_node`]).
    Best,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "home" => Ok(Target::Home),
            "best" => Ok(Target::Best),
            n => n
                .parse()
                .map(Target::Node)
                .map_err(|_| format!("target {n:?} is not a node id, `home` or `best`")),
        }
    }
}

/// The best target for a process: the node where it would get the most CPU, i.e. the
/// lowest `(load + 100) / (cpus · speed / 1000)` among the other nodes that are up,
/// accept guests and have more free memory than `rss` (docs/migration.md).
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

/// Resolves `target` for process `p` running on `from`, given the cluster's figures.
pub fn resolve(
    target: Target,
    p: &ProcInfo,
    from: NodeId,
    nodes: &[(NodeId, NodeInfo)],
) -> Result<NodeId, ClientError> {
    match target {
        Target::Node(n) => Ok(n),
        Target::Home if p.home == from => Err(cannot(format!(
            "process {} already runs on its home node {from}",
            p.pid
        ))),
        Target::Home => Ok(p.home),
        Target::Best => best_node(nodes, from, p.rss)
            .ok_or_else(|| cannot(format!("no other node can take process {}", p.pid))),
    }
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
        assert_eq!("best".parse(), Ok(Target::Best));
        assert_eq!("3".parse(), Ok(Target::Node(3)));
        assert!("x".parse::<Target>().is_err());
    }
}
