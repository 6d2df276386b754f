//! The packed form of a run of one node's samples: one row of `sample_blocks` holds up to
//! a minute (at most [`MAX_BLOCK_SPAN`] seconds) of them in a blob.
//!
//! The blob (docs/collector.md "Packed samples", byte by byte):
//!
//! - byte 0: the format, [`FORMAT`] (1);
//! - then five columns, one after the other: `time`, `load`, `util`, `mem`, `rmem`, each
//!   `count` varints. Every value is stored as the difference from the one before it in
//!   the same column (wrapping 64-bit arithmetic), zigzag-mapped (0, -1, 1, -2 … →
//!   0, 1, 2, 3 …) and written as an unsigned LEB128 varint (7 bits a byte, low bits
//!   first, the high bit set on every byte but the last). The value before the first is
//!   the row's `time` for the time column (so the first time difference is 0) and 0 for
//!   the others;
//! - nothing after the last varint.
//!
//! A sample a second with small changes costs one byte per column; a gap (a node that
//! was down) is only a bigger time difference. The values are the stored units of
//! `samples` (load ×100, util %, memory MiB), so packing loses nothing.

use crate::Time;

/// The blob format written.
pub const FORMAT: u8 = 1;

/// The longest span of one block: `last - time < MAX_BLOCK_SPAN` (a CHECK of the table,
/// which lets readers find the blocks that overlap a range through the primary key).
pub const MAX_BLOCK_SPAN: Time = 600;

/// One sample in stored units (the columns of `samples` but `node`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Unix s.
    pub time: Time,
    /// Load ×100.
    pub load: i64,
    /// Util, %.
    pub util: i64,
    /// MiB.
    pub mem: i64,
    /// MiB.
    pub rmem: i64,
}

impl Row {
    fn get(&self, col: usize) -> i64 {
        match col {
            0 => self.time,
            1 => self.load,
            2 => self.util,
            3 => self.mem,
            _ => self.rmem,
        }
    }

    fn set(&mut self, col: usize, v: i64) {
        match col {
            0 => self.time = v,
            1 => self.load = v,
            2 => self.util = v,
            3 => self.mem = v,
            _ => self.rmem = v,
        }
    }
}

const COLUMNS: usize = 5;

/// Why a blob could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The blob is empty.
    #[error("the blob is empty")]
    Empty,
    /// The first byte names a format this program does not know.
    #[error("unknown format {0}")]
    Format(u8),
    /// The row's count is not a positive number.
    #[error("the count {0} is not a positive number")]
    Count(i64),
    /// The blob ends inside a value.
    #[error("the blob ends early (after {0} of its values)")]
    Truncated(usize),
    /// A varint is longer than 64 bits.
    #[error("value {0} is longer than 64 bits")]
    Overlong(usize),
    /// Bytes follow the last value.
    #[error("{0} bytes follow the last value")]
    Trailing(usize),
    /// The times do not start at the row's time or do not increase.
    #[error("the times do not start at the row's time and increase (sample {0})")]
    Times(usize),
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Packs `rows` (oldest first, times increasing; the first one's time is the row's
/// `time`). An empty slice packs to the format byte alone.
pub fn encode(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + rows.len() * COLUMNS * 2);
    out.push(FORMAT);
    let first_time = rows.first().map_or(0, |r| r.time);
    for col in 0..COLUMNS {
        let mut prev = if col == 0 { first_time } else { 0 };
        for r in rows {
            let v = r.get(col);
            put_varint(&mut out, zigzag(v.wrapping_sub(prev)));
            prev = v;
        }
    }
    out
}

/// Unpacks a blob of `count` samples whose first one is at `time`. Any damage (a
/// truncated or overlong blob, an unknown format, times that do not increase) is an
/// error, never a panic or made-up samples.
pub fn decode(time: Time, count: i64, data: &[u8]) -> Result<Vec<Row>, BlockError> {
    let (&format, mut rest) = data.split_first().ok_or(BlockError::Empty)?;
    if format != FORMAT {
        return Err(BlockError::Format(format));
    }
    let n = usize::try_from(count)
        .ok()
        .filter(|n| *n > 0)
        .ok_or(BlockError::Count(count))?;
    // Every value takes at least a byte: a count beyond the blob's size is damage (and
    // must not make us allocate for it).
    if n > rest.len() / COLUMNS {
        return Err(BlockError::Truncated(rest.len()));
    }
    let empty = Row {
        time,
        load: 0,
        util: 0,
        mem: 0,
        rmem: 0,
    };
    let mut rows = vec![empty; n];
    let mut read = 0usize;
    for col in 0..COLUMNS {
        let mut prev = if col == 0 { time } else { 0 };
        for (i, row) in rows.iter_mut().enumerate() {
            let (z, len) = varint(rest, read)?;
            rest = &rest[len..];
            read += 1;
            let v = prev.wrapping_add(unzigzag(z));
            if col == 0 && (if i == 0 { z != 0 } else { v <= prev }) {
                return Err(BlockError::Times(i));
            }
            row.set(col, v);
            prev = v;
        }
    }
    if !rest.is_empty() {
        return Err(BlockError::Trailing(rest.len()));
    }
    Ok(rows)
}

