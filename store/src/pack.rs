//! Packing: the writer moves each node's completed minute of plain `samples` rows into
//! one `sample_blocks` row ([`crate::block`]), inside the tick's own transaction.
//!
//! A block covers one window of [`BLOCK_SECONDS`] (aligned to the Unix epoch): at the
//! first tick of a new window, every plain row of an older window is packed and deleted.
//! So `samples` holds the newest minute as plain rows (what `sqlite3` users look at
//! most), `sample_blocks` everything before it, and the view `samples_all` both.

use std::collections::BTreeMap;

use openmosix_hpc::model::NodeId;
use rusqlite::{Connection, params};

use crate::block::{self, Row};
use crate::{Error, Result, Time};

/// Seconds of one block's window.
pub const BLOCK_SECONDS: Time = 60;

/// The start of the window `t` is in.
pub fn window_start(t: Time) -> Time {
    t - t.rem_euclid(BLOCK_SECONDS)
}

/// The error for a damaged blob of `node` at `time`.
pub fn damaged(node: NodeId, time: Time, e: &block::BlockError) -> Error {
    Error::Damaged {
        node,
        time,
        why: e.to_string(),
    }
}

/// The plain rows of `samples` grouped by (window start, node), each group by time.
pub type Plain = BTreeMap<(Time, NodeId), Vec<Row>>;

/// Adds a sample to `plain` as `INSERT OR REPLACE` adds it to `samples` (a second sample
/// at the same time replaces the first).
pub fn remember(plain: &mut Plain, node: NodeId, r: Row) {
    let rows = plain.entry((window_start(r.time), node)).or_default();
    match rows.last() {
        Some(l) if l.time < r.time => rows.push(r),
        None => rows.push(r),
        // The clock went back: keep the group ordered.
        Some(_) => match rows.binary_search_by_key(&r.time, |x| x.time) {
            Ok(i) => rows[i] = r,
            Err(i) => rows.insert(i, r),
        },
    }
}

/// Reads the plain rows of `samples`.
pub fn read_plain(conn: &Connection) -> Result<Plain> {
    read_plain_range(conn, Time::MIN, Time::MAX)
}

/// Reads the plain rows of `samples` with `from <= time < to`.
fn read_plain_range(conn: &Connection, from: Time, to: Time) -> Result<Plain> {
    let mut groups = Plain::new();
    let mut st = conn.prepare_cached(
        "SELECT time, node, load, util, mem, rmem FROM samples WHERE time >= ?1 AND time < ?2
         ORDER BY time, node",
    )?;
    let mut rows = st.query([from, to])?;
    while let Some(r) = rows.next()? {
        let (node, row) = plain_row(r)?;
        remember(&mut groups, node, row);
    }
    Ok(groups)
}

/// A `samples` row selected as `time, node, load, util, mem, rmem`.
pub(crate) fn plain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(NodeId, Row)> {
    let row = Row {
        time: r.get(0)?,
        load: r.get(2)?,
        util: r.get(3)?,
        mem: r.get(4)?,
        rmem: r.get(5)?,
    };
    Ok((r.get(1)?, row))
}

/// Packs every plain sample of the windows before the one starting at `before` into
/// blocks (one per node and window, merged with a block already there) and deletes
/// those rows; `plain` is what `samples` holds (the writer keeps a copy, so that the
/// tick need not read it back; `None`: read it). Returns the samples packed and the
/// plain rows left. Runs inside the caller's transaction.
pub fn pack_before(
    conn: &Connection,
    before: Time,
    plain: Option<Plain>,
) -> Result<(usize, Plain)> {
    let before = window_start(before);
    // The copy is checked against the table's row count (a cheap scan of one minute):
    // should anything else have written samples, the table is read after all.
    let rows: i64 = conn
        .prepare_cached("SELECT count(*) FROM samples")?
        .query_row([], |r| r.get(0))?;
    let mut groups = match plain {
        Some(p) if p.values().map(Vec::len).sum::<usize>() as i64 == rows => p,
        _ => read_plain(conn)?,
    };
    let left = groups.split_off(&(before, 0));
    if groups.is_empty() {
        return Ok((0, left));
    }
    let packed = write_blocks(conn, &mut groups)?;
    if left.is_empty() {
        // Nothing stays: SQLite clears the whole table without visiting each row.
        conn.prepare_cached("DELETE FROM samples")?.execute([])?;
    } else {
        conn.prepare_cached("DELETE FROM samples WHERE time < ?1")?
            .execute([before])?;
    }
    Ok((packed, left))
}

