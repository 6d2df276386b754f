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
use super::install::{self, Program, UploadEvent};
use super::transport::{ClientOptions, connect_node, open_session, serve_on, serve_on_as};
use openmosix_hpc::map::{ClusterNode, Dest};
use openmosix_hpc::model::NodeId;
use openmosix_hpc::protocol::Hello;

mod relay;
mod step;
mod via;

use super::transport::agent_command as transport_command;
pub use step::{Progress, Step, StepState};
pub use via::{install_only, parse_progress_line, progress_line};

/// The shortest time-out any provisioning step gets (connection and each request).
pub const PROVISION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// The relay program (`openmosix`) to install on a gateway that lacks it.
    pub relay_binary: PathBuf,
    /// The node is a gateway (docs/fan-out.md) even if no node of the cluster file is
    /// `via` it yet: its relay is installed too.
    pub gateway: bool,
    /// The node is reached through this gateway node of the cluster file: `dest` is as
    /// the gateway reaches it, and steps 1–6 run there ([`via`]).
    pub via: Option<NodeId>,
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

/// The relay program to install on a gateway: `openmosix` beside the running program
/// (the command line, or the window programs installed with it), else the first on PATH.
pub fn default_relay_binary() -> PathBuf {
    let name = Program::Relay.name();
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file());
    beside
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join(name))
                    .find(|c| c.is_file())
            })
        })
        .unwrap_or_else(|| PathBuf::from(name))
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

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// Adds a node whose host key ssh knows (see [`super::hostkey`]): every step goes to
/// `report` as it happens; the first failure ends it with a sentence.
pub async fn provision(
    plan: &AddNode,
    report: &mut (dyn FnMut(Progress) + Send),
) -> Result<Added, ProvisionError> {
    let mut run = Provisioning::prepare(plan, report)?;
    let installed = match run.via.clone() {
        Some(gw) => run.install_via(&gw).await?,
        None => run.install_here().await?,
    };
    run.cluster_file()?;
    let hello = run.answer().await?;
    Ok(Added {
        id: run.id,
        installed,
        appended: !run.listed,
        hello,
    })
}

/// `plan` with time-outs of at least [`PROVISION_TIMEOUT`]: a just-copied agent starts
/// cold (tens of MB read from disk on a busy node).
fn patient(mut plan: AddNode) -> AddNode {
    plan.options.connect_timeout = plan.options.connect_timeout.max(PROVISION_TIMEOUT);
    plan.options.request_timeout = plan.options.request_timeout.max(PROVISION_TIMEOUT);
    plan
}

/// One node being added: the plan (with patient time-outs), where progress goes, and
/// the node's place in the cluster file. Each step is one method, called in order.
struct Provisioning<'a> {
    plan: AddNode,
    report: &'a mut (dyn FnMut(Progress) + Send),
    dest: Dest,
    /// The ssh destination, as ssh is given it.
    node: String,
    id: NodeId,
    /// The node is in the cluster file already.
    listed: bool,
    /// The node is a gateway: asked for, or some node of the cluster file is `via` it.
    gateway: bool,
    /// The gateway the node is reached through (`--via`).
    via: Option<via::Gateway>,
}

impl<'a> Provisioning<'a> {
    /// Reads the destination and the cluster file (failures are reported on the steps
    /// they belong to).
    fn prepare(
        plan: &AddNode,
        report: &'a mut (dyn FnMut(Progress) + Send),
    ) -> Result<Self, ProvisionError> {
        let plan = patient(plan.clone());
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
        let gateway = plan.gateway
            || cluster.as_ref().is_some_and(|c| {
                c.nodes
                    .iter()
                    .any(|n| openmosix_hpc::map::gateway_of(n) == Some(id))
            });
        let via = match plan.via {
            None => None,
            Some(_) if gateway => {
                return Err(fail(
                    report,
                    Step::ClusterFile,
                    "a node reached through a gateway cannot be a gateway itself (one level)",
                ));
            }
            Some(g) => Some(
                via::gateway_in(cluster.as_ref(), g)
                    .map_err(|e| fail(report, Step::ClusterFile, e))?,
            ),
        };
        Ok(Provisioning {
            via,
            gateway,
            node: dest.as_str().to_owned(),
            plan,
            report,
            dest,
            id,
            listed,
        })
    }

