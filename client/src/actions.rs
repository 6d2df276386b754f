//! What a window or the terminal does to a process of a node, each answered with a
//! sentence saying what was done (or every failure): signal, renice, lock and unlock.

use openmosix_hpc::model::{NodeId, ProcInfo, Signal};
use openmosix_hpc::protocol::Request;

use crate::{ClientError, ClusterHandle};

/// Sends `signal` to each of `pids` of `node`; a sentence saying what was sent, or every
/// failure joined.
pub async fn signal(
    handle: &ClusterHandle,
    node: NodeId,
    pids: &[i32],
    signal: Signal,
) -> Result<String, String> {
    let mut failed = Vec::new();
    for &pid in pids {
        if let Err(e) = handle
            .request::<serde_json::Value>(node, Request::Signal { pid, signal })
            .await
        {
            failed.push(e.to_string());
        }
    }
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    let name = format!("{signal:?}").to_uppercase();
    Ok(format!(
        "sent {name} to {} process(es) on node {node}",
        pids.len()
    ))
}

/// Sets the nice value of `pid` on `node`; the sentence saying so.
pub async fn renice(
    handle: &ClusterHandle,
    node: NodeId,
    pid: i32,
    nice: i32,
) -> Result<String, ClientError> {
    handle
        .request::<serde_json::Value>(node, Request::Renice { pid, nice })
        .await
        .map(|_| format!("process {pid} on node {node} now has nice {nice}"))
}

/// Locks `pid` to `node` or unlocks it (/proc/PID/lock); the sentence saying so.
pub async fn set_lock(
    handle: &ClusterHandle,
    node: NodeId,
    pid: i32,
    lock: bool,
) -> Result<String, ClientError> {
    let p: ProcInfo = handle.request(node, Request::SetLock { pid, lock }).await?;
    Ok(if p.lock {
        format!("process {pid} on node {node} is locked: it will not migrate")
    } else {
        format!("process {pid} on node {node} is unlocked")
    })
}
