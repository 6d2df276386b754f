//! What the windows say about a process.

use openmosix_hpc::model::ProcInfo;

/// Why `p` cannot move, in words, when it cannot: the kernel's or agent's reason, else
/// its lock to the home node.
pub fn cannot_move(p: &ProcInfo) -> Option<String> {
    if !p.cantmove.is_empty() {
        Some(p.cantmove.clone())
    } else if p.lock {
        Some("locked to its home node".to_owned())
    } else {
        None
    }
}
