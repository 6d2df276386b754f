//! `down`: kills a testbed's processes and removes its namespaces, interfaces and state
//! folder; `down --all` every testbed on the machine.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use anyhow::{Context as _, Result};

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

    // Kill every process of every node, then wait until they are gone.
    let victims = |i: u32| -> Vec<u32> {
        let mut pids = if namespaces.contains(&l.netns(i)) {
            sys::netns_pids(&l.netns(i))
        } else {
            Vec::new()
        };
        if let Some(outer) = recorded_outer_pid(&l, i) {
            pids.push(outer);
        }
        pids
    };
    let all = || (1..=MAX_NODES).flat_map(victims).collect::<Vec<u32>>();
    let (_, gone) = sys::kill9_until_gone(Duration::from_secs(5), all);
    if !gone {
        eprintln!(
            "openmosix-testbed: warning: processes of {name} still alive: {:?}",
            all()
        );
    }
    remove_network(&l, &namespaces)?;
    let dir = l.state_dir();
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

/// Deletes the testbed's namespaces, veths and bridge (those that are there).
fn remove_network(l: &Layout, namespaces: &BTreeSet<String>) -> Result<()> {
    for i in 1..=MAX_NODES {
        let ns = l.netns(i);
        if namespaces.contains(&ns) {
            sys::ip(["netns", "delete", &ns])?;
        }
    }
    let links: BTreeSet<String> = sys::links()?.into_iter().collect();
    for i in 1..=MAX_NODES {
        let veth = l.veth(i);
        if links.contains(&veth) {
            // Deleting one end deletes the pair; it may be gone already with its namespace.
            let _ = sys::ip(["link", "delete", &veth]);
        }
    }
    if links.contains(&l.bridge()) {
        sys::ip(["link", "delete", &l.bridge()])?;
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
