//! criu's checks, run in the background while the agent already answers.
//!
//! Finding out whether criu works here takes four criu runs (about 80 ms of CPU) when
//! they are not kept yet ([`super::probe_cache`]): on a cluster just built, every agent's
//! first start. A node's figures do not depend on them, so the agent answers at once and
//! the checks run in a thread of their own; `hello` says they are still running
//! (`checking`), and whatever needs criu (a dump, a restore, the `readiness` op, the
//! `hello` of an older client) waits for them here. The agent never takes or refuses a
//! migration on a guess.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use openmosix_hpc::protocol::Capability;

use super::Criu;

/// What the checks found: criu if it is usable, and what `hello` says about it.
pub type Found = (Option<Criu>, Capability);

/// How long a waiter waits for the checks at most (criu's checks take well under a
/// second; one that hangs must not hold a request for ever).
pub const CHECKS_LIMIT: Duration = Duration::from_secs(120);

/// The outcome of criu's checks, known now or later; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct CriuChecks {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    found: OnceLock<Found>,
    /// Woken when `found` is set.
    bell: (Mutex<()>, Condvar),
}

impl CriuChecks {
    /// Checks already done (or not needed): `found` is known from the start.
    pub fn known(found: Found) -> Self {
        let checks = CriuChecks::default();
        checks.set(found);
        checks
    }

    /// Starts the checks of `setting` (else criu on PATH) in a thread of their own,
    /// keeping their outcome in `state_dir`. Their criu runs yield the CPU to everything
    /// else ([`super::super::syscalls::yield_cpu`]).
    pub fn start(setting: Option<PathBuf>, state_dir: PathBuf) -> Self {
        let checks = CriuChecks::default();
        let filler = checks.clone();
        let spawned = std::thread::Builder::new()
            .name("criu-checks".into())
            .spawn(move || {
                filler.set(super::detect(setting.as_deref(), Some(&state_dir)));
            });
        if let Err(e) = spawned {
            checks.set((
                None,
                Capability {
                    available: false,
                    detail: format!("cannot start criu's checks: {e}"),
                },
            ));
        }
        checks
    }

    fn set(&self, found: Found) {
        let _ = self.shared.found.set(found);
        let (lock, bell) = &self.shared.bell;
        let _guard = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bell.notify_all();
    }

    /// The outcome, if the checks have ended.
    pub fn now(&self) -> Option<&Found> {
        self.shared.found.get()
    }

    /// The outcome, waiting for the checks at most `limit`; `None` when they ran longer.
    pub fn wait_for(&self, limit: Duration) -> Option<&Found> {
        let deadline = Instant::now() + limit;
        let (lock, bell) = &self.shared.bell;
        let mut guard = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(found) = self.shared.found.get() {
                return Some(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = bell
                .wait_timeout(guard, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// The outcome, waiting for it at most [`CHECKS_LIMIT`]; checks that ran longer
    /// read as "migration unavailable", with that reason.
    pub fn wait(&self) -> Found {
        self.wait_for(CHECKS_LIMIT).cloned().unwrap_or_else(|| {
            (
                None,
                Capability {
                    available: false,
                    detail: format!(
                        "criu's checks did not end within {} s",
                        CHECKS_LIMIT.as_secs()
                    ),
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(detail: &str) -> Found {
        (
            None,
            Capability {
                available: false,
                detail: detail.into(),
            },
        )
    }

    #[test]
    fn a_waiter_gets_the_outcome_once_it_is_known() {
        let checks = CriuChecks::default();
        assert!(checks.now().is_none());
        assert!(checks.wait_for(Duration::from_millis(20)).is_none());
        let filler = checks.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            filler.set(unavailable("no criu here"));
        });
        let started = Instant::now();
        let found = checks.wait_for(Duration::from_secs(10)).cloned();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(found.map(|f| f.1.detail), Some("no criu here".into()));
        t.join().unwrap_or_else(|_| panic!("the filler panicked"));
        assert!(checks.now().is_some());
    }

    #[test]
    fn checks_that_find_no_criu_end_by_themselves() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let checks = CriuChecks::start(
            Some(dir.path().join("no-such-criu")),
            dir.path().to_path_buf(),
        );
        let (criu, cap) = checks.wait();
        assert!(criu.is_none());
        assert!(!cap.available);
        assert!(cap.detail.contains("cannot run"), "{}", cap.detail);
    }
}
