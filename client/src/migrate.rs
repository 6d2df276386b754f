//! Moving a process between two agents: the orchestration of DESIGN.md section 4.
//!
//! 1. pre-flight on the source (`can_migrate`) and the target (up, not blocked);
//! 2. pre-dump rounds for large processes, then the final dump with the tree stopped;
//! 3. the image streams from source to target over two side channels on the same SSH
//!    masters (through this client; the nodes need no access to each other);
//! 4. restore on the target; only then the stopped original is removed.
//!
//! Any failure before the target confirms makes the source resume the original, so a
//! failed migration leaves the process running where it was.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

use super::ClientError;
use super::conn::AgentConn;
use super::transport::Aux;
use openmosix_hpc::model::{NodeId, NodeInfo, NodeStatus, ProcInfo};
use openmosix_hpc::protocol::{Carried, Request};

/// P.Haul's rule for pre-dump rounds: at most this many…
pub const MAX_ROUNDS: u32 = 8;
/// …stopping when a round writes at most this many pages…
pub const SMALL_ROUND_PAGES: u64 = 64;
/// …or writes more than 10 % more than the round before (the process dirties faster
/// than we copy).
pub const GROWTH_LIMIT: f64 = 1.10;
/// Processes smaller than this (resident) are dumped at once, without pre-dump.
pub const PREDUMP_MIN_RSS: u64 = 64 * 1024 * 1024;
/// How long a dump or restore may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// A phase of a migration, as it happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Progress {
    /// Pre-flight checks.
    Checking,
    /// A pre-dump round finished.
    PreDump {
        /// Round number.
        round: u32,
        /// Pages it copied.
        pages: u64,
    },
    /// The final dump: the process is frozen from here.
    Freeze,
    /// Image bytes sent so far, of `total`.
    Transfer {
        /// Sent.
        sent: u64,
        /// Expected.
        total: u64,
    },
    /// Restoring on the target.
    Restore,
    /// Resuming the original on the source after a failure.
    Resuming,
}

/// What a finished migration reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migrated {
    /// Source node.
    pub from: NodeId,
    /// Target node.
    pub to: NodeId,
    /// Pid on the source.
    pub old_pid: i32,
    /// Pid on the target.
    pub new_pid: i32,
    /// How long the process was frozen (final dump to restored).
    pub freeze_ms: u64,
    /// The whole migration.
    pub total_ms: u64,
    /// Image bytes sent.
    pub bytes: u64,
    /// Pre-dump rounds.
    pub rounds: u32,
    /// Home node and pid of the process.
    pub home: (NodeId, i32),
}

/// Migration settings.
#[derive(Debug, Clone, Copy)]
pub struct MigrateOptions {
    /// Allow pre-dump rounds for large processes.
    pub predump: bool,
    /// The move is the load balancer's: both agents log it as automatic.
    pub auto: bool,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            predump: true,
            auto: false,
        }
    }
}

#[derive(Debug, Deserialize)]
struct PredumpInfo {
    image: String,
    round: u32,
    pages: u64,
}

#[derive(Debug, Deserialize)]
struct DumpInfo {
    image: String,
    bytes: u64,
}

#[derive(Debug, Deserialize)]
struct Restored {
    pid: i32,
}

fn say(progress: Option<&mpsc::UnboundedSender<Progress>>, p: Progress) {
    if let Some(tx) = progress {
        let _ = tx.send(p);
    }
}

/// Moves `pid` from the node behind `src` to the node behind `dst`.
pub async fn migrate(
    src: &AgentConn,
    dst: &AgentConn,
    pid: i32,
    options: MigrateOptions,
    progress: Option<&mpsc::UnboundedSender<Progress>>,
) -> Result<Migrated, ClientError> {
    let start = Instant::now();
    let mover = Mover {
        src,
        dst,
        pid,
        from: src.hello().node_id,
        to: dst.hello().node_id,
        options,
        progress,
    };
    say(progress, Progress::Checking);
    let (p, src_aux, dst_aux) = mover.preflight().await?;
    let (image, rounds) = if options.predump && src.hello().predump && p.rss >= PREDUMP_MIN_RSS {
        mover.predump().await?
    } else {
        (None, 0)
    };

    say(progress, Progress::Freeze);
    let freeze = Instant::now();
    // On a failed dump the source has resumed the tree itself.
    let dump: DumpInfo = src
        .request_within(Request::Dump { pid, image }, STEP_TIMEOUT)
        .await?;
    let new_pid = mover.restore(&p, &dump, src_aux, dst_aux).await?;
    let freeze_ms = u64::try_from(freeze.elapsed().as_millis()).unwrap_or(u64::MAX);
    mover.remove_original(dump.image, new_pid).await?;
    Ok(Migrated {
        from: mover.from,
        to: mover.to,
        old_pid: pid,
        new_pid,
        freeze_ms,
        total_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        bytes: dump.bytes,
        rounds,
        home: (p.home, p.home_pid),
    })
}

