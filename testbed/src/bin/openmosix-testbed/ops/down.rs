//! `down`: kills a testbed's processes and removes its namespaces, interfaces and state
//! folder; `down --all` every testbed on the machine.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::network;
use crate::layout::{Layout, MAX_NODES, STATE_ROOT, check_name};
use crate::sys::{self, IP, KILL};

/// `down --name NAME`: removes everything of that testbed; nothing there is fine.
pub fn down_one(name: &str) -> Result<()> {
    check_name(name)?;
    sys::require_root()?;
    sys::require_tools(&[IP, KILL])?;
    let l = Layout {
        name: name.to_owned(),
        net: 0,
    };
    let namespaces: BTreeSet<String> = sys::netns_list()?.into_iter().collect();
    let ours: Vec<String> = network::node_numbers(&l, &namespaces)
        .into_iter()
        .map(|i| l.netns(i))
        .collect();
    // The nodes `up` recorded, and any namespace of this name beyond them.
    let recorded = Layout::load(name).map_or(0, |(_, meta)| meta.nodes);
    let last = network::node_numbers(&l, &namespaces)
        .last()
        .copied()
        .unwrap_or(0)
        .max(recorded)
        .max(MAX_NODES);

    // Kill every process of every node, then wait until they are gone.
    let all = || {
        let mut pids: Vec<u32> = sys::pids_by_netns(&ours).into_values().flatten().collect();
        pids.extend((1..=last).filter_map(|i| recorded_outer_pid(&l, i)));
        pids
    };
    let (_, gone) = sys::kill9_until_gone(Duration::from_secs(5), all);
    if !gone {
        eprintln!(
            "openmosix-testbed: warning: processes of {name} still alive: {:?}",
            all()
        );
    }
    network::remove(&l, &namespaces)?;
    // The agents' images in memory (root's folder of each node's state folder).
    for i in 1..=last {
        let memory = openmosix_hpc::memory_images::default_dir(&l.node_state(i), 0);
        if memory.exists() {
            fs::remove_dir_all(&memory)
                .with_context(|| format!("removing {}", memory.display()))?;
        }
    }
    let dir = l.state_dir();
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

/// The recorded outer pid of node i, if that process still is the node's `unshare`.
fn recorded_outer_pid(l: &Layout, i: u32) -> Option<u32> {
    let pid: u32 = fs::read_to_string(l.node_pid(i))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let argv = sys::cmdline(pid);
    let ours =
        argv.iter().any(|a| a.ends_with("unshare")) && argv.iter().any(|a| a == "--kill-child");
    (ours && sys::alive(pid)).then_some(pid)
}

/// Names of every testbed on this machine: state folders and node namespaces.
fn all_names() -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    if let Ok(entries) = fs::read_dir(STATE_ROOT) {
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str()
                && check_name(name).is_ok()
                && entry.path().is_dir()
            {
                names.insert(name.to_owned());
            }
        }
    }
    for ns in sys::netns_list()? {
        if let Some((name, node)) = ns.rsplit_once("-n")
            && check_name(name).is_ok()
            && node
                .parse::<u32>()
                .is_ok_and(|n| (1..=MAX_NODES).contains(&n))
        {
            names.insert(name.to_owned());
        }
    }
    Ok(names)
}

/// `down --all`.
pub fn down_all() -> Result<()> {
    sys::require_root()?;
    sys::require_tools(&[IP, KILL])?;
    for name in all_names()? {
        eprintln!("openmosix-testbed: removing {name}");
        down_one(&name).with_context(|| format!("removing testbed {name:?}"))?;
    }
    let _ = fs::remove_dir(STATE_ROOT); // only if empty
    Ok(())
}
