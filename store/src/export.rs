//! `openmosixcollector --export`: every sample of a history as plain CSV rows, whether it
//! sits in a packed block or a plain row (docs/collector.md "Reading it with sqlite3").

use std::io::Write;

use crate::{Error, History, Result, Time};

/// Seconds read at a time (each slice is sorted in memory).
const SLICE: Time = 3600;

/// Writes `time,node,load,util,mem,rmem` (stored units: Unix s, load ×100, util %,
/// MiB) of every sample in `from..=to` (the whole history for `None`), ordered by time
/// and node, with a header line. Returns the rows written.
pub fn samples_csv(
    h: &History,
    from: Option<Time>,
    to: Option<Time>,
    out: &mut impl Write,
) -> Result<u64> {
    let io = |e| Error::io("cannot write the samples", e);
    writeln!(out, "time,node,load,util,mem,rmem").map_err(io)?;
    let Some((first, last)) = h.range()? else {
        return Ok(0);
    };
    let (from, to) = (
        from.unwrap_or(first).max(first),
        to.unwrap_or(last).min(last),
    );
    let mut rows = 0u64;
    let mut start = from;
    while start <= to {
        let end = start.saturating_add(SLICE - 1).min(to);
        let mut slice: Vec<(Time, u32, [i64; 4])> = Vec::new();
        h.for_each_sample(None, start, end, |node, s| {
            slice.push((s.time, node, [s.load, s.util, s.mem, s.rmem]));
        })?;
        slice.sort_unstable_by_key(|r| (r.0, r.1));
        for (t, node, [load, util, mem, rmem]) in slice {
            writeln!(out, "{t},{node},{load},{util},{mem},{rmem}").map_err(io)?;
            rows += 1;
        }
        if end == Time::MAX {
            break;
        }
        start = end + 1;
    }
    out.flush().map_err(io)?;
    Ok(rows)
}
