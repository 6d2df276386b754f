//! What each subcommand does: load the cluster, talk to the agents, print.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use openmosix_client::{AgentConn, ClientOptions, ClusterHandle, LinkState, connect_node};
use openmosix_hpc::bytes::BytesOrText;
use openmosix_hpc::map::{self, Cluster};
use openmosix_hpc::model::{AdminChange, MapNode, NodeId, ProcInfo, RunOptions, Signal};
use openmosix_hpc::protocol::{Request, Started};
use serde_json::Value;

use crate::output;
use crate::{Cli, Command, RunArgs, SetpeArgs};

/// The loaded cluster and how to reach it.
pub struct Ctx {
    pub cluster: Cluster,
    pub options: ClientOptions,
    pub json: bool,
}

impl Ctx {
    /// Opens a channel to one node.
    pub async fn conn(&self, id: NodeId) -> Result<AgentConn> {
        let node = self.cluster.node(id).ok_or_else(|| {
            anyhow!(
                "node {id} is not in the cluster (nodes: {})",
                ids(&self.cluster)
            )
        })?;
        Ok(connect_node(node, &self.options).await?)
    }

    /// Has one node do one thing (an answer that is only `ok`); a failed request is
    /// reported as `what` failing.
    pub async fn tell(
        &self,
        id: NodeId,
        request: Request,
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        let conn = self.conn(id).await?;
        conn.request::<Value>(request).await.with_context(what)?;
        Ok(())
    }

    /// Every node, connected in parallel; waits at most the connect time-out.
    pub async fn all(&self) -> ClusterHandle {
        let handle = ClusterHandle::connect(&self.cluster, &self.options);
        handle
            .settled(self.options.connect_timeout + Duration::from_millis(500))
            .await;
        handle
    }
}

