//! The gateway relay step of adding a node: a gateway (docs/fan-out.md) runs `openmosix
//! gateway serve` and `gateway pipe` for its group, so `openmosix` must be there, as the
//! agent must. When the lookup finds none, or one of another version, the suite's own
//! is installed beside the agent, in `~/.local/lib/openmosix/` (which the lookup tries
//! first), the same way as the agent: architecture compared, checksum verified, run once.

use std::sync::Arc;

use super::{Program, ProvisionError, Provisioning, Step, StepState, install, mb};

impl Provisioning<'_> {
    /// 7. On a gateway: the relay is there, or it is installed.
    pub(super) async fn relay(
        &mut self,
        session: &Arc<openssh::Session>,
    ) -> Result<(), ProvisionError> {
        let name = Program::Relay.name();
        if !self.gateway {
            self.say(
                Step::Relay,
                StepState::Skipped(
                    "not a gateway (no node of the cluster file is via it; --gateway makes it one)"
                        .into(),
                ),
            );
            return Ok(());
        }
        self.say(
            Step::Relay,
            StepState::Running(format!("looking for {name} (--version)")),
        );
        let path = self.plan.relay_binary.clone();
        let ours = local_version(&path)
            .await
            .map_err(|e| self.fail(Step::Relay, e))?;
        let theirs = install::lookup_version(session, Program::Relay)
            .await
            .map_err(|e| self.fail(Step::Relay, e))?;
        if theirs.as_deref() == Some(ours.as_str()) {
            self.say(
                Step::Relay,
                StepState::Done(format!("{ours} is there for the gateway's relay")),
            );
            return Ok(());
        }
        let bytes = self.architecture(session, Step::Relay, &path).await?;
        let sum = self
            .copy(session, Step::Relay, Program::Relay, &bytes)
            .await?;
        let version = install::run_upload(session, Program::Relay, &self.node)
            .await
            .map_err(|e| self.fail(Step::Relay, e))?;
        install::activate(session, Program::Relay)
            .await
            .map_err(|e| self.fail(Step::Relay, e))?;
        let was = theirs.map_or_else(|| "none was there".to_owned(), |v| format!("{v} was there"));
        self.say(
            Step::Relay,
            StepState::Done(format!(
                "{version} installed in ~/{}/{name} ({}, sha256 {}… verified; {was})",
                super::super::transport::INSTALL_DIR,
                mb(bytes.len()),
                &sum[..12]
            )),
        );
        Ok(())
    }
}

/// What the relay program here says to `--version` (its first line).
async fn local_version(path: &std::path::Path) -> Result<String, String> {
    let out = tokio::process::Command::new(path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            format!(
                "cannot run the relay program {} ({e}): give it with --relay-binary",
                path.display()
            )
        })?;
    let said = String::from_utf8_lossy(&out.stdout);
    match said.lines().next().map(str::trim) {
        Some(line) if out.status.success() && !line.is_empty() => Ok(line.to_owned()),
        _ => Err(format!(
            "the relay program {} does not say its version",
            path.display()
        )),
    }
}
