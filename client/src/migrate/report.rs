//! What a move says as it happens ([`Progress`]) and once it has ended ([`Migrated`]).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::Route;
use openmosix_hpc::model::NodeId;

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
    /// Image bytes moved so far (pages and the rest), of about `total`.
    Transfer {
        /// Moved.
        sent: u64,
        /// Expected.
        total: u64,
        /// Bytes a second since the transfer began.
        #[serde(default)]
        rate: u64,
    },
    /// Restoring on the target.
    Restore,
    /// Resuming the original on the source after a failure.
    Resuming,
}

impl Progress {
    /// A transfer at `sent` of about `total` bytes (never shown below what was sent),
    /// its rate from the `counted` bytes moved since `started`.
    pub(crate) fn transfer(sent: u64, total: u64, counted: u64, started: Instant) -> Progress {
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        Progress::Transfer {
            sent,
            total: total.max(sent),
            rate: (counted as f64 / secs) as u64,
        }
    }

    /// A transfer in words: "412 MiB of 1.0 GiB at 380 MiB/s".
    pub fn moved(&self) -> Option<String> {
        let Progress::Transfer { sent, total, rate } = self else {
            return None;
        };
        let mut text = format!("{} of {}", size(*sent), size(*total));
        if *rate > 0 {
            text.push_str(&format!(" at {}/s", size(*rate)));
        }
        Some(text)
    }
}

/// Bytes in the unit a person reads.
fn size(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
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
    /// The two-phase handover inside the freeze (commit on the source, release on the
    /// target); 0 for a single-phase one.
    #[serde(default)]
    pub handover_ms: u64,
    /// The final dump inside the freeze, from the request to the source's answer
    /// (post-copy: all but the private memory); 0 where not measured.
    #[serde(default)]
    pub dump_ms: u64,
    /// Post-copy: how the small image went to the target — `link` (on the direct page
    /// link) or `client` (through this client's SSH channels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_via: Option<String>,
    /// Image bytes sent (pages and the rest).
    pub bytes: u64,
    /// How the memory went: `disk-less` (pages streamed while the dump ran) or
    /// `disk` (dumped to the source's disk first: older agents, or asked for).
    #[serde(default)]
    pub mode: String,
    /// The way the bytes went: node to node (`direct`) or through this client.
    #[serde(default = "relayed")]
    pub route: Route,
    /// Why the direct path was not taken, when it was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relayed_because: Option<String>,
    /// Where the target kept the image until the restore read it: `memory` (a tmpfs)
    /// or `disk`; not said by older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_images: Option<String>,
    /// Pre-dump rounds.
    pub rounds: u32,
    /// Home node and pid of the process.
    pub home: (NodeId, i32),
}

impl Migrated {
    /// The process's home node when that is neither end of the move: it is told where
    /// the process runs now ([`tell_home`]).
    pub fn home_elsewhere(&self) -> Option<NodeId> {
        let home = self.home.0;
        (home != self.from && home != self.to).then_some(home)
    }
}

fn relayed() -> Route {
    Route::Relayed
}
