//! The steps of adding a node and where each stands, as reported while it runs.

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
    /// On a gateway: the relay program (`openmosix`) is there, else installed.
    Relay,
    /// The node goes into the cluster file.
    ClusterFile,
    /// The node answers as the cluster will reach it.
    Answer,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 9] = [
        Step::HostKey,
        Step::Connect,
        Step::Agent,
        Step::Architecture,
        Step::Copy,
        Step::Run,
        Step::Relay,
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
            Step::Relay => "gateway relay",
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
