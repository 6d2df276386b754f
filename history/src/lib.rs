//! openMosixhistory (HOWTO 10.7.4): the process list of the past.
//!
//! [`HistoryBrowser`] reads a history written by openmosixcollector (the live link or an
//! older, saved file) through the collector crate's read API
//! ([`openmosix_store::History`]) and shows, for the time chosen with a slider that
//! snaps to the recorded snapshots, every process of the cluster: pid, node, home node,
//! state and command line. Beyond the original it answers "where was pid X at time T",
//! filters the list, marks migrated processes green, and can be pointed at a time from
//! elsewhere ([`HistoryBrowser::set_time`], e.g. from an analyzer's load spike).
//!
//! The window never reads the file itself: one worker thread per window owns the
//! connection and answers every query (opening, the list at a time, "where was pid",
//! the refresh look), only the newest waiting request of each kind; the window draws
//! "loading…" meanwhile.
//!
//! docs/history.md is the user guide.

mod browser;
mod rows;
mod worker;

pub use browser::HistoryBrowser;
pub use openmosix_store::{Time, utc_text};
pub use rows::{MIGRATED, row_label, where_sentence};

/// Reads a time given on the command line: seconds since the epoch (`1700000000` or
/// `@1700000000`), or a UTC date and time `YYYY-mm-dd HH:MM[:SS]` (a `T` may separate
/// them; a trailing `Z` or `UTC` is allowed), or a date alone (midnight UTC).
pub fn parse_time(text: &str) -> Option<Time> {
    let s = text.trim();
    let digits = s.strip_prefix('@').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.parse().ok();
    }
    let s = s
        .strip_suffix("UTC")
        .or_else(|| s.strip_suffix('Z'))
        .unwrap_or(s)
        .trim_end();
    let (date, clock) = match s.split_once([' ', 'T']) {
        Some((d, c)) => (d, c.trim()),
        None => (s, "00:00:00"),
    };
    let num = |p: &str| -> Option<i64> {
        (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, mo, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&day) {
        return None;
    }
    let mut c = clock.split(':');
    let h = num(c.next()?)?;
    let mi = num(c.next()?)?;
    let sec = match c.next() {
        Some(p) => num(p)?,
        None => 0,
    };
    if c.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, day) * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Days since 1970-01-01 of a calendar date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_time("@5"), Some(5));
        assert_eq!(parse_time("2023-11-14 22:13:20"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14 22:13:20 UTC"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14 22:13"), Some(1_700_000_000 - 20));
        assert_eq!(parse_time("2000-02-29"), Some(951_782_400));
        assert_eq!(parse_time("1970-01-01"), Some(0));
        for bad in [
            "",
            "x",
            "2023-13-01",
            "2023-11-14 25:00",
            "2023-11",
            "12:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        for t in [0, 951_782_400, 1_700_000_000, 1_795_000_123] {
            assert_eq!(parse_time(&utc_text(t)), Some(t));
        }
    }
}
