//! `openmosixcollector --export`: the command prints what the store's CSV export writes,
//! over a range, and a file that is not a history is one sentence with status 1.

use std::process::Command;

use openmosix_hpc::model::{NodeInfo, NodeStatus};
use openmosix_store::History;
use openmosix_store::store::{Store, Tick};

const BIN: &str = env!("CARGO_BIN_EXE_openmosixcollector");
const T0: i64 = 1_700_000_017;

/// 150 s of two nodes (more than two minutes: packed blocks and plain rows both).
fn write_history(path: &std::path::Path) {
    let mut store = Store::open_file(path).expect("a new history");
    store
        .set_nodes(&[(1, "n1".into()), (2, "n2".into())])
        .expect("nodes written");
    for i in 0..150_i64 {
        let mut tick = Tick {
            time: T0 + i,
            ..Tick::default()
        };
        for node in 1..=2_u32 {
            let step = i.unsigned_abs() * u64::from(node);
            tick.samples.push((
                node,
                NodeInfo {
                    id: node,
                    cpus: 2,
                    speed: 1000,
                    load: (step % 700) as f64,
                    util: (step % 101) as f64,
                    mem: (step % 64) << 20,
                    rmem: (step % 32) << 20,
                    tmem: 64 << 20,
                    status: NodeStatus::Up,
                },
            ));
        }
        store.write_tick(&tick).expect("tick written");
    }
}

#[test]
fn export_prints_the_stores_csv_for_a_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    write_history(&path);
    let (from, to) = (T0 + 50, T0 + 130);
    let mut want = Vec::new();
    let rows = openmosix_store::export::samples_csv(
        &History::open(&path).unwrap(),
        Some(from),
        Some(to),
        &mut want,
    )
    .unwrap();
    assert_eq!(rows, 2 * 81, "two nodes, 81 seconds");

    let out = Command::new(BIN)
        .arg("--export")
        .arg("--db")
        .arg(&path)
        .args(["--from", &from.to_string(), "--to", &to.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(want).unwrap()
    );
}

#[test]
fn export_of_a_file_that_is_not_a_history_is_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    std::fs::write(&other, b"not a database at all, just text").unwrap();
    let out = Command::new(BIN)
        .args(["--export", "--db"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("openmosixcollector: cannot read"), "{err}");
}
