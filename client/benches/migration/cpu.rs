//! The workstation's CPU time spent on a migration: this bench process (every thread,
//! user + system), the children it has waited for (as RUSAGE_CHILDREN counts them), and
//! the testbed's ssh processes still running — the SSH masters above all, which carry
//! and encrypt every relayed byte: they daemonize, so no rusage of ours counts them.
//! All from /proc, in clock ticks (`getconf CLK_TCK`, 10 ms on Linux).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// CPU ticks at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// This process and its waited-for children.
    own: u64,
    /// Each ssh process of the testbed that runs, by pid.
    ssh: HashMap<u32, u64>,
}

/// Measures the workstation's CPU for one testbed.
#[derive(Debug)]
pub struct Meter {
    /// The testbed's ssh config, which every ssh of its masters names (`-F`).
    ssh_config: String,
    tick: Duration,
}

impl Meter {
    pub fn new(ssh_config: &Path) -> Meter {
        let hz = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&hz| hz > 0)
            .unwrap_or(100);
        Meter {
            ssh_config: ssh_config.to_string_lossy().into_owned(),
            tick: Duration::from_secs(1) / u32::try_from(hz).unwrap_or(100),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let me = std::process::id();
        let own = stat(me).map_or(0, |s| s.utime + s.stime + s.cutime + s.cstime);
        let mut ssh = HashMap::new();
        for pid in pids() {
            if pid == me || !self.is_testbed_ssh(pid, me) {
                continue;
            }
            if let Some(s) = stat(pid) {
                ssh.insert(pid, s.utime + s.stime);
            }
        }
        Snapshot { own, ssh }
    }

    /// CPU time from `before` to `after`. An ssh that ended in between is lost unless it
    /// was a child of ours (then it is in `own`): the masters outlive every move.
    pub fn between(&self, before: &Snapshot, after: &Snapshot) -> Duration {
        let own = after.own.saturating_sub(before.own);
        let ssh: u64 = after
            .ssh
            .iter()
            .map(|(pid, t)| t.saturating_sub(before.ssh.get(pid).copied().unwrap_or(0)))
            .sum();
        self.tick * u32::try_from(own + ssh).unwrap_or(u32::MAX)
    }

    /// An `ssh` that is our child (a channel) or names the testbed's ssh config (a master).
    fn is_testbed_ssh(&self, pid: u32, me: u32) -> bool {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() != "ssh" {
            return false;
        }
        if stat(pid).is_some_and(|s| s.ppid == me) {
            return true;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmdline
            .split(|&b| b == 0)
            .any(|word| word == self.ssh_config.as_bytes())
    }
}

/// The fields of /proc/PID/stat that count.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: u32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "pid (comm) ": state is field 3, so field N is at index N - 3.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        ppid: u32::try_from(field(4)?).ok()?,
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
    })
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