fn ids(cluster: &Cluster) -> String {
    cluster
        .nodes
        .iter()
        .map(|n| n.id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let Cli {
        cluster,
        map,
        discover,
        json,
        timeout,
        command,
    } = cli;
    // `node add` may create the cluster file: it loads it itself.
    let command = match command {
        Command::Node(args) => {
            let globals = crate::node::NodeGlobals {
                cluster,
                map: map.is_some(),
                json,
                timeout,
            };
            return crate::node::run(globals, args).await;
        }
        Command::Gateway(args) => return crate::gateway::run(args).await,
        other => other,
    };
    if let Command::Showmap {
        interface: Some(interface),
        listen,
        ..
    } = &command
    {
        return crate::discovered::showmap_listen(interface, *listen, json).await;
    }
    let named = cluster.is_some() || map.is_some() || discover.is_some();
    let mut cluster = match &discover {
        Some(interface) => Cluster::discovered(Some(interface)),
        None => Cluster::load(cluster.as_deref(), map.as_deref())?,
    };
    if let Some(source) = cluster.discovery.clone() {
        cluster = crate::discovered::resolve(&cluster, &source).await?;
    }
    let mut options = ClientOptions::for_cluster(&cluster);
    let timeout = seconds(timeout)?;
    options.connect_timeout = timeout;
    options.request_timeout = timeout;
    let ctx = Ctx {
        cluster,
        options,
        json,
    };
    dispatch(&ctx, command, named).await
}

/// `--timeout`, which must be a positive number of seconds.
pub fn seconds(timeout: f64) -> Result<Duration> {
    if !(timeout.is_finite() && timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }
    Ok(Duration::from_secs_f64(timeout))
}

/// Runs one subcommand on the loaded cluster; `named`: the command line named the
/// cluster (--cluster, --map or --discover).
async fn dispatch(ctx: &Ctx, command: Command, named: bool) -> Result<ExitCode> {
    match command {
        Command::Nodes => nodes(ctx).await,
        Command::Ps { node } => ps(ctx, node).await,
        Command::Handoffs(args) => crate::handoffs::run(ctx, args).await,
        Command::Mosctl { words } => crate::mosctl::run(ctx, &words).await,
        Command::Run(args) => run_job(ctx, args).await,
        Command::Signal { node, pid, signal } => {
            let sig = Signal::parse(&signal).ok_or_else(|| {
                anyhow!("unknown signal {signal:?}: use STOP, CONT, TERM or KILL")
            })?;
            let request = Request::Signal { pid, signal: sig };
            ctx.tell(node, request, || format!("signal {pid} on node {node}"))
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Renice { node, pid, nice } => {
            let request = Request::Renice { pid, nice };
            ctx.tell(node, request, || format!("renice {pid} on node {node}"))
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Setpe(args) => setpe(ctx, args).await,
        Command::Migrate {
            node,
            pid,
            target,
            no_predump,
            disk,
            relay,
            postcopy,
        } => {
            let options = openmosix_client::migrate::MigrateOptions {
                predump: !no_predump,
                disk_less: !disk,
                relay,
                postcopy,
                ..Default::default()
            };
            crate::migrate::run(ctx, node, pid, &target, options).await
        }
        // With no cluster named, the map this node's discovery daemon hears, if one runs.
        Command::Showmap { node: None, .. } if !named => match crate::discovered::local_map()? {
            Some(found) => {
                crate::discovered::print_map(Some(found.my_id), &found.to_map(), ctx.json);
                Ok(ExitCode::SUCCESS)
            }
            None => showmap(ctx, None).await,
        },
        Command::Showmap { node, .. } => showmap(ctx, node).await,
        Command::Mask {
            node,
            pid,
            mode,
            nodes,
        } => crate::mask::mask(ctx, node, pid, mode, &nodes).await,
        Command::Lock { node, pid } => crate::mask::lock(ctx, node, pid, true).await,
        Command::Unlock { node, pid } => crate::mask::lock(ctx, node, pid, false).await,
        Command::Balance(args) => crate::balance::run(ctx, args).await,
        Command::Mon { once } => crate::tui::mon(ctx, once).await,
        Command::Top { node, once } => crate::tui::top(ctx, node, once).await,
        // Handled by `run`, before the cluster is loaded.
        Command::Node(_) => bail!("node: not reached"),
        Command::Gateway(_) => bail!("gateway: not reached"),
    }
}

async fn nodes(ctx: &Ctx) -> Result<ExitCode> {
    let handle = ctx.all().await;
    let views = handle.nodes();
    let via = |id| {
        ctx.cluster
            .node(id)
            .and_then(openmosix_hpc::map::gateway_of)
    };
    output::nodes(&views, via, ctx.json);
    Ok(ExitCode::SUCCESS)
}

async fn ps(ctx: &Ctx, node: Option<NodeId>) -> Result<ExitCode> {
    let mut rows: Vec<(NodeId, ProcInfo)> = Vec::new();
    if let Some(id) = node {
        let conn = ctx.conn(id).await?;
        let procs: Vec<ProcInfo> = conn
            .request(Request::Procs)
            .await
            .with_context(|| format!("node {id}"))?;
        rows.extend(procs.into_iter().map(|p| (id, p)));
        if !ctx.json {
            waiting_on(&conn, id).await;
        }
    } else {
        let handle = ctx.all().await;
        let mut failed = false;
        for view in handle.nodes() {
            if view.state != LinkState::Up {
                eprintln!(
                    "openmosix: node {} is down: {}",
                    view.id,
                    view.reason.unwrap_or_default()
                );
                failed = true;
                continue;
            }
            match handle
                .request::<Vec<ProcInfo>>(view.id, Request::Procs)
                .await
            {
                Ok(procs) => rows.extend(procs.into_iter().map(|p| (view.id, p))),
                Err(e) => {
                    eprintln!("openmosix: node {}: {e}", view.id);
                    failed = true;
                }
            }
        }
        output::procs(&rows, ctx.json);
        if !ctx.json {
            for u in handle.settle_now().await {
                eprintln!("openmosix: node {}: {}", u.node, u.why);
            }
        }
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    output::procs(&rows, ctx.json);
    Ok(ExitCode::SUCCESS)
}

/// Says on stderr which moves of node `id` wait for a decision (`openmosix handoffs`
/// settles them).
async fn waiting_on(conn: &AgentConn, id: NodeId) {
    if !conn.hello().ops.iter().any(|o| o == "handoffs") {
        return;
    }
    let Ok(list) = conn
        .request::<Vec<openmosix_hpc::handoff::Handoff>>(Request::Handoffs)
        .await
    else {
        return;
    };
    for h in list.iter().filter(|h| h.in_doubt()) {
        eprintln!(
            "openmosix: {}: `openmosix handoffs` settles it",
            h.describe(id)
        );
    }
}

async fn run_job(ctx: &Ctx, args: RunArgs) -> Result<ExitCode> {
    use std::os::unix::ffi::OsStringExt as _;
    let options = RunOptions {
        nomig: args.nomig,
        runhome: args.runhome,
        runon: args.runon,
        cpujob: args.cpujob,
        iojob: args.iojob,
        nodecay: args.nodecay,
        slowdecay: args.slowdecay,
        fastdecay: args.fastdecay,
    };
    if args.runon.is_some_and(|n| n != args.node) {
        bail!("--runon must name the node the job starts on until process migration lands");
    }
    let argv = args
        .argv
        .into_iter()
        .map(|a| BytesOrText(a.into_vec()))
        .collect();
    let conn = ctx.conn(args.node).await?;
    let started: Started = conn
        .request(Request::Run { argv, options })
        .await
        .with_context(|| format!("run on node {}", args.node))?;
    if ctx.json {
        outln!("{}", serde_json::to_string(&started)?);
    } else {
        outln!("{}", started.pid);
    }
    Ok(ExitCode::SUCCESS)
}

/// `setpe -w -f MAP`, `setpe -r [-f FILE]` or `setpe -off`.
async fn setpe(ctx: &Ctx, args: SetpeArgs) -> Result<ExitCode> {
    if args.write {
        let path = args
            .file
            .as_deref()
            .ok_or_else(|| anyhow!("setpe -w needs -f MAP"))?;
        install_map(ctx, path).await?;
    } else if args.read {
        read_installed_map(ctx, args.node, args.file).await?;
    } else {
        let targets: Vec<NodeId> = match args.node {
            Some(n) => vec![n],
            None => ctx.cluster.nodes.iter().map(|n| n.id).collect(),
        };
        for id in targets {
            let off = Request::AdminSet {
                change: AdminChange::Off { off: true },
            };
            ctx.tell(id, off, || format!("node {id}")).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `setpe -w`: installs the map on every node it names and puts them in the pool.
async fn install_map(ctx: &Ctx, path: &Path) -> Result<()> {
    let nodes = map::read_map_file(path)?;
    let cluster = Cluster::from_map(&nodes);
    // Reach the nodes through the cluster we were given when it names them (its ssh
    // settings), else by the map's addresses.
    let mut failed = Vec::new();
    for n in &nodes {
        let node = ctx.cluster.node(n.id).or_else(|| cluster.node(n.id));
        let Some(node) = node else { continue };
        let res = async {
            let conn = connect_node(node, &ctx.options).await?;
            conn.request::<Value>(Request::SetMap {
                nodes: nodes.clone(),
            })
            .await?;
            conn.request::<Value>(Request::AdminSet {
                change: AdminChange::Off { off: false },
            })
            .await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = res {
            failed.push(format!("node {}: {e}", n.id));
        }
    }
    if !failed.is_empty() {
        bail!(
            "the map was not installed everywhere: {}",
            failed.join("; ")
        );
    }
    Ok(())
}

/// `setpe -r`: the map installed on `node` (default the first), to `file` or stdout.
async fn read_installed_map(ctx: &Ctx, node: Option<NodeId>, file: Option<PathBuf>) -> Result<()> {
    let id = node
        .or_else(|| ctx.cluster.nodes.first().map(|n| n.id))
        .ok_or_else(|| anyhow!("empty cluster"))?;
    let conn = ctx.conn(id).await?;
    let nodes: Vec<MapNode> = conn.request(Request::GetMap).await?;
    if nodes.is_empty() {
        bail!("node {id} has no map installed (use setpe -w -f MAP)");
    }
    let text = map::render_map(&nodes);
    match file {
        Some(f) => {
            std::fs::write(&f, text).with_context(|| format!("writing {}", f.display()))?;
        }
        None => out!("{text}"),
    }
    Ok(())
}

async fn showmap(ctx: &Ctx, node: Option<NodeId>) -> Result<ExitCode> {
    let (my_id, nodes) = match node {
        Some(id) => {
            let conn = ctx.conn(id).await?;
            let installed: Vec<MapNode> = conn.request(Request::GetMap).await?;
            let nodes = if installed.is_empty() {
                ctx.cluster.to_map()
            } else {
                installed
            };
            (Some(conn.hello().node_id), nodes)
        }
        None => {
            let local = ctx
                .cluster
                .nodes
                .iter()
                .find(|n| n.dest == map::Dest::Local)
                .map(|n| n.id);
            (local, ctx.cluster.to_map())
        }
    };
    crate::discovered::print_map(my_id, &nodes, ctx.json);
    Ok(ExitCode::SUCCESS)
}
