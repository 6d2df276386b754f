//! Packed samples (schema 2): what goes in comes out the same, through the query API and
//! through the `samples_all` view, whether a sample sits in a block or a plain row; a
//! file of schema 1 is converted; a damaged block is a clear error.

// The helpers that fill the history are test code too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use openmosix_hpc::model::{NodeInfo, NodeStatus};
use openmosix_store::store::{Store, Tick};
use openmosix_store::{Error, History, Sample, schema};
use openmosix_testbed::fixtures::Rng;
use rusqlite::Connection;

const MIB: u64 = 1 << 20;
/// Not on a minute: the first and the last block of each node are partial.
const T0: i64 = 1_700_000_017;

/// The figures of `node` at second `i`: random walks with jumps, node 3 down now and
/// then, node 2 with extreme values now and then.
fn figures(rng: &mut Rng, node: u32, i: i64) -> Option<NodeInfo> {
    if node == 3 && (i % 200 > 150 || (40..45).contains(&i)) {
        return None;
    }
    let r = rng.bits();
    let load = match r % 50 {
        0 => 1e15,
        1 => 0.0,
        _ => (r % 40_000) as f64 / 7.0,
    };
    let (mem, rmem) = if node == 2 && i % 97 == 0 {
        (u64::MAX / 2, 0)
    } else {
        ((r >> 20) % (64 << 30), (r >> 7) % (1 << 30))
    };
    Some(NodeInfo {
        id: node,
        cpus: 4,
        speed: 1000,
        load,
        util: (r % 101) as f64 + 0.4,
        mem,
        rmem,
        tmem: 64 << 30,
        status: if i % 300 < 10 {
            NodeStatus::Blocked
        } else {
            NodeStatus::Up
        },
    })
}

/// What the query API answers for a stored NodeInfo (stored units: load and util
/// rounded, memory to the nearest MiB).
fn expected(t: i64, n: &NodeInfo) -> Sample {
    let mib = |b: u64| (b.saturating_add(MIB / 2) >> 20) * MIB;
    Sample {
        time: t,
        load: n.load.round().clamp(0.0, 1e15),
        util: n.util.round().clamp(0.0, 100.0),
        mem: mib(n.mem),
        rmem: mib(n.rmem),
    }
}

