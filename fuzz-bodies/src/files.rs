//! openmosix.map, cluster files, the discovery datagram and the store's packed blocks.

use std::path::Path;

use openmosix_hpc::discovery::packet::{Announcement, MAX_DATAGRAM};
use openmosix_hpc::map::{Cluster, parse_map, render_map, render_showmap};
use openmosix_store::block::{self, Row};

/// An openmosix.map (files are read as UTF-8 text): a parsed map has sorted, distinct ids
/// and an address for each node, renders to a map that parses to the same nodes and
/// makes a cluster of them; a refused one names a line of the text.
pub fn openmosix_map(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_map(text) {
        Ok(nodes) => {
            assert!(
                nodes.windows(2).all(|w| w[0].id < w[1].id),
                "ids not sorted"
            );
            assert!(
                nodes.iter().all(|n| !n.addresses.is_empty()),
                "a node without address"
            );
            let rendered = render_map(&nodes);
            let back = parse_map(&rendered)
                .unwrap_or_else(|e| panic!("the rendered map {rendered:?} does not parse: {e}"));
            assert_eq!(back, nodes, "round trip through {rendered:?}");
            let _ = render_showmap(nodes.first().map(|n| n.id), &nodes);
            let cluster = Cluster::from_map(&nodes);
            assert!(cluster.nodes.len() <= nodes.len());
        }
        Err(e) => {
            let line = e.line().expect("a map error names its line");
            assert!(
                line >= 1 && line <= text.lines().count(),
                "line {line} of the text"
            );
            assert!(!e.to_string().trim().is_empty());
        }
    }
}

/// A cluster file (TOML): a parsed cluster writes itself out as a file that reads back
/// to the same cluster; a refused one says why.
pub fn cluster_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A made-up absolute name: a relative ssh_config is taken relative to its folder.
    let path = Path::new("/fuzz/cluster.toml");
    match Cluster::from_text(path, text) {
        Ok(cluster) => {
            let written = cluster.to_toml();
            let back = Cluster::from_text(path, &written).unwrap_or_else(|e| {
                panic!("the written cluster file {written:?} does not read back: {e}")
            });
            assert_eq!(back, cluster, "round trip through {written:?}");
            assert!(
                cluster.nodes.windows(2).all(|w| w[0].id < w[1].id),
                "ids not sorted"
            );
        }
        Err(e) => assert!(!e.to_string().trim().is_empty(), "an error without words"),
    }
}

/// The discovery datagram: a decoded announcement re-encodes to one that decodes to the
/// same, and its hold is within the listener's bounds.
pub fn discovery_datagram(data: &[u8]) {
    match Announcement::decode(data) {
        Ok(a) => {
            assert!(data.len() <= MAX_DATAGRAM);
            assert!((1..=65535).contains(&a.id), "id {}", a.id);
            let hold = a.hold();
            assert!(
                hold.as_millis() >= 500 && hold.as_secs() <= 60,
                "hold {hold:?}"
            );
            let bytes = a.encode();
            let back = Announcement::decode(&bytes)
                .unwrap_or_else(|e| panic!("{a:?} encoded as {bytes:?} does not decode: {e}"));
            assert_eq!(back, a);
        }
        Err(e) => assert!(!e.trim().is_empty(), "an error without words"),
    }
}

/// Row times worth trying: ordinary ones and the ends of the range.
const TIMES: [i64; 8] = [
    1_700_000_000,
    0,
    -1,
    1,
    i64::MAX,
    i64::MAX - 600,
    i64::MIN,
    i64::MIN + 1,
];

/// A packed block: byte 0 is the row's count, byte 1 picks its time, the rest is the
/// blob. A decoded block has that many samples, from that time on, increasing, and packs
/// again (no longer than the blob) to the same samples. Then the bytes read as samples
/// (8 bytes a column, times made increasing) pack and unpack to themselves.
pub fn packed_block(data: &[u8]) {
    let [count, pick, blob @ ..] = data else {
        return;
    };
    let count = i64::from(*count);
    let time = TIMES[usize::from(*pick) % TIMES.len()];
    if let Ok(rows) = block::decode(time, count, blob) {
        assert_eq!(i64::try_from(rows.len()).ok(), Some(count));
        assert_eq!(rows[0].time, time);
        assert!(
            rows.windows(2).all(|w| w[0].time < w[1].time),
            "times do not increase"
        );
        let packed = block::encode(&rows);
        assert!(packed.len() <= blob.len() + 1, "packing grew the blob");
        assert_eq!(block::decode(time, count, &packed).as_ref(), Ok(&rows));
    }

    let words: Vec<i64> = blob
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let mut rows: Vec<Row> = Vec::new();
    for w in words.chunks_exact(5) {
        let time = match rows.last() {
            None => w[0],
            Some(last) => match last.time.checked_add(1 + (w[0] & 0xffff)) {
                Some(t) => t,
                None => break,
            },
        };
        rows.push(Row {
            time,
            load: w[1],
            util: w[2],
            mem: w[3],
            rmem: w[4],
        });
    }
    if let Some(first) = rows.first() {
        let n = i64::try_from(rows.len()).expect("a small count");
        let packed = block::encode(&rows);
        assert_eq!(block::decode(first.time, n, &packed).as_ref(), Ok(&rows));
    }
}
