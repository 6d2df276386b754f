//! Adding a node by its ssh destination (`openmosix node add`, File → add node): check
//! the host key, connect, look for a compatible agent, install the suite's own when there
//! is none (architecture compared, checksum verified, run once), record the node in the
//! cluster file, and prove it answers. Each step is reported as it happens.
//!
//! The host key must already be known when [`provision`] starts: [`super::hostkey`] finds
//! out and records an unknown key only when the user accepts its fingerprint.

use std::path::PathBuf;
use std::sync::Arc;

use super::ClientError;
pub use super::cluster_entry::{append_node, load_cluster, plan_entry};
use super::hostkey::{self, HostKeyCheck, HostKeyStatus};
use super::install::{self, UploadEvent};
use super::transport::{ClientOptions, connect_node, open_session, serve_on};
use openmosix_hpc::map::{ClusterNode, Dest};
use openmosix_hpc::model::NodeId;
use openmosix_hpc::protocol::Hello;

/// The shortest time-out any provisioning step gets (connection and each request).
pub const PROVISION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The steps of adding a node, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// The node's host key is known to ssh.
    HostKey,
    /// The SSH master connection opens.
    Connect,
    /// Is a compatible agent there (`hello`'s protocol version)?
    Agent,
    /// The node's machine against the agent binary's.
    Architecture,
    /// Upload with checksum.
    Copy,
    /// The installed agent runs (`--version`), then says hello.
    Run,
    /// The node goes into the cluster file.
    ClusterFile,
    /// The node answers as the cluster will reach it.
    Answer,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 8] = [
        Step::HostKey,
        Step::Connect,
        Step::Agent,
        Step::Architecture,
        Step::Copy,
        Step::Run,
        Step::ClusterFile,
        Step::Answer,
    ];

    /// What the step does, for people.
    pub fn title(self) -> &'static str {
        match self {
            Step::HostKey => "host key",
            Step::Connect => "connect",
            Step::Agent => "agent",
            Step::Architecture => "architecture",
            Step::Copy => "copy agent",
            Step::Run => "run agent",
            Step::ClusterFile => "cluster file",
            Step::Answer => "answers",
        }
    }

    /// 1-based position.
    pub fn number(self) -> usize {
        Step::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }
}

/// Where a step stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepState {
    /// Under way (with what it is doing).
    Running(String),
    /// Finished well.
    Done(String),
    /// Not needed.
    Skipped(String),
    /// Failed: the sentence saying why.
    Failed(String),
}

/// One progress report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The step.
    pub step: Step,
    /// Its state.
    pub state: StepState,
}

/// What to add and where.
#[derive(Debug, Clone)]
pub struct AddNode {
    /// The ssh destination.
    pub dest: String,
    /// The cluster file to record the node in (created when missing).
    pub cluster_file: PathBuf,
    /// The node id; `None` = the lowest id above those in the file.
    pub id: Option<NodeId>,
    /// The agent binary to install when the node has none.
    pub agent_binary: PathBuf,
    /// How to reach agents (the cluster file's ssh config and agent command).
    pub options: ClientOptions,
}

/// A node that was added.
#[derive(Debug, Clone)]
pub struct Added {
    /// Its id in the cluster file.
    pub id: NodeId,
    /// Whether the agent was installed now (else a compatible one was there).
    pub installed: bool,
    /// Whether the node was appended to the file (else it was in it already).
    pub appended: bool,
    /// What the agent said when it answered.
    pub hello: Hello,
}

/// A failed step and the sentence saying why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProvisionError {
    /// The step that failed.
    pub step: Step,
    /// Why, in words.
    pub message: String,
}

/// The agent binary to install: `$OPENMOSIX_AGENT`, else `openmosix-agent` beside the
/// running program, else the first on PATH (see [`super::transport::local_agent_path`]).
pub fn default_agent_binary() -> PathBuf {
    let p = super::transport::local_agent_path();
    if p.components().count() > 1 {
        return p;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(&p))
                .find(|c| c.is_file())
        })
        .unwrap_or(p)
}

/// Reports and returns a failure of `step`.
fn fail(
    report: &mut (dyn FnMut(Progress) + Send),
    step: Step,
    message: impl Into<String>,
) -> ProvisionError {
    let message = message.into();
    report(Progress {
        step,
        state: StepState::Failed(message.clone()),
    });
    ProvisionError { step, message }
}

