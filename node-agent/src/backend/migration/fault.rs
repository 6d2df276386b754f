//! The test-only fault hook of the handoff (docs/migration.md, "Fault hook"): a file
//! `fault-hook` in the agent's state folder, one line `POINT ACTION`, fires once when a
//! step reaches POINT (`after-dump`, `after-commit`, `after-restore`, `before-release`).
//! ACTION is `kill` (the agent process kills itself with SIGKILL), `fail` (the step
//! answers an error after doing its work) or `stall SECONDS` (it waits, so that a test
//! can kill the client or stop a node meanwhile). The file is renamed `fault-hook.fired`
//! when it fires. Only root can write the state folder, so the hook gives nobody
//! anything they could not do already.

use std::fs;
use std::time::Duration;

use super::Migrator;
use openmosix_hpc::protocol::{AgentError, ErrorKind};

/// The hook file's name in the state folder.
pub const FAULT_HOOK: &str = "fault-hook";

impl Migrator {
    /// Fires the fault hook if it names `point`.
    pub fn fault_hook(&self, point: &str) -> Result<(), AgentError> {
        let Some(state) = self.images.parent() else {
            return Ok(());
        };
        let path = state.join(FAULT_HOOK);
        let Ok(text) = fs::read_to_string(&path) else {
            return Ok(());
        };
        let mut words = text.split_whitespace();
        if words.next() != Some(point) {
            return Ok(());
        }
        if fs::rename(&path, state.join(format!("{FAULT_HOOK}.fired"))).is_err() {
            // Another agent process fired it first.
            return Ok(());
        }
        tracing::warn!("fault hook at {point}: {text}");
        match words.next() {
            Some("kill") => {
                crate::backend::syscalls::kill_self();
                Ok(())
            }
            Some("stall") => {
                let secs = words.next().and_then(|s| s.parse().ok()).unwrap_or(5);
                std::thread::sleep(Duration::from_secs(secs));
                Ok(())
            }
            _ => Err(AgentError::new(
                ErrorKind::MigrationFailed,
                format!("the fault hook failed this step at {point}"),
            )),
        }
    }
}
