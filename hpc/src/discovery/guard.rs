//! What keeps a listener's work and log bounded whatever arrives: a token bucket per
//! source address ([`RateLimit`]) and a bound on the log lines about ignored datagrams
//! ([`WarnLimit`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Datagrams a source may send in a burst (a daemon sends one per interval, and a
/// goodbye when it stops).
pub const BURST: f64 = 5.0;
/// Datagrams per second a source may send on average.
pub const PER_SECOND: f64 = 2.0;
/// The most sources a [`RateLimit`] remembers; beyond that, new sources wait until the
/// idle ones are forgotten.
pub const MAX_SOURCES: usize = 8192;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per source: [`BURST`] datagrams at once, [`PER_SECOND`] on average.
#[derive(Debug, Default)]
pub struct RateLimit {
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimit {
    /// Whether a datagram from `source` at `now` is within its rate (and takes a token).
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            // A bucket that has filled up again is the same as none.
            self.buckets.retain(|_, b| refill(*b, now) < BURST);
            if self.buckets.len() >= MAX_SOURCES {
                return false;
            }
        }
        let b = self.buckets.entry(source).or_insert(Bucket {
            tokens: BURST,
            at: now,
        });
        let tokens = refill(*b, now);
        if tokens < 1.0 {
            return false;
        }
        *b = Bucket {
            tokens: tokens - 1.0,
            at: now,
        };
        true
    }

    /// The sources remembered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no source is remembered.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

fn refill(b: Bucket, now: Instant) -> f64 {
    let secs = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + secs * PER_SECOND).min(BURST)
}

/// How often one sender's ignored datagrams are logged at most.
pub const WARN_EVERY: Duration = Duration::from_secs(60);
/// How many lines about ignored datagrams are logged per [`WARN_EVERY`], all senders
/// together; the rest are counted and summed up in one line.
pub const WARN_LINES: u32 = 20;

/// Which lines about ignored datagrams get logged: one per sender per minute, at most
/// [`WARN_LINES`] a minute in all, and a count of the others.
#[derive(Debug, Default)]
pub struct WarnLimit {
    last: HashMap<IpAddr, Instant>,
    window: Option<Instant>,
    lines: u32,
    suppressed: u64,
}

/// What to log for one ignored datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warn {
    /// Ignored datagrams left unlogged in the minute before, to sum up in one line first
    /// (0: none).
    pub summary: u64,
    /// Whether to log the line about this datagram.
    pub line: bool,
}

impl WarnLimit {
    /// What to log about an ignored datagram from `from` at `now`.
    pub fn check(&mut self, from: IpAddr, now: Instant) -> Warn {
        let mut summary = 0;
        if self
            .window
            .is_none_or(|start| now.duration_since(start) >= WARN_EVERY)
        {
            self.window = Some(now);
            self.lines = 0;
            summary = std::mem::take(&mut self.suppressed);
        }
        let due = self
            .last
            .get(&from)
            .is_none_or(|last| now.duration_since(*last) >= WARN_EVERY);
        if !due || self.lines >= WARN_LINES {
            self.suppressed += 1;
            return Warn {
                summary,
                line: false,
            };
        }
        if self.last.len() >= MAX_SOURCES {
            self.last.retain(|_, t| now.duration_since(*t) < WARN_EVERY);
        }
        self.last.insert(from, now);
        self.lines += 1;
        Warn {
            summary,
            line: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn a_flooding_source_is_held_to_its_rate() {
        let t0 = Instant::now();
        let mut r = RateLimit::default();
        let passed = (0..1000).filter(|_| r.allow(ip(1), t0)).count();
        assert_eq!(passed, BURST as usize);
        // Another source is not held back by the first.
        assert!(r.allow(ip(2), t0));
        // A second later two more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| r.allow(ip(1), t1)).count(), 2);
        // A daemon announcing once a second always passes.
        let mut r = RateLimit::default();
        for s in 0..100 {
            assert!(r.allow(ip(3), t0 + Duration::from_secs(s)));
        }
    }

    #[test]
    fn many_sources_stay_bounded() {
        let t0 = Instant::now();
        let mut r = RateLimit::default();
        for i in 0..20_000 {
            r.allow(ip(i), t0);
        }
        assert!(r.len() <= MAX_SOURCES);
        // Once they are idle long enough, new sources get in again.
        assert!(r.allow(ip(99_999), t0 + Duration::from_secs(10)));
    }

    #[test]
    fn warnings_are_bounded_and_summed_up() {
        let t0 = Instant::now();
        let mut w = WarnLimit::default();
        let logged = (0..10_000).filter(|&i| w.check(ip(i), t0).line).count();
        assert_eq!(logged, WARN_LINES as usize);
        assert!(!w.check(ip(1), t0).line, "once a minute per sender");
        let t1 = t0 + WARN_EVERY;
        assert_eq!(
            w.check(ip(1), t1),
            Warn {
                summary: 10_000 - u64::from(WARN_LINES) + 1,
                line: true
            }
        );
    }
}
