//! The answer to `hello`, and what it says about migration.

use serde::{Deserialize, Serialize};

use crate::model::NodeId;

/// The answer to `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION) of the agent.
    pub protocol: u32,
    /// The agent's version (its crate version).
    pub agent_version: String,
    /// The node's openMosix id.
    pub node_id: NodeId,
    /// `linux` or `kernel`.
    pub backend: String,
    /// Ops this agent answers.
    pub ops: Vec<String>,
    /// Whether process migration works here, and if not why.
    pub migration: Capability,
    /// Whether pre-dump rounds work here (the kernel tracks dirty memory).
    #[serde(default)]
    pub predump: bool,
    /// Whether post-copy moves work here (criu's lazy pages: userfaultfd).
    #[serde(default)]
    pub postcopy: bool,
    /// Whether images that fit in memory are kept there (a tmpfs) when they arrive: the
    /// agent then takes `--size` on `pages receive` and `images receive`.
    #[serde(default)]
    pub memory_images: bool,
    /// Whether a post-copy move's small image may travel on a direct page link (the
    /// pumps take the `image` word of their control lines; docs/protocol.md).
    #[serde(default)]
    pub postcopy_image_link: bool,
    /// criu's checks still run (protocol 3, which answers `hello` before they end):
    /// `migration`, `predump` and `postcopy` are not known yet, and the `readiness` op
    /// answers them once they are. Older clients get a `hello` that waits for them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checking: bool,
}

impl Hello {
    /// What this `hello` says about migration.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            migration: self.migration.clone(),
            predump: self.predump,
            postcopy: self.postcopy,
        }
    }

    /// Takes in `readiness` (the answer to `readiness`): migration is known now.
    pub fn set_readiness(&mut self, readiness: Readiness) {
        self.migration = readiness.migration;
        self.predump = readiness.predump;
        self.postcopy = readiness.postcopy;
        self.checking = false;
    }
}

/// Whether and how processes can move here: the answer to `readiness`, and the fields of
/// the same names in [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Whether process migration works here, and if not why.
    pub migration: Capability,
    /// Whether pre-dump rounds work here.
    #[serde(default)]
    pub predump: bool,
    /// Whether post-copy moves work here.
    #[serde(default)]
    pub postcopy: bool,
}

/// Whether a capability is there, with the reason when it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// Available or not.
    pub available: bool,
    /// Why not (or what provides it).
    pub detail: String,
}
