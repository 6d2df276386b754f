//! Reading samples from both places they live: the packed blocks (`sample_blocks`, older
//! than a minute) and the plain rows (`samples`, the newest minute). Every sample read of
//! the query API goes through [`for_each`].

use std::collections::HashMap;

use openmosix_hpc::model::NodeId;
use rusqlite::{Connection, params};

use crate::block::{self, MAX_BLOCK_SPAN, Row};
use crate::pack::{damaged, plain_row};
use crate::{Result, Time, schema};

/// Whether the file has packed blocks (schema 2 on; a file of schema 1 has only plain
/// rows). Asked on every read: a collector may migrate a file a reader has open.
fn has_blocks(conn: &Connection) -> Result<bool> {
    Ok(schema::version(conn)? >= 2)
}

/// Calls `f` with every sample of `node` (every node for `None`) in `from..=to`: each
/// node's samples oldest first (nodes interleaved). Should the clock have gone back, a
/// sample that is not after its node's previous one is left out. A damaged block is an
/// error ([`crate::Error::Damaged`]).
pub(crate) fn for_each(
    conn: &Connection,
    node: Option<NodeId>,
    from: Time,
    to: Time,
    mut f: impl FnMut(NodeId, &Row),
) -> Result<()> {
    if to < from {
        return Ok(());
    }
    let mut last: HashMap<NodeId, Time> = HashMap::new();
    if has_blocks(conn)? {
        let mut st = conn.prepare_cached(
            "SELECT node, time, count, data FROM sample_blocks
             WHERE time BETWEEN ?1 AND ?2 AND last >= ?3 AND (?4 IS NULL OR node = ?4)
             ORDER BY time, node",
        )?;
        let mut rows = st.query(params![
            from.saturating_sub(MAX_BLOCK_SPAN - 1),
            to,
            from,
            node
        ])?;
        while let Some(r) = rows.next()? {
            let id: NodeId = r.get(0)?;
            let time: Time = r.get(1)?;
            // STRICT makes `data` a blob; anything else reads as a damaged (empty) one.
            let data = r.get_ref(3)?.as_blob().unwrap_or_default();
            let decoded =
                block::decode(time, r.get(2)?, data).map_err(|e| damaged(id, time, &e))?;
            let prev = last.entry(id).or_insert(Time::MIN);
            for s in &decoded {
                if s.time >= from && s.time <= to && s.time > *prev {
                    f(id, s);
                    *prev = s.time;
                }
            }
        }
    }
    let mut st = conn.prepare_cached(
        "SELECT time, node, load, util, mem, rmem FROM samples
         WHERE time BETWEEN ?1 AND ?2 AND (?3 IS NULL OR node = ?3) ORDER BY time",
    )?;
    let mut rows = st.query(params![from, to, node])?;
    while let Some(r) = rows.next()? {
        let (id, s) = plain_row(r)?;
        let prev = last.entry(id).or_insert(Time::MIN);
        if s.time > *prev {
            f(id, &s);
            *prev = s.time;
        }
    }
    Ok(())
}

/// First and last sample time, if there is any sample.
pub(crate) fn range(conn: &Connection) -> Result<Option<(Time, Time)>> {
    let (mut lo, mut hi): (Option<Time>, Option<Time>) =
        conn.query_row("SELECT min(time), max(time) FROM samples", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if has_blocks(conn)? {
        // The newest block's last time is among the blocks that start within the
        // longest span before the newest start (the key is (time, node)).
        let (blo, bhi): (Option<Time>, Option<Time>) = conn.query_row(
            "SELECT (SELECT min(time) FROM sample_blocks),
                    (SELECT max(last) FROM sample_blocks WHERE time >=
                        (SELECT max(time) FROM sample_blocks) - ?1)",
            [MAX_BLOCK_SPAN],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        lo = lo.into_iter().chain(blo).min();
        hi = hi.into_iter().chain(bhi).max();
    }
    Ok(lo.zip(hi))
}
