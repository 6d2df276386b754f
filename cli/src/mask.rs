//! `openmosix mask`, `lock` and `unlock`: the cluster mask of a process (HOWTO 8.4) and
//! its /proc/PID/lock (table 8-5).

use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::ValueEnum;
use openmosix_hpc::model::{MigMask, NodeId, ProcInfo};
use openmosix_hpc::protocol::Request;

use crate::commands::Ctx;
use crate::output;

/// What `openmosix mask` does with the nodes it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MaskMode {
    /// The process may go only to the nodes given (migpolicy 1 = ALLOW).
    Allow,
    /// The process may go anywhere but to the nodes given (migpolicy 0 = DENY).
    Deny,
    /// No filter: the process may go anywhere (migfilter 0).
    Off,
}

/// The highest node a mask can name: `mignodes` has 64 bits, bit PE-1 for node PE.
const MAX_MASK_NODE: NodeId = 64;

/// Parses node ids and ranges (`1 3 5`, `2-4`, also `1,3`) into the `mignodes` bits.
pub fn node_bits(words: &[String]) -> Result<u64> {
    let id = |s: &str| -> Result<NodeId> {
        let n: NodeId = s.trim().parse().map_err(|_| {
            anyhow!("{s:?} is not a node id (use ids like 1 3 5 or ranges like 2-4)")
        })?;
        if !(1..=MAX_MASK_NODE).contains(&n) {
            bail!("node {n} is outside 1..{MAX_MASK_NODE}: a cluster mask names nodes 1 to 64");
        }
        Ok(n)
    };
    let mut bits = 0u64;
    for part in words
        .iter()
        .flat_map(|w| w.split(','))
        .filter(|p| !p.is_empty())
    {
        let (from, to) = match part.split_once('-') {
            Some((a, b)) => (id(a)?, id(b)?),
            None => {
                let n = id(part)?;
                (n, n)
            }
        };
        if from > to {
            bail!("node range {part} is backwards");
        }
        for n in from..=to {
            bits |= 1u64 << (n - 1);
        }
    }
    Ok(bits)
}

/// The mask `openmosix mask … MODE NODES…` sets.
pub fn mask_for(mode: MaskMode, nodes: &[String]) -> Result<MigMask> {
    match mode {
        MaskMode::Off => {
            if !nodes.is_empty() {
                bail!("mask off takes no nodes");
            }
            Ok(MigMask::default())
        }
        MaskMode::Allow | MaskMode::Deny => {
            if nodes.is_empty() {
                bail!("mask allow and mask deny need at least one node");
            }
            Ok(MigMask {
                migfilter: true,
                mignodes: node_bits(nodes)?,
                migpolicy: u8::from(mode == MaskMode::Allow),
            })
        }
    }
}

/// `openmosix mask NODE PID allow|deny NODES… | off`.
pub async fn mask(
    ctx: &Ctx,
    node: NodeId,
    pid: i32,
    mode: MaskMode,
    nodes: &[String],
) -> Result<ExitCode> {
    let mask = mask_for(mode, nodes)?;
    change(ctx, node, Request::SetMask { pid, mask }, || {
        format!("mask of process {pid} on node {node}")
    })
    .await
}

/// `openmosix lock NODE PID` and `openmosix unlock NODE PID`.
pub async fn lock(ctx: &Ctx, node: NodeId, pid: i32, lock: bool) -> Result<ExitCode> {
    let verb = if lock { "lock" } else { "unlock" };
    change(ctx, node, Request::SetLock { pid, lock }, || {
        format!("{verb} process {pid} on node {node}")
    })
    .await
}

/// Changes one process; with --json prints it as changed, as `ps --json` does.
async fn change(
    ctx: &Ctx,
    node: NodeId,
    request: Request,
    what: impl FnOnce() -> String,
) -> Result<ExitCode> {
    let conn = ctx.conn(node).await?;
    let p: ProcInfo = conn.request(request).await.with_context(what)?;
    if ctx.json {
        output::procs(&[(node, p)], true);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn nodes_and_ranges() {
        assert_eq!(node_bits(&words(&["1", "3", "5"])).unwrap(), 0b10101);
        assert_eq!(node_bits(&words(&["2-4"])).unwrap(), 0b1110);
        assert_eq!(
            node_bits(&words(&["1,6-7", "64"])).unwrap(),
            0b110_0001 | 1 << 63
        );
        for bad in ["0", "65", "x", "4-2", "1-"] {
            assert!(node_bits(&words(&[bad])).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes() {
        let allow = mask_for(MaskMode::Allow, &words(&["1"])).unwrap();
        assert_eq!(
            allow,
            MigMask {
                migfilter: true,
                mignodes: 1,
                migpolicy: 1
            }
        );
        assert!(allow.allows(1) && !allow.allows(3));
        let deny = mask_for(MaskMode::Deny, &words(&["3"])).unwrap();
        assert_eq!(
            (deny.migfilter, deny.mignodes, deny.migpolicy),
            (true, 4, 0)
        );
        assert!(!deny.allows(3) && deny.allows(1));
        assert_eq!(mask_for(MaskMode::Off, &[]).unwrap(), MigMask::default());
        assert!(mask_for(MaskMode::Off, &words(&["1"])).is_err());
        assert!(mask_for(MaskMode::Allow, &[]).is_err());
    }
}