    /// Steps 1–6 from here, and the relay on a gateway: whether the agent was installed.
    async fn install_here(&mut self) -> Result<bool, ProvisionError> {
        let check = self.host_key().await?;
        let session = self.connect(&check).await?;
        let installed = self.agent(&session).await;
        let relay = match installed {
            Ok(_) => self.relay(&session).await,
            Err(_) => Ok(()),
        };
        session_close(session).await;
        relay.and(installed)
    }

    fn say(&mut self, step: Step, state: StepState) {
        (self.report)(Progress { step, state });
    }

    fn fail(&mut self, step: Step, message: impl Into<String>) -> ProvisionError {
        fail(self.report, step, message)
    }

    /// 1. The host key must be known already.
    async fn host_key(&mut self) -> Result<HostKeyCheck, ProvisionError> {
        let node = self.node.clone();
        self.say(
            Step::HostKey,
            StepState::Running(format!("asking {node} for its host key")),
        );
        let check = hostkey::check(
            &node,
            self.plan.options.ssh_config.as_deref(),
            self.plan.options.connect_timeout,
        )
        .await
        .map_err(|e| self.fail(Step::HostKey, e.to_string()))?;
        match &check.status {
            HostKeyStatus::Known { key } => self.say(
                Step::HostKey,
                StepState::Done(format!(
                    "{} {} is known",
                    key.short_kind(),
                    key.fingerprint()
                )),
            ),
            HostKeyStatus::Vouched { ca } => self.say(
                Step::HostKey,
                StepState::Done(format!(
                    "vouched for by the certificate authority {} {} of {} (ssh checks the certificate)",
                    ca.key.short_kind(),
                    ca.key.fingerprint(),
                    ca.file.display()
                )),
            ),
            HostKeyStatus::Unknown { offered } => {
                return Err(self.fail(
                    Step::HostKey,
                    format!(
                        "the host key of {node} is unknown ({} {}): accept it first",
                        offered.short_kind(),
                        offered.fingerprint()
                    ),
                ));
            }
            HostKeyStatus::Changed { recorded, offered } => {
                return Err(self.fail(
                    Step::HostKey,
                    HostKeyCheck::changed_warning(&check.target, recorded, offered),
                ));
            }
        }
        Ok(check)
    }

    /// 2. The master connection (host keys checked by ssh itself as well).
    async fn connect(
        &mut self,
        check: &HostKeyCheck,
    ) -> Result<Arc<openssh::Session>, ProvisionError> {
        self.say(
            Step::Connect,
            StepState::Running(format!("ssh {}", self.node)),
        );
        let session = open_session(&self.node, &self.plan.options)
            .await
            .map_err(|e| self.fail(Step::Connect, changed_in_words(check, e)))?;
        self.say(
            Step::Connect,
            StepState::Done(format!("connected to {}", check.target.hostname)),
        );
        Ok(Arc::new(session))
    }

