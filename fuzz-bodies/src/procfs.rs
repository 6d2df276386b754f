//! The /proc parsers, fed arbitrary bytes as the files of a fixture /proc tree (the way
//! the agent reads them) and, where there is one, through the parser that takes text.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};

use openmosix_agent::backend::cantmove::{
    Tables, parse_locks, parse_unix, stream_contains, uses_sysv_shm,
};
use openmosix_agent::backend::procfs::{ProcFs, parse_stat};
use tempfile::TempDir;

thread_local! {
    /// One fixture tree a thread, a folder in it for each target.
    static TREES: RefCell<Option<TempDir>> = const { RefCell::new(None) };
}

/// A fixture /proc for target `name` holding `files` (path relative to the root,
/// contents) as they are now; files that other calls wrote stay.
fn tree(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let root = TREES.with(|t| {
        let mut t = t.borrow_mut();
        let dir = t.get_or_insert_with(|| TempDir::new().expect("a temporary folder"));
        dir.path().join(name)
    });
    for (rel, contents) in files {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("a folder of the fixture tree");
        }
        std::fs::write(&path, contents).expect("a file of the fixture tree");
    }
    root
}

/// `/proc/PID/stat`: the agent reads a process exactly when the line parses, and then
/// gives what the line says (its resident size in bytes, not pages).
pub fn proc_stat(data: &[u8]) {
    let root = tree("stat", &[("1/stat", data)]);
    let parsed = parse_stat(data);
    if let Some(st) = &parsed {
        let open = data
            .iter()
            .position(|&b| b == b'(')
            .expect("a parsed stat has a (");
        let close = data
            .iter()
            .rposition(|&b| b == b')')
            .expect("a parsed stat has a )");
        assert_eq!(st.info.comm.as_bytes(), &data[open + 1..close], "comm");
    }
    match (ProcFs::new(&root).stat(1), parsed) {
        (Ok(read), Some(parsed)) => {
            assert_eq!(read.info.pid, parsed.info.pid);
            assert_eq!(read.starttime, parsed.starttime);
            assert_eq!(
                read.info.rss,
                parsed.info.rss.saturating_mul(4096),
                "rss in bytes"
            );
        }
        (Err(e), None) => assert!(!e.message.trim().is_empty(), "an error without words"),
        (read, parsed) => panic!("the agent read {read:?} where the line parses to {parsed:?}"),
    }
}

/// A /proc/PID/stat line of a sleeping `sh`.
const STAT: &[u8] = b"1 (sh) S 0 1 1 0 -1 4194560 600 0 0 0 1 2 0 0 20 0 1 0 31 2822144 220 \
18446744073709551615 1 1 0 0 0 0 0 0 65538 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

/// `/proc/PID/status` beside a good stat line: the process is read whatever the status
/// holds, with a uid and tracer taken from it or left at 0.
pub fn proc_status(data: &[u8]) {
    let root = tree("status", &[("1/stat", STAT), ("1/status", data)]);
    let st = ProcFs::new(&root)
        .stat(1)
        .unwrap_or_else(|e| panic!("a good stat with this status is refused: {e}"));
    assert_eq!((st.info.pid, st.info.comm.as_bytes()), (1, &b"sh"[..]));
    let text = String::from_utf8_lossy(data);
    if !text.contains("Uid:") {
        assert_eq!(st.info.uid, 0);
    }
    if !text.contains("TracerPid:") {
        assert_eq!(st.tracer_pid, 0);
    }
}

/// Gives its bytes in reads of 1, 2, 3, 5, 8 and 13 bytes, over and over.
struct Chunky<'a> {
    data: &'a [u8],
    turn: usize,
}

impl Read for Chunky<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        const SIZES: [usize; 6] = [1, 2, 3, 5, 8, 13];
        let n = SIZES[self.turn % SIZES.len()]
            .min(buf.len())
            .min(self.data.len());
        self.turn += 1;
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// `/proc/PID/maps`: SysV shared memory is found exactly when ` /SYSV` occurs in the
/// file, read whole or in small pieces (a match across two reads counts).
pub fn proc_maps(data: &[u8]) {
    const NEEDLE: &[u8] = b" /SYSV";
    let want = data.windows(NEEDLE.len()).any(|w| w == NEEDLE);
    let root = tree("maps", &[("1/maps", data)]);
    let procfs = ProcFs::new(&root);
    assert_eq!(
        uses_sysv_shm(&procfs, 1, &Tables::default()),
        want,
        "from the file"
    );
    let chunky = Chunky { data, turn: 0 };
    assert_eq!(stream_contains(chunky, NEEDLE), want, "in small reads");
}

/// The node-wide tables of a fixture /proc at `root`.
fn tables(root: &Path) -> Tables {
    Tables::read(&ProcFs::new(root))
}

/// `/proc/net/unix`: read line by line from the file, the connected sockets are those the
/// text parser finds in the whole text.
pub fn proc_net_unix(data: &[u8]) {
    let root = tree("unix", &[("net/unix", data)]);
    let want = parse_unix(&String::from_utf8_lossy(data));
    assert_eq!(tables(&root).unix_connected, want);
}

/// `/proc/locks`: read line by line from the file, the lock holders are those the text
/// parser finds in the whole text, and every pid is a real one.
pub fn proc_locks(data: &[u8]) {
    let root = tree("locks", &[("locks", data)]);
    let (pids, ofd) = parse_locks(&String::from_utf8_lossy(data));
    assert!(
        pids.iter().all(|&p| p > 0),
        "a lock holder pid that is no pid"
    );
    let t = tables(&root);
    assert_eq!((t.lock_pids, t.ofd_files), (pids, ofd));
}
