//! The read API on a history filled with known, synthetic figures.

// The helpers that fill the history are test code too.
#![allow(clippy::unwrap_used)]

use openmosix_hpc::model::{NodeInfo, NodeStatus};
use openmosix_store::History;
use openmosix_store::store::{EventIn, ProcIn, Store, Tick};
use openmosix_testbed::fixtures::proc_in;

const T0: i64 = 1_000_000;
const MIB: u64 = 1 << 20;

fn info(id: u32, load: f64, mem_mib: u64) -> NodeInfo {
    NodeInfo {
        id,
        cpus: id,
        speed: 1000 * id,
        load,
        util: load / 4.0,
        mem: mem_mib * MIB,
        rmem: mem_mib * MIB / 2,
        tmem: 4096 * MIB,
        status: NodeStatus::Up,
    }
}

fn proc(pid: i32, home: u32, home_pid: i32, cmd: &str) -> ProcIn {
    ProcIn {
        home_pid,
        ..proc_in(pid, home, 'R', cmd)
    }
}

/// Node 1: load = seconds since T0 (0..=99), mem 1000 + s MiB. Node 2: load 50, mem
/// 2000 MiB. Node 3: like node 2 but down (no samples) from T0+40 to T0+59.
/// Process lists: at T0 on every node; at T0+50 node 1 changes (job 77 migrated in from
/// node 2, where it was pid 500).
fn fill(path: &std::path::Path) -> Store {
    let mut s = Store::open_file(path).unwrap();
    s.set_nodes(&[(1, "n1".into()), (2, "n2".into()), (3, "n3".into())])
        .unwrap();
    for i in 0..100 {
        let t = T0 + i;
        let mut tick = Tick {
            time: t,
            samples: vec![
                (1, info(1, i as f64, 1000 + i as u64)),
                (2, info(2, 50.0, 2000)),
            ],
            ..Tick::default()
        };
        if !(40..60).contains(&i) {
            tick.samples.push((3, info(3, 50.0, 2000)));
        }
        if i == 0 {
            tick.procs = vec![
                (1, vec![proc(10, 1, 10, "init"), proc(11, 1, 11, "sleep 1")]),
                (2, vec![proc(10, 2, 10, "init"), proc(500, 2, 500, "job")]),
                (3, vec![proc(10, 3, 10, "init")]),
            ];
        }
        if i == 50 {
            tick.procs = vec![
                (
                    1,
                    vec![
                        proc(10, 1, 10, "init"),
                        proc(11, 1, 11, "sleep 1"),
                        proc(77, 2, 500, "job"),
                    ],
                ),
                (2, vec![proc(10, 2, 10, "init")]),
            ];
            tick.events.push(EventIn {
                node: 1,
                time_ms: t * 1000 + 250,
                kind: "migrate_in".into(),
                text: "process 77 arrived from node 2 (home node 2, pid 500 there)".into(),
                pid: Some(77),
                seq: Some(1),
            });
        }
        if i == 40 {
            tick.events.push(EventIn {
                node: 3,
                time_ms: t * 1000,
                kind: "down".into(),
                text: "node 3 is down: x".into(),
                pid: None,
                seq: None,
            });
        }
        s.write_tick(&tick).unwrap();
    }
    for (t, note) in [(T0 + 10, "start"), (T0 + 90, "end")] {
        s.connection()
            .execute(
                "INSERT INTO checkpoints (time_ms, note) VALUES (?1, ?2)",
                rusqlite::params![t * 1000, note],
            )
            .unwrap();
    }
    s
}

#[test]
fn nodes_range_and_samples_with_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let _s = fill(&path);
    let h = History::open(&path).unwrap();
    let ids: Vec<u32> = h.nodes().unwrap().iter().map(|n| n.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(h.nodes().unwrap()[0].address, "n1");
    assert_eq!(h.range().unwrap(), Some((T0, T0 + 99)));
    let s = h.samples(1, T0 + 10, T0 + 19).unwrap();
    assert_eq!(s.len(), 10);
    assert_eq!((s[0].time, s[0].load), (T0 + 10, 10.0));
    assert_eq!(s[9].mem, 1019 * MIB);
    assert_eq!(s[9].rmem, (1019 * MIB / 2 + MIB / 2) / MIB * MIB);
    assert_eq!(s[9].util, (19.0f64 / 4.0).round());
    let gap = h.samples(3, T0 + 30, T0 + 69).unwrap();
    assert_eq!(gap.len(), 20);
    assert!(gap.iter().all(|x| !(T0 + 40..T0 + 60).contains(&x.time)));
    assert_eq!(h.samples_all(T0, T0 + 99).unwrap()[&3].len(), 80);
}