/// Packs every plain row but those of the newest window (the writer goes on there), an
/// hour at a time so that a long history never sits in memory whole: migration 2's
/// conversion of a schema 1 file. Returns the samples packed.
pub fn convert(conn: &Connection) -> Result<usize> {
    let (lo, hi): (Option<Time>, Option<Time>) =
        conn.query_row("SELECT min(time), max(time) FROM samples", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(0);
    };
    let end = window_start(hi);
    let mut from = window_start(lo);
    let mut packed = 0;
    while from < end {
        let to = from.saturating_add(60 * BLOCK_SECONDS).min(end);
        let mut groups = read_plain_range(conn, from, to)?;
        packed += write_blocks(conn, &mut groups)?;
        from = to;
    }
    conn.execute("DELETE FROM samples WHERE time < ?1", [end])?;
    Ok(packed)
}

/// Inserts a block per group, merged with any block of its node and window already
/// there. Returns the samples in the groups.
fn write_blocks(conn: &Connection, groups: &mut Plain) -> Result<usize> {
    let mut packed = 0;
    let mut windows: Vec<Time> = groups.keys().map(|(w, _)| *w).collect();
    windows.dedup();
    let mut existing = conn.prepare_cached(
        "SELECT node, time, count, data FROM sample_blocks WHERE time BETWEEN ?1 AND ?2",
    )?;
    let mut delete_block =
        conn.prepare_cached("DELETE FROM sample_blocks WHERE time = ?1 AND node = ?2")?;
    // Blocks already in these windows (normally none: only after the clock went back, or
    // when a migrated file is written again within its last minute) are merged.
    for w in windows {
        let mut rows = existing.query(params![w, w + BLOCK_SECONDS - 1])?;
        while let Some(r) = rows.next()? {
            let node: NodeId = r.get(0)?;
            let time: Time = r.get(1)?;
            let Some(fresh) = groups.get_mut(&(w, node)) else {
                continue;
            };
            let data: Vec<u8> = r.get(3)?;
            match block::decode(time, r.get(2)?, &data) {
                Ok(old) => {
                    *fresh = merge(&old, fresh);
                    delete_block.execute(params![time, node])?;
                }
                // A damaged block is left as it is (it reads as an error, the new
                // samples go into a block of their own).
                Err(e) => tracing::warn!("{}", damaged(node, time, &e)),
            }
        }
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO sample_blocks (time, node, last, count, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for ((_, node), rows) in groups.iter() {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            continue;
        };
        insert.execute(params![
            first.time,
            node,
            last.time,
            rows.len() as i64,
            block::encode(rows)
        ])?;
        packed += rows.len();
    }
    Ok(packed)
}

/// `old` and `new` (each ordered by time) merged; on the same time `new` wins, as a
/// plain row written later replaced an earlier one.
fn merge(old: &[Row], new: &[Row]) -> Vec<Row> {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a.time < b.time => {
                out.push(*a);
                i += 1;
            }
            (Some(a), Some(b)) if a.time == b.time => {
                out.push(*b);
                i += 1;
                j += 1;
            }
            (_, Some(b)) => {
                out.push(*b);
                j += 1;
            }
            (Some(a), None) => {
                out.push(*a);
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(time: Time, load: i64) -> Row {
        Row {
            time,
            load,
            util: 0,
            mem: 0,
            rmem: 0,
        }
    }

    #[test]
    fn windows_and_merge() {
        assert_eq!(window_start(119), 60);
        assert_eq!(window_start(120), 120);
        assert_eq!(window_start(-1), -60);
        let m = merge(&[r(1, 1), r(3, 1), r(5, 1)], &[r(2, 2), r(3, 2), r(6, 2)]);
        assert_eq!(
            m.iter().map(|x| (x.time, x.load)).collect::<Vec<_>>(),
            [(1, 1), (2, 2), (3, 2), (5, 1), (6, 2)]
        );
    }
}
