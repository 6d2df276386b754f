//! kill -9 of a writer in the middle of packing, 20 times: the file's integrity_check is
//! ok and every tick is either all there or not there at all (none half-packed).
//!
//! The writer is this test binary run again (`KILL_PACKING_WRITER` set): it writes ticks
//! as fast as it can, each one second later than the one before, so a minute (and a
//! pack) goes by every 60 ticks, a few milliseconds apart.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use openmosix_hpc::model::{NodeInfo, NodeStatus};
use openmosix_store::History;
use openmosix_store::store::{Store, Tick};

const NODES: u32 = 64;
const T0: i64 = 1_800_000_000;
const ENV: &str = "KILL_PACKING_WRITER";

fn info(node: u32, t: i64) -> NodeInfo {
    let x = (t * 7919 + i64::from(node) * 104_729) % 1000;
    NodeInfo {
        id: node,
        cpus: 2,
        speed: 1000,
        load: x as f64,
        util: (x % 101) as f64,
        mem: (2000 + x as u64) << 20,
        rmem: (1000 + x as u64) << 20,
        tmem: 4 << 30,
        status: NodeStatus::Up,
    }
}

/// The writer: goes on from the newest tick in the file until it is killed.
fn write_forever(path: &Path) {
    let mut s = Store::open_file(path).unwrap();
    let next = History::open(path)
        .unwrap()
        .range()
        .unwrap()
        .map_or(T0, |(_, hi)| hi + 1);
    s.set_nodes(
        &(1..=NODES)
            .map(|n| (n, format!("n{n}")))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    println!("ready");
    for t in next.. {
        s.write_tick(&Tick {
            time: t,
            samples: (1..=NODES).map(|n| (n, info(n, t))).collect(),
            ..Tick::default()
        })
        .unwrap();
    }
}

#[test]
fn kill_9_while_packing_leaves_whole_ticks() {
    if let Some(path) = std::env::var_os(ENV) {
        write_forever(Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut packs_seen = 0;
    for round in 0..20u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_9_while_packing_leaves_whole_ticks",
                "--nocapture",
            ])
            .env(ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Wait for "ready", then let it write for 20..400 ms.
        let mut out = child.stdout.take().unwrap();
        let mut buf = [0u8; 64];
        let mut seen = String::new();
        while !seen.contains("ready") {
            let n = std::io::Read::read(&mut out, &mut buf).unwrap();
            assert!(n > 0, "round {round}: the writer ended early");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        std::thread::sleep(Duration::from_millis(20 + (round * 97) % 380));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let c = rusqlite::Connection::open(&path).unwrap();
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
        packs_seen = c
            .query_row("SELECT count(*) FROM sample_blocks", [], |r| r.get(0))
            .unwrap();
        drop(c);
        let h = History::open(&path).unwrap();
        let (lo, hi) = h.range().unwrap().unwrap();
        assert_eq!(lo, T0, "round {round}");
        // Every tick up to the last one is whole: NODES samples at each second.
        let all = h.samples_all(lo, hi).unwrap();
        for n in 1..=NODES {
            let times: Vec<i64> = all[&n].iter().map(|s| s.time).collect();
            assert_eq!(
                times,
                (lo..=hi).collect::<Vec<_>>(),
                "round {round}, node {n}"
            );
            let last = all[&n].last().unwrap();
            assert_eq!(last.load, info(n, hi).load.round(), "round {round}");
        }
    }
    // The writers packed many minutes on the way (so some kills fell into packs).
    assert!(packs_seen > i64::from(NODES) * 20, "{packs_seen} blocks");
}