fn say(report: &mut (dyn FnMut(Progress) + Send), step: Step, state: StepState) {
    report(Progress { step, state });
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// Adds a node whose host key ssh knows (see [`super::hostkey`]): every step goes to
/// `report` as it happens; the first failure ends it with a sentence.
pub async fn provision(
    plan: &AddNode,
    report: &mut (dyn FnMut(Progress) + Send),
) -> Result<Added, ProvisionError> {
    // A just-copied agent starts cold (tens of MB read from disk on a busy node): give
    // every step at least PROVISION_TIMEOUT.
    let mut patient = plan.clone();
    patient.options.connect_timeout = patient.options.connect_timeout.max(PROVISION_TIMEOUT);
    patient.options.request_timeout = patient.options.request_timeout.max(PROVISION_TIMEOUT);
    let plan = &patient;
    let dest = match Dest::parse(&plan.dest) {
        Ok(Dest::Local) => {
            return Err(fail(
                report,
                Step::HostKey,
                "`local` is this machine: it needs no provisioning",
            ));
        }
        Ok(d) => d,
        Err(e) => return Err(fail(report, Step::HostKey, e)),
    };
    let cluster =
        load_cluster(&plan.cluster_file).map_err(|e| fail(report, Step::ClusterFile, e))?;
    let (id, listed) = plan_entry(cluster.as_ref(), &dest, plan.id)
        .map_err(|e| fail(report, Step::ClusterFile, e))?;
    let node = dest.as_str().to_owned();

    // 1. The host key.
    say(
        report,
        Step::HostKey,
        StepState::Running(format!("asking {node} for its host key")),
    );
    let check = hostkey::check(
        &node,
        plan.options.ssh_config.as_deref(),
        plan.options.connect_timeout,
    )
    .await
    .map_err(|e| fail(report, Step::HostKey, e.to_string()))?;
    match &check.status {
        HostKeyStatus::Known { key } => say(
            report,
            Step::HostKey,
            StepState::Done(format!(
                "{} {} is known",
                key.short_kind(),
                key.fingerprint()
            )),
        ),
        HostKeyStatus::Unknown { offered } => {
            return Err(fail(
                report,
                Step::HostKey,
                format!(
                    "the host key of {node} is unknown ({} {}): accept it first",
                    offered.short_kind(),
                    offered.fingerprint()
                ),
            ));
        }
        HostKeyStatus::Changed { recorded, offered } => {
            return Err(fail(
                report,
                Step::HostKey,
                HostKeyCheck::changed_warning(&check.target, recorded, offered),
            ));
        }
    }

    // 2. The master connection (host keys checked by ssh itself as well).
    say(
        report,
        Step::Connect,
        StepState::Running(format!("ssh {node}")),
    );
    let session = open_session(&node, &plan.options)
        .await
        .map_err(|e| fail(report, Step::Connect, changed_in_words(&check, e)))?;
    let session = Arc::new(session);
    say(
        report,
        Step::Connect,
        StepState::Done(format!("connected to {}", check.target.hostname)),
    );

    // 3. A compatible agent?
    say(
        report,
        Step::Agent,
        StepState::Running("looking for an agent (hello)".into()),
    );
    let probe = serve_on(id, Arc::clone(&session), &plan.options).await;
    let installed = match probe {
        Ok(conn) => {
            let h = conn.hello();
            say(
                report,
                Step::Agent,
                StepState::Done(format!(
                    "agent {} is there (protocol {}, backend {})",
                    h.agent_version, h.protocol, h.backend
                )),
            );
            for step in [Step::Architecture, Step::Copy, Step::Run] {
                say(
                    report,
                    step,
                    StepState::Skipped("a compatible agent is installed".into()),
                );
            }
            false
        }
        Err(e) => {
            let why = match &e {
                ClientError::Connect { reason, .. } => reason.clone(),
                other => other.to_string(),
            };
            if plan.options.remote_agent != openmosix_hpc::map::DEFAULT_AGENT {
                // The lookup runs a custom agent command as it is, never the installed copy.
                return Err(fail(
                    report,
                    Step::Agent,
                    format!(
                        "the cluster file names its own agent command ({:?}), which does not answer ({why}); \
                         node add installs only the default openmosix-agent: install yours on the node, \
                         or leave `agent` out of the cluster file",
                        plan.options.remote_agent
                    ),
                ));
            }
            say(
                report,
                Step::Agent,
                StepState::Done(format!("no compatible agent ({why}); installing ours")),
            );
            install_agent(plan, &session, &node, report).await?;
            true
        }
    };
    session_close(session).await;

    // 7. The cluster file.
    if listed {
        say(
            report,
            Step::ClusterFile,
            StepState::Skipped(format!(
                "already node {id} of {}",
                plan.cluster_file.display()
            )),
        );
    } else {
        say(
            report,
            Step::ClusterFile,
            StepState::Running(format!("adding node {id}")),
        );
        append_node(&plan.cluster_file, id, &dest)
            .map_err(|e| fail(report, Step::ClusterFile, e))?;
        say(
            report,
            Step::ClusterFile,
            StepState::Done(format!(
                "node {id} = {node} in {}",
                plan.cluster_file.display()
            )),
        );
    }

    // 8. It answers as the cluster reaches it.
    say(
        report,
        Step::Answer,
        StepState::Running(format!("hello to node {id}")),
    );
    let member = ClusterNode {
        id,
        addresses: vec![dest.host().to_owned()],
        dest: dest.clone(),
    };
    let conn = connect_node(&member, &plan.options)
        .await
        .map_err(|e| fail(report, Step::Answer, e.to_string()))?;
    let hello = conn.hello().clone();
    say(
        report,
        Step::Answer,
        StepState::Done(format!(
            "node {id} answers: agent {}, protocol {}, backend {}",
            hello.agent_version, hello.protocol, hello.backend
        )),
    );
    Ok(Added {
        id,
        installed,
        appended: !listed,
        hello,
    })
}

/// Steps 4–6: architecture, copy, run.
async fn install_agent(
    plan: &AddNode,
    session: &Arc<openssh::Session>,
    node: &str,
    report: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), ProvisionError> {
    say(
        report,
        Step::Architecture,
        StepState::Running("uname -m".into()),
    );
    let bytes = tokio::fs::read(&plan.agent_binary).await.map_err(|e| {
        fail(
            report,
            Step::Architecture,
            format!(
                "cannot read the agent binary {}: {e}",
                plan.agent_binary.display()
            ),
        )
    })?;
    let Some(machine) = install::elf_machine(&bytes) else {
        return Err(fail(
            report,
            Step::Architecture,
            format!(
                "{} is not a Linux (ELF) program",
                plan.agent_binary.display()
            ),
        ));
    };
    let remote = install::remote_machine(session)
        .await
        .map_err(|e| fail(report, Step::Architecture, e))?;
    match install::runs_on(machine, &remote) {
        Some(false) => {
            return Err(fail(
                report,
                Step::Architecture,
                format!(
                    "{node} runs on {remote}, but this suite's agent is built for {}: \
                     install an agent built for {remote} there (or build the suite for it)",
                    machine.name
                ),
            ));
        }
        Some(true) => say(
            report,
            Step::Architecture,
            StepState::Done(format!("{node} is {remote}, the agent is {}", machine.name)),
        ),
        None => say(
            report,
            Step::Architecture,
            StepState::Done(format!("{node} is {remote} (the run test decides)")),
        ),
    }

    let size = bytes.len();
    say(
        report,
        Step::Copy,
        StepState::Running(format!("sending {}", mb(size))),
    );
    let mut on_event = |ev: UploadEvent| {
        let state = match ev {
            UploadEvent::Sent {
                attempt,
                done,
                total,
            } => StepState::Running(format!(
                "attempt {attempt}: sent {} of {}",
                mb(done),
                mb(total)
            )),
            UploadEvent::Mismatch {
                attempt,
                expected,
                got,
            } => StepState::Running(format!(
                "attempt {attempt}: checksum mismatch (sent sha256 {}…, node has {}…): sending again",
                &expected[..12],
                &got[..12.min(got.len())]
            )),
            UploadEvent::Verified { attempt, sum } => StepState::Running(format!(
                "attempt {attempt}: sha256 {}… verified on the node",
                &sum[..12]
            )),
        };
        report(Progress {
            step: Step::Copy,
            state,
        });
    };
    let sum = install::upload_verified(session, &bytes, &mut on_event)
        .await
        .map_err(|e| fail(report, Step::Copy, e))?;
    say(
        report,
        Step::Copy,
        StepState::Done(format!(
            "{} on the node, sha256 {}… verified",
            mb(size),
            &sum[..12]
        )),
    );

    say(
        report,
        Step::Run,
        StepState::Running("openmosix-agent --version".into()),
    );
    let version = install::run_upload(session, node)
        .await
        .map_err(|e| fail(report, Step::Run, e))?;
    install::activate(session)
        .await
        .map_err(|e| fail(report, Step::Run, e))?;
    let conn = serve_on(0, Arc::clone(session), &plan.options)
        .await
        .map_err(|e| {
            fail(
                report,
                Step::Run,
                format!("the installed agent does not answer: {e}"),
            )
        })?;
    say(
        report,
        Step::Run,
        StepState::Done(format!(
            "{version} runs from ~/{}/openmosix-agent (protocol {})",
            super::transport::INSTALL_DIR,
            conn.hello().protocol
        )),
    );
    Ok(())
}

/// Closes the master if nothing else holds it (else it goes with its last holder).
async fn session_close(session: Arc<openssh::Session>) {
    if let Ok(s) = Arc::try_unwrap(session) {
        let _ = s.close().await;
    }
}

/// ssh's refusal of a changed key, in the suite's own words; other errors unchanged.
fn changed_in_words(check: &HostKeyCheck, ssh_said: String) -> String {
    if ssh_said.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || ssh_said.contains("Host key verification failed")
    {
        format!(
            "WARNING: ssh refused {}: its host key does not match known_hosts (REMOTE HOST IDENTIFICATION HAS CHANGED). \
             The suite does not connect and does not change known_hosts.",
            check.target.dest
        )
    } else {
        ssh_said
    }
}