#[test]
fn aggregate_stays_within_the_bucket_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let _s = fill(&path);
    let h = History::open(&path).unwrap();
    let b = h.aggregate(1, T0, T0 + 99, 10).unwrap();
    assert_eq!(b.len(), 10);
    assert_eq!(b[3].time, T0 + 30);
    assert_eq!(b[3].width, 10);
    assert_eq!(b[3].count, 10);
    assert_eq!(
        (b[3].min_load, b[3].max_load, b[3].mean_load),
        (30.0, 39.0, 34.5)
    );
    assert_eq!((b[3].min_mem, b[3].max_mem), (1030 * MIB, 1039 * MIB));
    assert!((b[3].mean_mem - 1034.5 * MIB as f64).abs() < 1.0);
    for n in [1, 3, 7, 99, 100, 1000] {
        let b = h.aggregate(1, T0, T0 + 99, n).unwrap();
        assert!(b.len() <= n, "{n}: {}", b.len());
        assert_eq!(b.iter().map(|x| x.count).sum::<u32>(), 100);
        let lo = b.iter().map(|x| x.min_load).fold(f64::MAX, f64::min);
        let hi = b.iter().map(|x| x.max_load).fold(f64::MIN, f64::max);
        assert_eq!((lo, hi), (0.0, 99.0));
    }
    // The gap stays a gap: no bucket in it.
    let b = h.aggregate(3, T0, T0 + 99, 10).unwrap();
    assert_eq!(b.len(), 8);
    assert!(b.iter().all(|x| x.time != T0 + 40 && x.time != T0 + 50));
    assert!(h.aggregate(1, T0 + 5, T0 + 4, 10).unwrap().is_empty());
    let all = h.aggregate_all(T0, T0 + 99, 5).unwrap();
    assert_eq!(all.len(), 3);
}

#[test]
fn stats_match_plain_sql() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let _s = fill(&path);
    let h = History::open(&path).unwrap();
    let one = h.stats(Some(1), T0, T0 + 99).unwrap().unwrap();
    assert_eq!(one.samples, 100);
    assert_eq!(
        (one.min_load, one.max_load, one.mean_load),
        (0.0, 99.0, 49.5)
    );
    assert_eq!((one.min_mem, one.max_mem), (1000 * MIB, 1099 * MIB));
    assert_eq!((one.cpus, one.speed, one.tmem), (1, 1000, 4096 * MIB));

    let all = h.stats(None, T0 + 20, T0 + 79).unwrap().unwrap();
    let (n, min, max, avg, mavg): (i64, f64, f64, f64, f64) = h
        .connection()
        .query_row(
            "SELECT count(*), min(load), max(load), avg(load), avg(mem) FROM samples_all
             WHERE time BETWEEN ?1 AND ?2",
            [T0 + 20, T0 + 79],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(all.samples, u64::try_from(n).unwrap());
    assert_eq!((all.min_load, all.max_load), (min, max));
    assert!((all.mean_load - avg).abs() < 1e-9);
    assert!((all.mean_mem - mavg * MIB as f64).abs() < 1.0);
    assert_eq!((all.cpus, all.speed), (6, 6000));
    assert_eq!(all.tmem, 3 * 4096 * MIB);
    assert!(h.stats(Some(1), T0 + 500, T0 + 600).unwrap().is_none());
}

