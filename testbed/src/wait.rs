//! Waiting with a deadline: a test polls a condition until it holds and fails, naming
//! what it waited for (and what it saw instead), when it does not hold in time.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How often [`until`], [`until_some`] and [`until_ok`] look again.
pub const EVERY: Duration = Duration::from_millis(100);

/// Polls `cond` until it holds; panics naming `what` after `timeout`.
pub fn until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    until_ok(timeout, what, || if cond() { Ok(()) } else { Err("") });
}

/// Polls `f` until it returns a value, and returns that; panics naming `what` after
/// `timeout`.
pub fn until_some<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    until_ok(timeout, what, || f().ok_or(""))
}

/// Polls `f` until it returns `Ok`, and returns its value; panics after `timeout` naming
/// `what` and the last `Err` (what there was instead, when it says anything).
pub fn until_ok<T, E: Display>(
    timeout: Duration,
    what: &str,
    f: impl FnMut() -> Result<T, E>,
) -> T {
    poll(timeout, EVERY, what, f)
}

/// [`until_ok`] looking again every `every` (a window harness steps a frame each time).
pub fn poll<T, E: Display>(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(seen) => {
                let seen = seen.to_string();
                let seen = if seen.is_empty() {
                    seen
                } else {
                    format!(" ({seen})")
                };
                assert!(
                    Instant::now() < deadline,
                    "not within {timeout:?}: {what}{seen}"
                );
                std::thread::sleep(every);
            }
        }
    }
}

/// How long `cond` took to hold, or `None` when it did not within `limit` (for tests
/// that bound the time something takes).
pub fn within(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(EVERY);
    }
}

/// What `f` returned once it returned something, or `None` when it did not within
/// `limit` (for a test that tries again).
pub fn some_within<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(EVERY);
    }
}
