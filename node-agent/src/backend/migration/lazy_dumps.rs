//! The lazy dumps that serve post-copy moves' pages, and what the source does when one
//! ends: how its page stream ended, and the original running on when its pages never all
//! reached the target.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use super::{Migrator, Phase, Role, valid_image};
use crate::backend::lazy::Running;
use openmosix_hpc::protocol::AgentError;

impl Migrator {
    pub(super) fn lazy_dumps(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.lazy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for the post-copy dump of image `id`, if one runs: `None` when none ran,
    /// else how it ended.
    pub(super) fn lazy_ended(&self, id: &str) -> Option<Result<(), AgentError>> {
        let running = self.lazy_dumps().remove(id)?;
        Some(running.wait())
    }

    /// Waits (at most `limit` each) for the post-copy dumps of this agent to end, for a
    /// connection that goes away: a dump whose peer went away ends by itself, and the
    /// handoffs are settled after.
    pub fn drain_lazy(&self, limit: std::time::Duration) {
        let all: Vec<(String, Running)> = self.lazy_dumps().drain().collect();
        for (id, mut running) in all {
            let ended = running.wait_for(limit);
            if let Err(e) = &ended {
                tracing::warn!("post-copy dump of image {id}: {e}");
            }
            if self.pages_lost(&id, ended).is_some() {
                self.copy_lost(&id);
            }
        }
    }

    /// Where the source pump says how image `id`'s page stream ended.
    pub(super) fn stream_end_path(&self, id: &str) -> PathBuf {
        self.images.join(format!("{id}.pages"))
    }

    /// The source pump's word on how the page stream of image `id` ended: `done` (the
    /// target's end mark came), or `cut: WHY`.
    pub fn record_stream_end(&self, id: &str, end: Result<(), String>) {
        let text = match end {
            Ok(()) => "done".to_owned(),
            Err(why) => format!("cut: {why}"),
        };
        if valid_image(id) {
            let path = self.stream_end_path(id);
            let _ = fs::remove_file(&path);
            if let Err(e) = openmosix_hpc::files::create_new(&path, openmosix_hpc::files::FILE_MODE)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            {
                tracing::warn!("recording how the page stream of image {id} ended: {e}");
            }
        }
    }

    /// Whether a post-copy move's pages never all reached the target, by the source
    /// pump's word (its stream ended with the target's end mark or was cut), waited for
    /// a little, else by how criu's lazy dump `ended`: why, when they did not.
    pub(super) fn pages_lost(&self, id: &str, ended: Result<(), AgentError>) -> Option<String> {
        let path = self.stream_end_path(id);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let word = loop {
            match fs::read_to_string(&path) {
                Ok(w) => break Some(w),
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(_) => break None,
            }
        };
        let _ = fs::remove_file(&path);
        match (word.as_deref(), ended) {
            (Some("done"), _) => None,
            (Some(cut), _) => Some(cut.strip_prefix("cut: ").unwrap_or(cut).to_owned()),
            (None, Err(e)) => Some(e.message),
            (None, Ok(())) => None,
        }
    }

    /// A committed post-copy move whose dump ended before the target had every page,
    /// with no client left to say so: the target's guard kills its copy (its missing
    /// pages would read as zeros), so the original runs on here, as `finish` does when
    /// a client is there.
    pub(super) fn copy_lost(&self, id: &str) {
        let Some(record) = self.handoffs.read(id) else {
            return;
        };
        if record.role != Role::Source || record.phase != Phase::Committed {
            return;
        }
        let (tree, pid) = (record.tree.clone(), record.pid);
        match self.rewrite(record, Phase::Aborted) {
            Ok(_) => {
                tracing::warn!(
                    "process {pid} runs on here: the page stream of its post-copy move broke with its client gone"
                );
                self.continue_tree(&tree);
                self.remove(id);
            }
            Err(e) => tracing::warn!("recording image {id} as aborted: {e}"),
        }
    }
}