/// One migration under way: both ends, the process, and where progress goes. Each phase
/// is one method, called in order by [`migrate`].
struct Mover<'a> {
    src: &'a AgentConn,
    dst: &'a AgentConn,
    pid: i32,
    from: NodeId,
    to: NodeId,
    options: MigrateOptions,
    progress: Option<&'a mpsc::UnboundedSender<Progress>>,
}

impl<'a> Mover<'a> {
    /// The source can dump the process and the target take it; the process, and the
    /// side channels of both ends.
    async fn preflight(&self) -> Result<(ProcInfo, &'a Aux, &'a Aux), ClientError> {
        let (src, dst, from, to) = (self.src, self.dst, self.from, self.to);
        let p: ProcInfo = src
            .request(Request::CanMigrate { pid: self.pid, to })
            .await?;
        let target: NodeInfo = dst.request(Request::Node).await?;
        match target.status {
            NodeStatus::Blocked => return Err(cannot(format!("node {to} blocks arriving guests"))),
            NodeStatus::Off => return Err(cannot(format!("node {to} is out of the pool"))),
            NodeStatus::Up => {}
        }
        if !dst.hello().migration.available {
            return Err(cannot(format!(
                "node {to} cannot restore processes: {}",
                dst.hello().migration.detail
            )));
        }
        if !src.hello().migration.available {
            return Err(cannot(format!(
                "node {from} cannot dump processes: {}",
                src.hello().migration.detail
            )));
        }
        if target.mem < p.rss {
            return Err(cannot(format!(
                "node {to} has {} MiB free, the process needs {} MiB",
                target.mem >> 20,
                p.rss >> 20
            )));
        }
        let (Some(src_aux), Some(dst_aux)) = (src.aux(), dst.aux()) else {
            return Err(cannot("this connection cannot stream images".into()));
        };
        Ok((p, src_aux, dst_aux))
    }

    /// Pre-dump rounds while the process runs: the last round's image and how many
    /// rounds ran. A failed round resumes the process (stopped by the rounds before).
    async fn predump(&self) -> Result<(Option<String>, u32), ClientError> {
        let mut image: Option<String> = None;
        let mut rounds = 0;
        let mut last: Option<u64> = None;
        while rounds < MAX_ROUNDS {
            let asked = Request::Predump {
                pid: self.pid,
                image: image.clone(),
            };
            let r: PredumpInfo = match self.src.request_within(asked, STEP_TIMEOUT).await {
                Ok(r) => r,
                Err(e) => {
                    if let Some(i) = image {
                        let _ = self
                            .src
                            .request::<serde_json::Value>(Request::Resume { image: i })
                            .await;
                    }
                    return Err(e);
                }
            };
            rounds = r.round;
            image = Some(r.image);
            say(
                self.progress,
                Progress::PreDump {
                    round: r.round,
                    pages: r.pages,
                },
            );
            let grew = last.is_some_and(|l| r.pages as f64 > l as f64 * GROWTH_LIMIT);
            if r.pages <= SMALL_ROUND_PAGES || grew {
                break;
            }
            last = Some(r.pages);
        }
        Ok((image, rounds))
    }

    /// Streams the dumped image to the target and restores it there: the new pid. Any
    /// failure makes the source resume the original.
    async fn restore(
        &self,
        p: &ProcInfo,
        dump: &DumpInfo,
        src_aux: &Aux,
        dst_aux: &Aux,
    ) -> Result<i32, ClientError> {
        let image = &dump.image;
        let moved = async {
            transfer(src_aux, dst_aux, image, dump.bytes, self.progress).await?;
            say(self.progress, Progress::Restore);
            let r: Restored = self
                .dst
                .request_within(
                    Request::Restore {
                        image: image.clone(),
                        from: self.from,
                        home: p.home,
                        home_pid: p.home_pid,
                        nmigs: p.nmigs,
                        carried: Carried {
                            run: p.run.clone(),
                            mask: p.mask,
                            candidate: p.candidate,
                            auto: self.options.auto,
                        },
                    },
                    STEP_TIMEOUT,
                )
                .await?;
            Ok::<i32, ClientError>(r.pid)
        }
        .await;
        let Err(e) = moved else { return moved };
        say(self.progress, Progress::Resuming);
        if let Err(r) = self
            .src
            .request::<serde_json::Value>(Request::Resume {
                image: image.clone(),
            })
            .await
        {
            return Err(ClientError::Protocol(format!(
                "{e}; and resuming it on node {} failed too: {r} (it is stopped there: send it CONT)",
                self.from
            )));
        }
        Err(e)
    }

