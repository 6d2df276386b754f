//! A record of the frames a window builds, for measuring it from outside
//! (`scripts/startup-time.sh`, docs/benchmarks.md): with `OPENMOSIX_FRAME_LOG=FILE` in its
//! environment, a window appends one line per frame to FILE, written when the frame's UI
//! has been built (before egui tessellates and the GPU, or llvmpipe, paints it):
//!
//! ```text
//! UNIX_NS UP TOTAL X Y EVENTS
//! ```
//!
//! the wall clock in nanoseconds since the Unix epoch, how many of the nodes the frame drew
//! are up (a green lamp) and how many it drew, the pointer's latest position (`- -` when
//! none), and how many input events the frame took in. Without the variable nothing is
//! recorded and this costs one check per frame.

use std::fs::File;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use openmosix_client::{LinkState, NodeView};

/// The environment variable that names the frame log.
pub const FRAME_LOG: &str = "OPENMOSIX_FRAME_LOG";

fn log_file() -> Option<&'static Mutex<File>> {
    static FILE: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os(FRAME_LOG).filter(|p| !p.is_empty())?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .inspect_err(|e| eprintln!("{FRAME_LOG}={}: {e}", path.display()))
            .ok()?;
        Some(Mutex::new(file))
    })
    .as_ref()
}

/// Records the frame being built in `ctx`, which drew `nodes`, when the frame log is on.
pub fn record(ctx: &egui::Context, nodes: &[NodeView]) {
    let Some(file) = log_file() else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let up = nodes.iter().filter(|n| n.state == LinkState::Up).count();
    let (pos, events) = ctx.input(|i| (i.pointer.latest_pos(), i.events.len()));
    let pos = pos.map_or_else(|| "- -".to_owned(), |p| format!("{:.0} {:.0}", p.x, p.y));
    let line = format!("{now} {up} {} {pos} {events}\n", nodes.len());
    if let Ok(mut f) = file.lock() {
        let _ = f.write_all(line.as_bytes());
    }
}