/// Writes `seconds` ticks of three nodes; returns what each node's samples must be.
fn fill(store: &mut Store, seconds: i64) -> BTreeMap<u32, Vec<Sample>> {
    store
        .set_nodes(&[(1, "n1".into()), (2, "n2".into()), (3, "n3".into())])
        .unwrap();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut want: BTreeMap<u32, Vec<Sample>> = BTreeMap::new();
    for i in 0..seconds {
        let t = T0 + i;
        let mut tick = Tick {
            time: t,
            ..Tick::default()
        };
        for node in 1..=3 {
            if let Some(n) = figures(&mut rng, node, i) {
                want.entry(node).or_default().push(expected(t, &n));
                tick.samples.push((node, n));
            }
        }
        store.write_tick(&tick).unwrap();
    }
    want
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The `samples_all` view, per node, as query API samples.
fn view(conn: &Connection) -> BTreeMap<u32, Vec<Sample>> {
    let mut out: BTreeMap<u32, Vec<Sample>> = BTreeMap::new();
    let mut st = conn
        .prepare("SELECT node, time, load, util, mem, rmem FROM samples_all ORDER BY node, time")
        .unwrap();
    let mut rows = st.query([]).unwrap();
    while let Some(r) = rows.next().unwrap() {
        let b = |i: usize| u64::try_from(r.get::<_, i64>(i).unwrap()).unwrap() * MIB;
        out.entry(r.get(0).unwrap()).or_default().push(Sample {
            time: r.get(1).unwrap(),
            load: r.get::<_, i64>(2).unwrap() as f64,
            util: r.get::<_, i64>(3).unwrap() as f64,
            mem: b(4),
            rmem: b(5),
        });
    }
    out
}

#[test]
fn packed_and_plain_samples_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Store::open_file(&path).unwrap();
    let want = fill(&mut s, 700);
    let c = s.connection();
    // Everything but the newest minute is packed; one block per node and minute.
    let plain = count(c, "SELECT count(*) FROM samples");
    let packed: i64 = count(c, "SELECT sum(count) FROM sample_blocks");
    let total: usize = want.values().map(Vec::len).sum();
    assert_eq!(plain + packed, i64::try_from(total).unwrap());
    assert!(plain > 0 && plain <= 3 * 60, "{plain} plain rows");
    assert_eq!(
        count(
            c,
            "SELECT count(*) FROM samples WHERE time < (SELECT max(time) / 60 * 60 FROM samples)"
        ),
        0
    );
    assert_eq!(
        count(
            c,
            "SELECT count(*) FROM (SELECT node, time / 60 FROM sample_blocks GROUP BY 1, 2 HAVING count(*) > 1)"
        ),
        0
    );

    let h = History::open(&path).unwrap();
    let last = T0 + 699;
    assert_eq!(h.samples_all(T0, last).unwrap(), want);
    assert_eq!(view(h.connection()), want);
    assert_eq!(h.range().unwrap(), Some((T0, last)));
    // Ranges that start and end inside blocks, and in the plain rows.
    for (from, to) in [
        (T0 + 5, T0 + 130),
        (T0 + 61, T0 + 61),
        (T0 + 600, last),
        (T0 + 690, last + 50),
    ] {
        for node in 1..=3u32 {
            let part: Vec<Sample> = want[&node]
                .iter()
                .filter(|x| (from..=to).contains(&x.time))
                .copied()
                .collect();
            assert_eq!(
                h.samples(node, from, to).unwrap(),
                part,
                "{node} {from}..{to}"
            );
        }
    }
    // The gaps stay gaps: node 3 has nothing in 40..45 and after 150 in every 200.
    assert!(h.samples(3, T0 + 40, T0 + 44).unwrap().is_empty());
    assert!(h.samples(3, T0 + 151, T0 + 199).unwrap().is_empty());
    // Statistics over the packed range match plain SQL over the view.
    let st = h.stats(Some(1), T0, last).unwrap().unwrap();
    let (n, max): (i64, f64) = h
        .connection()
        .query_row(
            "SELECT count(*), max(load) FROM samples_all WHERE node = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((st.samples, st.max_load), (u64::try_from(n).unwrap(), max));
    let agg = h.aggregate_all(T0, last, 7).unwrap();
    for (node, b) in &agg {
        assert_eq!(
            b.iter().map(|x| x.count as usize).sum::<usize>(),
            want[node].len()
        );
    }
    // samples_full still joins the static data (a block of `blocked` every 300 s).
    assert_eq!(
        count(
            h.connection(),
            "SELECT count(*) FROM samples_full WHERE node = 1"
        ),
        i64::try_from(want[&1].len()).unwrap()
    );
    assert_eq!(
        count(
            h.connection(),
            "SELECT count(*) FROM samples_full WHERE node = 1 AND status = 'blocked'"
        ),
        30
    );
}

#[test]
fn a_reopened_store_and_a_clock_that_goes_back_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Store::open_file(&path).unwrap();
    let want = fill(&mut s, 130);
    drop(s);
    // A restart within the same minute, then the clock goes back into a packed minute.
    let mut s = Store::open_file(&path).unwrap();
    let info = figures(&mut Rng(1), 1, 0).unwrap();
    for t in [T0 + 130, T0 + 131, T0 + 20, T0 + 132, T0 + 200] {
        s.write_tick(&Tick {
            time: t,
            samples: vec![(1, info.clone())],
            ..Tick::default()
        })
        .unwrap();
    }
    let h = History::open(&path).unwrap();
    let got = h.samples(1, T0, T0 + 300).unwrap();
    let mut times: Vec<i64> = want[&1].iter().map(|x| x.time).collect();
    times.extend([T0 + 130, T0 + 131, T0 + 132, T0 + 200]);
    assert_eq!(got.iter().map(|x| x.time).collect::<Vec<_>>(), times);
    // The sample written again at T0+20 replaced the old one, as a plain row would.
    assert_eq!(got[20], expected(T0 + 20, &info));
    assert_eq!(got[21], want[&1][21]);
    assert_eq!(h.samples(2, T0, T0 + 300).unwrap(), want[&2]);
}