    /// The process runs on the target: the source removes its stopped original.
    async fn remove_original(&self, image: String, new_pid: i32) -> Result<(), ClientError> {
        let (from, to) = (self.from, self.to);
        self.src
            .request_within::<serde_json::Value>(
                Request::Finish {
                    image,
                    pid: self.pid,
                    to,
                    new_pid,
                    auto: self.options.auto,
                },
                STEP_TIMEOUT,
            )
            .await
            .map_err(|e| {
                ClientError::Protocol(format!(
                    "the process runs on node {to} as {new_pid}, but its stopped original on node {from} could not be removed: {e}"
                ))
            })?;
        Ok(())
    }
}

/// Moves `pid` of node `node` within a cluster: resolves `home`/`best` from the cluster's
/// figures, migrates over the nodes' live connections, and tells the process's home node
/// where it is when that is neither end of the move.
pub async fn migrate_in(
    cluster: &super::ClusterHandle,
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
pub fn figures(cluster: &super::ClusterHandle) -> Vec<(NodeId, NodeInfo)> {
    cluster
        .nodes()
        .into_iter()
        .filter(|v| v.state == super::LinkState::Up)
        .filter_map(|v| Some((v.id, v.info?)))
        .collect()
}

impl Migrated {
    /// The process's home node when that is neither end of the move: it is told where
    /// the process runs now ([`tell_home`]).
    pub fn home_elsewhere(&self) -> Option<NodeId> {
        let home = self.home.0;
        (home != self.from && home != self.to).then_some(home)
    }
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
    cluster: &super::ClusterHandle,
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
    cluster: &super::ClusterHandle,
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

fn cannot(message: String) -> ClientError {
    ClientError::Agent(openmosix_hpc::protocol::AgentError::new(
        openmosix_hpc::protocol::ErrorKind::CannotMigrate,
        message,
    ))
}

fn failed(message: String) -> ClientError {
    ClientError::Agent(openmosix_hpc::protocol::AgentError::new(
        openmosix_hpc::protocol::ErrorKind::MigrationFailed,
        message,
    ))
}

/// Streams image `image` from the source's `images send` to the target's `images receive`.
async fn transfer(
    src: &Aux,
    dst: &Aux,
    image: &str,
    total: u64,
    progress: Option<&mpsc::UnboundedSender<Progress>>,
) -> Result<(), ClientError> {
    let mut send = src
        .images(true, image)
        .await
        .map_err(|e| failed(format!("cannot read the image: {e}")))?;
    let mut recv = match dst.images(false, image).await {
        Ok(r) => r,
        Err(e) => {
            send.abort().await;
            return Err(failed(format!("cannot send the image: {e}")));
        }
    };
    let (Some(mut reader), Some(mut writer)) = (send.reader.take(), recv.writer.take()) else {
        return Err(failed("image stream pipes missing".into()));
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    let mut last_report = Instant::now();
    let copied: Result<(), String> = async {
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading the image: {e}"))?;
            if n == 0 {
                break;
            }
            writer
                .write_all(&buf[..n])
                .await
                .map_err(|e| format!("the target stopped taking the image: {e}"))?;
            sent += n as u64;
            if last_report.elapsed() > Duration::from_millis(100) {
                say(progress, Progress::Transfer { sent, total });
                last_report = Instant::now();
            }
        }
        writer
            .shutdown()
            .await
            .map_err(|e| format!("closing the image stream: {e}"))
    }
    .await;
    drop(writer);
    drop(reader);
    say(progress, Progress::Transfer { sent, total });
    let sent_ok = send.finish().await;
    let recv_ok = recv.finish().await;
    match (copied, sent_ok, recv_ok) {
        (Ok(()), Ok(()), Ok(())) => Ok(()),
        (_, Err(e), _) => Err(failed(format!("sending the image failed: {e}"))),
        (_, _, Err(e)) => Err(failed(format!("the target could not take the image: {e}"))),
        (Err(e), _, _) => Err(failed(e)),
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
