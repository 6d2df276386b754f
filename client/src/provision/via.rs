//! Adding a node that is reached through a gateway (`node add DEST --via G`,
//! docs/fan-out.md): its `dest` is as the gateway reaches it, with the gateway's ssh
//! config, keys and known_hosts, so steps 1–6 run *on the gateway*: the workstation
//! starts `openmosix gateway provision … DEST` there over its connection to the gateway,
//! and that runs them as `node add` does (the host key checked against the gateway's
//! known_hosts, the gateway's own agent installed on the node), writing each step as
//! a JSON line ([`progress_line`]) that the workstation reports as its own.

use std::sync::Arc;

use tokio::io::AsyncBufReadExt as _;

use std::path::PathBuf;

use super::{
    AddNode, ClientOptions, Progress, ProvisionError, Provisioning, Step, StepState, fail, patient,
    session_close, transport_command,
};
use openmosix_hpc::map::{Cluster, Dest};
use openmosix_hpc::model::NodeId;

/// One step's progress as a line of `gateway provision`'s output.
pub fn progress_line(p: &Progress) -> String {
    let (state, detail) = match &p.state {
        StepState::Running(d) => ("running", d),
        StepState::Done(d) => ("ok", d),
        StepState::Skipped(d) => ("skipped", d),
        StepState::Failed(d) => ("FAILED", d),
    };
    serde_json::json!({"step": p.step.title(), "state": state, "detail": detail}).to_string()
}

/// A line of [`progress_line`] read back; `None` for any other line.
pub fn parse_progress_line(line: &str) -> Option<Progress> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let title = v.get("step")?.as_str()?;
    let step = *Step::ALL.iter().find(|s| s.title() == title)?;
    let detail = v.get("detail")?.as_str()?.to_owned();
    let state = match v.get("state")?.as_str()? {
        "running" => StepState::Running(detail),
        "ok" => StepState::Done(detail),
        "skipped" => StepState::Skipped(detail),
        "FAILED" => StepState::Failed(detail),
        _ => return None,
    };
    Some(Progress { step, state })
}

/// The gateway a node added with `--via G` is reached through: G's destination, and the
/// ssh config its relay uses (the cluster file's `gateway_ssh_config`).
#[derive(Debug, Clone)]
pub(super) struct Gateway {
    pub id: NodeId,
    pub dest: String,
    pub ssh_config: Option<String>,
}

/// Gateway `id` of the cluster file, if it can be one (in the file, reached over SSH,
/// not itself behind a gateway).
pub(super) fn gateway_in(cluster: Option<&Cluster>, id: NodeId) -> Result<Gateway, String> {
    let node = cluster
        .and_then(|c| c.node(id))
        .ok_or_else(|| format!("--via {id}: node {id} is not in the cluster file"))?;
    if node.via.is_some() {
        return Err(format!(
            "--via {id}: node {id} is itself reached through a gateway (one level only)"
        ));
    }
    match &node.dest {
        Dest::Ssh(dest) => Ok(Gateway {
            id,
            dest: dest.clone(),
            ssh_config: cluster.and_then(|c| c.gateway_ssh_config.clone()),
        }),
        Dest::Local => Err(format!(
            "--via {id}: node {id} is this machine (`local`), not a gateway over SSH"
        )),
    }
}

/// Steps 1–6 only, for a node that this machine reaches as `dest` (`openmosix gateway
/// provision` on a gateway, for a node of its group): whether the agent was installed.
pub async fn install_only(
    dest: &str,
    id: NodeId,
    agent_binary: PathBuf,
    options: ClientOptions,
    report: &mut (dyn FnMut(Progress) + Send),
) -> Result<bool, ProvisionError> {
    let parsed = match Dest::parse(dest) {
        Ok(Dest::Ssh(d)) => Dest::Ssh(d),
        Ok(Dest::Local) => {
            return Err(fail(report, Step::HostKey, "`local` needs no provisioning"));
        }
        Err(e) => return Err(fail(report, Step::HostKey, e)),
    };
    let plan = AddNode {
        dest: dest.to_owned(),
        cluster_file: PathBuf::new(),
        id: Some(id),
        relay_binary: agent_binary.clone(),
        agent_binary,
        gateway: false,
        via: None,
        options,
    };
    let mut run = Provisioning {
        node: parsed.as_str().to_owned(),
        plan: patient(plan),
        report,
        dest: parsed,
        id,
        listed: false,
        gateway: false,
        via: None,
    };
    let check = run.host_key().await?;
    let session = run.connect(&check).await?;
    let installed = run.agent(&session).await;
    session_close(session).await;
    installed
}

impl Provisioning<'_> {
    /// Steps 1–6 on gateway `gw`; whether the agent was installed.
    pub(super) async fn install_via(&mut self, gw: &Gateway) -> Result<bool, ProvisionError> {
        let step = Step::Connect;
        self.say(
            step,
            StepState::Running(format!("ssh {} (gateway node {})", gw.dest, gw.id)),
        );
        let session = super::open_session(&gw.dest, &self.plan.options)
            .await
            .map_err(|e| self.fail(step, format!("gateway node {}: {e}", gw.id)))?;
        let session = Arc::new(session);
        let mut args = vec!["gateway".to_owned(), "provision".to_owned()];
        if let Some(cfg) = &gw.ssh_config {
            args.extend(["--ssh-config".to_owned(), cfg.clone()]);
        }
        args.extend([
            "--agent".to_owned(),
            self.plan.options.remote_agent.clone(),
            "--id".to_owned(),
            self.id.to_string(),
            "--".to_owned(),
            self.node.clone(),
        ]);
        let ran = self.relay_steps(&session, &args, gw.id).await;
        session_close(session).await;
        ran
    }

    /// Runs `openmosix gateway provision ARGS` on the gateway, reporting its steps.
    async fn relay_steps(
        &mut self,
        session: &Arc<openssh::Session>,
        args: &[String],
        gw: NodeId,
    ) -> Result<bool, ProvisionError> {
        let spawned = transport_command(session, super::Program::Relay.name())
            .args(args)
            .stdin(openssh::Stdio::null())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await;
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let why = super::super::transport::ssh_reason(&e);
                return Err(self.fail(Step::Connect, format!("gateway node {gw}: {why}")));
            }
        };
        let mut last: Option<Progress> = None;
        let mut installed = false;
        if let Some(out) = child.stdout().take() {
            let mut lines = tokio::io::BufReader::new(out).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(p) = parse_progress_line(&line) {
                    if p.step == Step::Run && matches!(p.state, StepState::Done(_)) {
                        installed = true;
                    }
                    (self.report)(p.clone());
                    last = Some(p);
                }
            }
        }
        let out = child.wait_with_output().await;
        let ok = out.as_ref().is_ok_and(|o| o.status.success());
        match last {
            Some(Progress {
                step,
                state: StepState::Failed(message),
            }) => Err(ProvisionError { step, message }),
            _ if ok => Ok(installed),
            _ => {
                let said = out
                    .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
                    .unwrap_or_else(|e| super::super::transport::ssh_reason(&e));
                let said = if said.contains("not installed on this node") {
                    format!(
                        "gateway node {gw} has no relay (openmosix): `openmosix node add` it first ({said})"
                    )
                } else {
                    format!("gateway node {gw} could not provision the node: {said}")
                };
                let step = last.map_or(Step::Connect, |p| p.step);
                Err(self.fail(step, said))
            }
        }
    }
}
