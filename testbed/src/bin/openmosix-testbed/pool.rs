//! Work on every node at once: a handful of threads take the nodes in turn. Setting a
//! node up is mostly waiting for short-lived programs (`ip`, `nsenter`), so a 2-core
//! machine gains from more threads than cores.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;

use anyhow::Result;

/// Threads working on nodes at once.
const WORKERS: u32 = 8;

/// Runs `work(i)` for every node i in 1..=nodes, several at a time. After a failure no new
/// node is started; the error of the lowest node that failed is returned.
pub fn each_node(nodes: u32, work: impl Fn(u32) -> Result<()> + Sync) -> Result<()> {
    let next = AtomicU32::new(1);
    let failed = AtomicBool::new(false);
    let errors: Mutex<Vec<(u32, anyhow::Error)>> = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..WORKERS.min(nodes) {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i > nodes {
                        break;
                    }
                    if let Err(e) = work(i) {
                        failed.store(true, Ordering::Relaxed);
                        errors
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push((i, e));
                    }
                }
            });
        }
    });
    let mut errors = errors
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    errors.sort_by_key(|(i, _)| *i);
    match errors.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}
