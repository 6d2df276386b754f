//! Wall-clock time as the suite records it: milliseconds since the Unix epoch. The one
//! place that reads the system clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch (zero for a clock set before 1970).
fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Now, in milliseconds since the Unix epoch (0 for a clock set before 1970).
pub fn unix_ms() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// Now, in nanoseconds since the Unix epoch (0 for a clock set before 1970): for names
/// that must not repeat, such as migration images.
pub fn unix_nanos() -> u128 {
    since_epoch().as_nanos()
}