#[test]
fn a_damaged_block_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Store::open_file(&path).unwrap();
    fill(&mut s, 200);
    let first: i64 = count(
        s.connection(),
        "SELECT min(time) FROM sample_blocks WHERE node = 2",
    );
    s.connection()
        .execute(
            "UPDATE sample_blocks SET data = substr(data, 1, length(data) - 3)
             WHERE node = 2 AND time = ?1",
            [first],
        )
        .unwrap();
    drop(s);
    let h = History::open(&path).unwrap();
    let err = h.samples(2, T0, T0 + 199).unwrap_err();
    assert!(matches!(err, Error::Damaged { node: 2, .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("packed samples of node 2") && text.contains("damaged"),
        "{text}"
    );
    assert!(h.aggregate_all(T0, T0 + 199, 10).is_err());
    assert!(h.stats(None, T0, T0 + 199).is_err());
    // The other nodes, and node 2 outside that block, still read.
    assert!(!h.samples(1, T0, T0 + 199).unwrap().is_empty());
    assert!(!h.samples(2, first + 60, T0 + 199).unwrap().is_empty());
}

/// A file as schema 1 wrote it: plain rows only.
fn schema_1_file(path: &Path, seconds: i64) -> BTreeMap<u32, Vec<Sample>> {
    let c = Connection::open(path).unwrap();
    c.execute_batch(schema::MIGRATIONS[0]).unwrap();
    c.pragma_update(None, "application_id", schema::APPLICATION_ID)
        .unwrap();
    c.pragma_update(None, "user_version", 1).unwrap();
    c.execute_batch("INSERT INTO nodes (id, address) VALUES (1, 'n1'), (2, 'n2'), (3, 'n3')")
        .unwrap();
    let mut rng = Rng(99);
    let mut want: BTreeMap<u32, Vec<Sample>> = BTreeMap::new();
    c.execute_batch("BEGIN").unwrap();
    let mut st = c
        .prepare("INSERT INTO samples (time, node, load, util, mem, rmem) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .unwrap();
    for i in 0..seconds {
        for node in 1..=3u32 {
            let Some(n) = figures(&mut rng, node, i) else {
                continue;
            };
            let e = expected(T0 + i, &n);
            st.execute(rusqlite::params![
                e.time,
                node,
                e.load as i64,
                e.util as i64,
                i64::try_from(e.mem / MIB).unwrap(),
                i64::try_from(e.rmem / MIB).unwrap()
            ])
            .unwrap();
            want.entry(node).or_default().push(e);
        }
    }
    drop(st);
    c.execute_batch("COMMIT").unwrap();
    want
}

#[test]
fn a_schema_1_file_reads_as_it_is_and_is_packed_when_the_collector_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // More than an hour: the conversion packs an hour at a time.
    let want = schema_1_file(&path, 3700);
    let last = T0 + 3699;
    let old = History::open(&path).unwrap();
    assert_eq!(schema::version(old.connection()).unwrap(), 1);
    let before = old.samples_all(T0, last).unwrap();
    assert_eq!(before, want);
    let before_agg = old.aggregate_all(T0, last, 33).unwrap();
    let before_stats = old.stats(None, T0, last).unwrap();
    drop(old);

    let s = Store::open_file(&path).unwrap();
    let c = s.connection();
    assert_eq!(schema::version(c).unwrap(), schema::latest());
    assert!(count(c, "SELECT count(*) FROM sample_blocks") > 0);
    assert!(count(c, "SELECT count(*) FROM samples") <= 3 * 60);
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(s);
    let h = History::open(&path).unwrap();
    assert_eq!(h.samples_all(T0, last).unwrap(), want);
    assert_eq!(h.aggregate_all(T0, last, 33).unwrap(), before_agg);
    assert_eq!(h.stats(None, T0, last).unwrap(), before_stats);
    assert_eq!(view(h.connection()), want);
    assert_eq!(h.range().unwrap(), Some((T0, last)));
}

#[test]
fn export_writes_every_sample_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Store::open_file(&path).unwrap();
    let want = fill(&mut s, 300);
    drop(s);
    let mut lines: Vec<(i64, u32, String)> = Vec::new();
    for (node, samples) in &want {
        for x in samples {
            lines.push((
                x.time,
                *node,
                format!(
                    "{},{node},{},{},{},{}",
                    x.time,
                    x.load,
                    x.util,
                    x.mem / MIB,
                    x.rmem / MIB
                ),
            ));
        }
    }
    lines.sort();
    let all: Vec<&str> = lines.iter().map(|l| l.2.as_str()).collect();

    let h = History::open(&path).unwrap();
    let mut out = Vec::new();
    let n = openmosix_store::export::samples_csv(&h, None, None, &mut out).unwrap();
    assert_eq!(usize::try_from(n).unwrap(), all.len());
    let text = String::from_utf8(out).unwrap();
    let mut got = text.lines();
    assert_eq!(got.next(), Some("time,node,load,util,mem,rmem"));
    assert_eq!(got.collect::<Vec<_>>(), all);

    // Over a part of the range.
    let (from, to) = (T0 + 50, T0 + 130);
    let mut out = Vec::new();
    openmosix_store::export::samples_csv(&h, Some(from), Some(to), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let part: Vec<&str> = lines
        .iter()
        .filter(|l| (from..=to).contains(&l.0))
        .map(|l| l.2.as_str())
        .collect();
    assert_eq!(text.lines().skip(1).collect::<Vec<_>>(), part);
}

#[test]
fn samples_written_past_the_writer_are_packed_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut s = Store::open_file(&path).unwrap();
    let want = fill(&mut s, 50);
    // A row the writer did not write (by hand, with sqlite3) within the plain minute.
    s.connection()
        .execute(
            "INSERT INTO samples (time, node, load, util, mem, rmem) VALUES (?1, 9, 1, 2, 3, 4)",
            [T0 + 10],
        )
        .unwrap();
    let info = figures(&mut Rng(5), 1, 0).unwrap();
    s.write_tick(&Tick {
        time: T0 + 200,
        samples: vec![(1, info)],
        ..Tick::default()
    })
    .unwrap();
    let h = History::open(&path).unwrap();
    let nine = h.samples(9, T0, T0 + 300).unwrap();
    assert_eq!(nine.len(), 1);
    assert_eq!(
        (nine[0].time, nine[0].load, nine[0].rmem),
        (T0 + 10, 1.0, 4 * MIB)
    );
    assert_eq!(h.samples(2, T0, T0 + 300).unwrap(), want[&2]);
    assert_eq!(count(h.connection(), "SELECT count(*) FROM samples"), 1);
}
