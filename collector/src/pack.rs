//! Packing: the writer moves each node's completed minute of plain `samples` rows into
//! one `sample_blocks` row ([`crate::block`]), inside the tick's own transaction.
//!
//! A block covers one window of [`BLOCK_SECONDS`] (aligned to the Unix epoch): at the
//! first tick of a new window, every plain row of an older window is packed and deleted.
//! So `samples` holds the newest minute as plain rows (what `sqlite3` users look at
//! most), `sample_blocks` everything before it, and the view `samples_all` both.

use std::collections::BTreeMap;

use openmosix_agent::model::NodeId;
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

/// Packs every plain sample older than `before` into blocks (one per node and window,
/// merged with a block already there) and deletes those rows. Returns the samples
/// packed. Runs inside the caller's transaction.
pub fn pack_before(conn: &Connection, before: Time) -> Result<usize> {
    let mut groups: BTreeMap<(Time, NodeId), Vec<Row>> = BTreeMap::new();
    {
        let mut st = conn.prepare_cached(
            "SELECT time, node, load, util, mem, rmem FROM samples WHERE time < ?1
             ORDER BY time, node",
        )?;
        let mut rows = st.query([before])?;
        while let Some(r) = rows.next()? {
            let time: Time = r.get(0)?;
            groups
                .entry((window_start(time), r.get(1)?))
                .or_default()
                .push(Row {
                    time,
                    load: r.get(2)?,
                    util: r.get(3)?,
                    mem: r.get(4)?,
                    rmem: r.get(5)?,
                });
        }
    }
    if groups.is_empty() {
        return Ok(0);
    }
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
    for ((_, node), rows) in &groups {
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
    conn.prepare_cached("DELETE FROM samples WHERE time < ?1")?
        .execute([before])?;
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