/// The varint at the start of `bytes` and its length; `index` names it in errors.
fn varint(bytes: &[u8], index: usize) -> Result<(u64, usize), BlockError> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        let bits = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        // The tenth byte may carry only the 64th bit.
        if shift > 63 || (shift == 63 && bits > 1) {
            return Err(BlockError::Overlong(index));
        }
        v |= bits << shift;
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(BlockError::Truncated(index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(time: Time, load: i64, util: i64, mem: i64, rmem: i64) -> Row {
        Row {
            time,
            load,
            util,
            mem,
            rmem,
        }
    }

    #[test]
    fn roundtrip_and_one_byte_per_small_change() {
        let rows: Vec<Row> = (0..60)
            .map(|i| row(1_700_000_000 + i, 100 + i % 7, 50, 3000 - i, 1500 + i % 3))
            .collect();
        let blob = encode(&rows);
        assert_eq!(decode(rows[0].time, 60, &blob).unwrap(), rows);
        // Format byte, then one byte a value but the first load, mem and rmem (2 each).
        assert_eq!(blob.len(), 1 + 5 * 60 + 3);
    }

    #[test]
    fn gaps_are_time_differences() {
        let rows = vec![
            row(100, 1, 1, 1, 1),
            row(101, 1, 1, 1, 1),
            row(160, 9, 9, 9, 9),
            row(161, 9, 9, 9, 9),
        ];
        let back = decode(100, 4, &encode(&rows)).unwrap();
        assert_eq!(back, rows);
        assert_eq!(
            back.iter().map(|r| r.time).collect::<Vec<_>>(),
            [100, 101, 160, 161]
        );
    }

    #[test]
    fn extreme_values_survive() {
        let rows = vec![
            row(i64::MIN, i64::MAX, i64::MIN, 0, -1),
            row(i64::MIN + 1, i64::MIN, i64::MAX, i64::MAX, i64::MIN),
            row(0, 0, -1, i64::MIN, i64::MAX),
            row(i64::MAX, -1, 0, 1, 0),
        ];
        let blob = encode(&rows);
        assert_eq!(decode(i64::MIN, 4, &blob).unwrap(), rows);
        // A jump over the whole range is a ten-byte varint.
        assert!(blob.len() <= 1 + 4 * 5 * 10);
    }

    #[test]
    fn status_changes_and_steps_roundtrip() {
        // The values jump when a node changes (a block, a reboot): a few bytes, exact.
        let rows: Vec<Row> = (0..30)
            .map(|i| {
                let busy = (10..20).contains(&i);
                row(
                    1000 + i,
                    if busy { 40_000 } else { 0 },
                    if busy { 100 } else { 0 },
                    if i < 15 { 15_000 } else { 100 },
                    7,
                )
            })
            .collect();
        assert_eq!(decode(1000, 30, &encode(&rows)).unwrap(), rows);
    }

    #[test]
    fn damage_is_an_error() {
        let rows: Vec<Row> = (0..10).map(|i| row(50 + i, 1000 * i, 3, 4, 5)).collect();
        let blob = encode(&rows);
        assert_eq!(decode(50, 10, &[]), Err(BlockError::Empty));
        assert_eq!(decode(50, 10, &[9]), Err(BlockError::Format(9)));
        assert_eq!(decode(50, 0, &blob), Err(BlockError::Count(0)));
        assert_eq!(decode(50, -3, &blob), Err(BlockError::Count(-3)));
        // Every truncation fails, none panics.
        for len in 1..blob.len() {
            assert!(decode(50, 10, &blob[..len]).is_err(), "length {len}");
        }
        // A count that does not match the blob.
        assert!(decode(50, 9, &blob).is_err());
        assert!(decode(50, 11, &blob).is_err());
        assert!(decode(50, i64::MAX, &blob).is_err());
        // A first time difference that is not 0.
        let mut moved = blob.clone();
        moved[1] = 2;
        assert_eq!(decode(50, 10, &moved), Err(BlockError::Times(0)));
        let mut long = blob;
        long.push(0);
        assert_eq!(decode(50, 10, &long), Err(BlockError::Trailing(1)));
        // A varint of eleven bytes.
        let mut over = vec![FORMAT];
        over.extend([0xff; 10]);
        over.push(0x01);
        over.extend([0; 60]);
        assert_eq!(decode(0, 1, &over), Err(BlockError::Overlong(0)));
        // Times that go back.
        let back = encode(&[row(10, 0, 0, 0, 0), row(9, 0, 0, 0, 0)]);
        assert_eq!(decode(10, 2, &back), Err(BlockError::Times(1)));
        // Random bytes never panic.
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
            if let Some(b) = bytes.first_mut() {
                *b = FORMAT;
            }
            let _ = decode(0, (x % 9) as i64, &bytes);
        }
    }
}