#[test]
fn checkpoints_events_and_static_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let _s = fill(&path);
    let h = History::open(&path).unwrap();
    let c = h.checkpoints(T0, T0 + 99).unwrap();
    assert_eq!(
        c.iter().map(|c| c.note.as_str()).collect::<Vec<_>>(),
        ["start", "end"]
    );
    assert_eq!(c[0].time_ms, (T0 + 10) * 1000);
    assert_eq!(h.checkpoints(T0 + 11, T0 + 99).unwrap().len(), 1);
    let e = h.events(T0, T0 + 99).unwrap();
    assert_eq!(
        e.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["down", "migrate_in"]
    );
    assert_eq!((e[1].node, e[1].pid), (1, Some(77)));
    assert!(h.events(T0 + 51, T0 + 99).unwrap().is_empty());
    let st = h.node_static(2, T0 + 50).unwrap().unwrap();
    assert_eq!((st.cpus, st.speed, st.status.as_str()), (2, 2000, "up"));
    assert_eq!(h.node_statics(2, T0, T0 + 99).unwrap().len(), 1);
    assert_eq!(h.snapshot_times(T0, T0 + 99).unwrap(), [T0, T0 + 50]);
}

#[test]
fn procs_at_and_where_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let _s = fill(&path);
    let h = History::open(&path).unwrap();
    let at = |t: i64| -> Vec<(u32, i32)> {
        h.procs_at(t)
            .unwrap()
            .iter()
            .map(|p| (p.node, p.pid))
            .collect()
    };
    assert_eq!(at(T0 + 5), [(1, 10), (1, 11), (2, 10), (2, 500), (3, 10)]);
    // Node 3 is down at T0+45: none of its processes are shown.
    assert_eq!(at(T0 + 45), [(1, 10), (1, 11), (2, 10), (2, 500)]);
    assert_eq!(at(T0 + 55), [(1, 10), (1, 11), (1, 77), (2, 10)]);
    assert_eq!(at(T0 + 70), [(1, 10), (1, 11), (1, 77), (2, 10), (3, 10)]);
    assert!(at(T0 - 1).is_empty());
    let p = h.procs_at(T0 + 55).unwrap();
    let job = p.iter().find(|p| p.pid == 77).unwrap();
    assert_eq!(
        (
            job.time,
            job.home,
            job.home_pid,
            job.state,
            job.cmdline.as_str()
        ),
        (T0 + 50, 2, 500, 'R', "job")
    );
    // Pid 500 of node 2: at home before, on node 1 as 77 after the migration.
    let before = h.where_was(500, T0 + 20).unwrap();
    assert_eq!(
        before.iter().map(|p| (p.node, p.pid)).collect::<Vec<_>>(),
        [(2, 500)]
    );
    let after = h.where_was(500, T0 + 60).unwrap();
    assert_eq!(
        after.iter().map(|p| (p.node, p.pid)).collect::<Vec<_>>(),
        [(1, 77)]
    );
    assert!(h.where_was(4242, T0 + 60).unwrap().is_empty());
}

#[test]
fn reading_while_writing_and_following_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("history.db");
    let mut s = Store::open_live(&link).unwrap();
    s.set_nodes(&[(1, "n1".into())]).unwrap();
    let tick = |t: i64| Tick {
        time: t,
        samples: vec![(1, info(1, 1.0, 100))],
        ..Tick::default()
    };
    s.write_tick(&tick(T0)).unwrap();
    let h = History::open(&link).unwrap();
    assert_eq!(h.file(), std::fs::canonicalize(s.file()).unwrap());
    let v = h.data_version().unwrap();
    assert_eq!(h.samples(1, T0, T0 + 10).unwrap().len(), 1);
    s.write_tick(&tick(T0 + 1)).unwrap();
    assert_ne!(h.data_version().unwrap(), v);
    assert_eq!(h.samples(1, T0, T0 + 10).unwrap().len(), 2);
    assert!(h.is_current());
    let (_s2, saved) = s.rotate().unwrap();
    assert!(!h.is_current());
    // The reader keeps its (saved) file and its rows.
    assert_eq!(h.file(), std::fs::canonicalize(saved).unwrap());
    assert_eq!(h.samples(1, T0, T0 + 10).unwrap().len(), 2);
    let fresh = History::open(&link).unwrap();
    assert!(fresh.samples(1, T0, T0 + 10).unwrap().is_empty());
    assert_eq!(fresh.nodes().unwrap().len(), 1);
}

#[test]
fn refuses_files_that_are_not_histories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("CREATE TABLE t (a);").unwrap();
    drop(c);
    let err = History::open(&path).unwrap_err().to_string();
    assert!(err.contains("not an openmosixcollector database"), "{err}");
    assert!(History::open(&dir.path().join("missing.db")).is_err());
}