    /// 3. A compatible agent? If not, steps 4–6 install ours. Whether it was installed.
    async fn agent(&mut self, session: &Arc<openssh::Session>) -> Result<bool, ProvisionError> {
        self.say(
            Step::Agent,
            StepState::Running("looking for an agent (hello)".into()),
        );
        let e = match serve_on(self.id, Arc::clone(session), &self.plan.options).await {
            Ok(conn) => {
                let h = conn.hello();
                self.say(
                    Step::Agent,
                    StepState::Done(format!(
                        "agent {} is there (protocol {}, backend {})",
                        h.agent_version, h.protocol, h.backend
                    )),
                );
                for step in [Step::Architecture, Step::Copy, Step::Run] {
                    self.say(
                        step,
                        StepState::Skipped("a compatible agent is installed".into()),
                    );
                }
                return Ok(false);
            }
            Err(e) => e,
        };
        let why = match &e {
            ClientError::Connect { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        if !install::probe_says_no_agent(&e) {
            // A time-out, a dropped channel or garbage is no proof that the node lacks an
            // agent: a packaged agent may be there, busy or broken. Nothing is installed.
            let message = format!(
                "the agent on the node did not answer properly ({why}); node add installs an agent \
                 only where none is found or the one found speaks another protocol: look at the \
                 node (`openmosix-agent serve` there), then try again"
            );
            return Err(self.fail(Step::Agent, message));
        }
        if self.plan.options.remote_agent != openmosix_hpc::map::DEFAULT_AGENT {
            // The lookup runs a custom agent command as it is, never the installed copy.
            let message = format!(
                "the cluster file names its own agent command ({:?}), which does not answer ({why}); \
                 node add installs only the default openmosix-agent: install yours on the node, \
                 or leave `agent` out of the cluster file",
                self.plan.options.remote_agent
            );
            return Err(self.fail(Step::Agent, message));
        }
        self.say(
            Step::Agent,
            StepState::Done(format!("no compatible agent ({why}); installing ours")),
        );
        let bytes = self
            .architecture(session, Step::Architecture, &self.plan.agent_binary.clone())
            .await?;
        self.copy(session, Step::Copy, Program::Agent, &bytes)
            .await?;
        self.run(session).await?;
        Ok(true)
    }

    /// 4. The node's machine against the binary's: the agent's, or on the relay step
    ///    the relay's, reported on `step`. The binary's bytes.
    async fn architecture(
        &mut self,
        session: &Arc<openssh::Session>,
        step: Step,
        path: &std::path::Path,
    ) -> Result<Vec<u8>, ProvisionError> {
        self.say(step, StepState::Running("uname -m".into()));
        let binary = path.display().to_string();
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| self.fail(step, format!("cannot read the program {binary}: {e}")))?;
        let Some(machine) = install::elf_machine(&bytes) else {
            return Err(self.fail(step, format!("{binary} is not a Linux (ELF) program")));
        };
        let remote = install::remote_machine(session)
            .await
            .map_err(|e| self.fail(step, e))?;
        let node = &self.node;
        let done = match install::runs_on(machine, &remote) {
            Some(false) => {
                let message = format!(
                    "{node} runs on {remote}, but this suite's agent is built for {}: \
                     install an agent built for {remote} there (or build the suite for it)",
                    machine.name
                );
                return Err(self.fail(step, message));
            }
            Some(true) => format!("{node} is {remote}, the agent is {}", machine.name),
            None => format!("{node} is {remote} (the run test decides)"),
        };
        if step == Step::Architecture {
            self.say(step, StepState::Done(done));
        }
        Ok(bytes)
    }

    /// 5. Upload with checksum: of the agent, or on the relay step the relay. Its
    ///    SHA-256.
    async fn copy(
        &mut self,
        session: &Arc<openssh::Session>,
        step: Step,
        program: Program,
        bytes: &[u8],
    ) -> Result<String, ProvisionError> {
        let size = bytes.len();
        self.say(step, StepState::Running(format!("sending {}", mb(size))));
        let report = &mut *self.report;
        let mut on_event = |ev: UploadEvent| {
            report(Progress {
                step,
                state: upload_state(ev),
            });
        };
        let sum = install::upload_verified(session, program, bytes, &mut on_event)
            .await
            .map_err(|e| self.fail(step, e))?;
        if step == Step::Copy {
            self.say(
                step,
                StepState::Done(format!(
                    "{} on the node, sha256 {}… verified",
                    mb(size),
                    &sum[..12]
                )),
            );
        }
        Ok(sum)
    }

    /// 6. The installed agent runs (`--version`), then says hello.
    async fn run(&mut self, session: &Arc<openssh::Session>) -> Result<(), ProvisionError> {
        self.say(
            Step::Run,
            StepState::Running("openmosix-agent --version".into()),
        );
        let version = install::run_upload(session, Program::Agent, &self.node)
            .await
            .map_err(|e| self.fail(Step::Run, e))?;
        install::activate(session, Program::Agent)
            .await
            .map_err(|e| self.fail(Step::Run, e))?;
        // The agent it installed learns its id here, once (its state folder keeps it), so
        // that it says it is this node when the cluster connects.
        let conn = serve_on_as(
            self.id,
            Arc::clone(session),
            &self.plan.options,
            Some(self.id),
        )
        .await
        .map_err(|e| {
            self.fail(
                Step::Run,
                format!("the installed agent does not answer: {e}"),
            )
        })?;
        self.say(
            Step::Run,
            StepState::Done(format!(
                "{version} runs from ~/{}/openmosix-agent (protocol {})",
                super::transport::INSTALL_DIR,
                conn.hello().protocol
            )),
        );
        Ok(())
    }

    /// 7. The node goes into the cluster file, unless it is there.
    fn cluster_file(&mut self) -> Result<(), ProvisionError> {
        let (id, file) = (self.id, self.plan.cluster_file.display().to_string());
        if self.listed {
            self.say(
                Step::ClusterFile,
                StepState::Skipped(format!("already node {id} of {file}")),
            );
            return Ok(());
        }
        self.say(
            Step::ClusterFile,
            StepState::Running(format!("adding node {id}")),
        );
        append_node(
            &self.plan.cluster_file,
            id,
            &self.dest,
            self.via.as_ref().map(|g| g.id),
        )
        .map_err(|e| self.fail(Step::ClusterFile, e))?;
        let node = &self.node;
        self.say(
            Step::ClusterFile,
            StepState::Done(format!("node {id} = {node} in {file}")),
        );
        Ok(())
    }

    /// 8. It answers as the cluster reaches it.
    async fn answer(&mut self) -> Result<Hello, ProvisionError> {
        let id = self.id;
        self.say(
            Step::Answer,
            StepState::Running(format!("hello to node {id}")),
        );
        // As the cluster file has it (its gateway, if any).
        let member = load_cluster(&self.plan.cluster_file)
            .ok()
            .flatten()
            .and_then(|c| c.node(id).cloned())
            .unwrap_or_else(|| ClusterNode {
                id,
                addresses: vec![self.dest.host().to_owned()],
                dest: self.dest.clone(),
                via: None,
            });
        let conn = connect_node(&member, &self.plan.options)
            .await
            .map_err(|e| {
                let hint = if matches!(e, crate::ClientError::WrongNode { .. }) {
                    format!(
                        "; if this machine is to be node {id}, run its agent once as \
                         `openmosix-agent serve --node-id {id}` (it keeps the id) or set \
                         OPENMOSIX_NODE_ID={id} for it"
                    )
                } else {
                    String::new()
                };
                self.fail(Step::Answer, format!("{e}{hint}"))
            })?;
        let hello = conn.hello().clone();
        self.say(
            Step::Answer,
            StepState::Done(format!(
                "node {id} answers: agent {}, protocol {}, backend {}",
                hello.agent_version, hello.protocol, hello.backend
            )),
        );
        Ok(hello)
    }
}

/// How an upload event reads in the copy step.
fn upload_state(ev: UploadEvent) -> StepState {
    StepState::Running(match ev {
        UploadEvent::Sent {
            attempt,
            done,
            total,
        } => format!("attempt {attempt}: sent {} of {}", mb(done), mb(total)),
        UploadEvent::Mismatch {
            attempt,
            expected,
            got,
        } => format!(
            "attempt {attempt}: checksum mismatch (sent sha256 {}…, node has {}…): sending again",
            &expected[..12],
            &got[..12.min(got.len())]
        ),
        UploadEvent::Verified { attempt, sum } => format!(
            "attempt {attempt}: sha256 {}… verified on the node",
            &sum[..12]
        ),
    })
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
