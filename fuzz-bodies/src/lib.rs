//! The bodies of the fuzz targets of `fuzz/` (docs/fuzzing.md): each takes the fuzzer's
//! bytes, feeds them to one parser of the project and checks the parser's contract beyond
//! "no panic" (round trips, agreement of two readings of the same file, the image stream
//! staying in its folder). A broken contract panics, which is what a fuzzer reports.
//!
//! The cargo-fuzz targets (nightly, `scripts/fuzz.sh`) are one line each calling a body
//! here, and the replay test `tests/replay.rs` (stable, run by `cargo test`) feeds every
//! file of `fuzz/corpus/TARGET/` and `fuzz/regressions/TARGET/` to the same body: the
//! fuzzer and CI run identical code.

mod delta;
mod files;
mod procfs;
mod protocol;
mod stream;

pub use delta::procs_delta;
pub use files::{cluster_file, discovery_datagram, openmosix_map, packed_block};
pub use procfs::{proc_locks, proc_maps, proc_net_unix, proc_stat, proc_status};
pub use protocol::{agent_request, client_reply};
pub use stream::image_stream;

/// A fuzz target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the file `fuzz/fuzz_targets/NAME.rs`, the folders
/// `fuzz/corpus/NAME/` and `fuzz/regressions/NAME/`) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("agent_request", agent_request),
    ("client_reply", client_reply),
    ("openmosix_map", openmosix_map),
    ("cluster_file", cluster_file),
    ("discovery_datagram", discovery_datagram),
    ("packed_block", packed_block),
    ("proc_stat", proc_stat),
    ("proc_status", proc_status),
    ("proc_maps", proc_maps),
    ("proc_net_unix", proc_net_unix),
    ("proc_locks", proc_locks),
    ("image_stream", image_stream),
    ("procs_delta", procs_delta),
];
