//! The outcome of criu's checks, kept in the agent's state folder.
//!
//! Every `openmosix-agent serve` (one per window and node) needs to know whether criu
//! works here, and finding out takes four criu runs, about 80 ms of CPU: at 250 nodes
//! that was most of the CPU an agent's start cost (docs/benchmarks.md, "Start-up of the
//! main window"). What they find out depends only on the criu binary and the running
//! kernel, so the answer is kept with what it depends on (the binary's path, size and
//! modification time, the boot id and kernel release) and asked again when any of it
//! changes: a new criu, a reboot. A file that cannot be read or written only costs the
//! checks.
//!
//! The agents of one machine check one at a time: each holds a lock on the criu binary
//! (flock) while it checks, and reads the kept answer again once it has the lock. Agents
//! started together (a window and the collector, or every node of a testbed, which share
//! one machine and one criu) then do not run their criu checks all at once: on a testbed
//! of 250 nodes, 1000 criu runs at once took the two cores from everything else, the
//! windows' start-up included.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use super::Probe;

/// The file in the state folder.
const FILE: &str = "criu-check.json";

/// What the kept answer is valid for.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Key {
    criu: String,
    size: u64,
    mtime_ns: i128,
    boot_id: String,
    kernel: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    key: Key,
    probe: Probe,
}

/// The checks' outcome for `criu`: kept in `state_dir` when it is still valid, else run
/// and kept.
pub(super) fn probe(criu: &Path, state_dir: &Path) -> std::io::Result<Probe> {
    let Some(key) = key(criu) else {
        return super::probe(criu);
    };
    let file = state_dir.join(FILE);
    if let Some(kept) = kept(&file, &key) {
        return Ok(kept);
    }
    let _turn = one_at_a_time(criu);
    // Another agent of this state folder may have checked while this one waited.
    if let Some(kept) = kept(&file, &key) {
        return Ok(kept);
    }
    let probe = super::probe(criu)?;
    if let Err(e) = keep(
        &file,
        &Kept {
            key,
            probe: probe.clone(),
        },
    ) {
        tracing::debug!("cannot keep criu's checks in {}: {e}", file.display());
    }
    Ok(probe)
}

/// The answer kept in `file`, if it is valid for `key`.
fn kept(file: &Path, key: &Key) -> Option<Probe> {
    std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice::<Kept>(&b).ok())
        .filter(|k| k.key == *key)
        .map(|k| k.probe)
}

/// Waits for this machine's other agents to finish checking `criu`: the lock (flock on
/// the binary) is held until the returned file is dropped. Without it (a binary that
/// cannot be opened or locked) the checks run at once.
fn one_at_a_time(criu: &Path) -> Option<std::fs::File> {
    let file = std::fs::File::open(criu).ok()?;
    file.lock().ok()?;
    Some(file)
}

fn key(criu: &Path) -> Option<Key> {
    let meta = std::fs::metadata(criu).ok()?;
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    Some(Key {
        criu: criu.to_string_lossy().into_owned(),
        size: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        boot_id: read("/proc/sys/kernel/random/boot_id")?,
        kernel: read("/proc/sys/kernel/osrelease")?,
    })
}

/// Writes the file whole or not at all (a temporary file renamed over it), 0600 as the
/// state folder's other files.
fn keep(file: &Path, kept: &Kept) -> std::io::Result<()> {
    let tmp = file.with_extension(format!("json.{}", std::process::id()));
    let text = serde_json::to_vec(kept).map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&text)?;
    drop(f);
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in criu that counts its runs in a file beside it.
    fn fake_criu(dir: &Path) -> std::path::PathBuf {
        let criu = dir.join("criu");
        let count = dir.join("runs");
        std::fs::write(
            &criu,
            format!(
                "#!/bin/sh\necho run >> '{}'\n[ \"$1\" = --version ] && echo 'Version: 9.9'\nexit 0\n",
                count.display()
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&criu, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        criu
    }

    fn runs(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("runs")).map_or(0, |s| s.lines().count())
    }

    #[test]
    fn the_checks_run_once_until_criu_changes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap_or_else(|e| panic!("{e}"));
        let criu = fake_criu(dir.path());
        let first = probe(&criu, &state).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.version, "Version: 9.9");
        assert!(first.check_failed.is_none() && first.track_mem && first.uffd);
        assert_eq!(runs(dir.path()), 4, "--version, check and two features");
        let again = probe(&criu, &state).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again, first);
        assert_eq!(runs(dir.path()), 4, "the kept answer, no criu run");
        // Another binary at the same path (a different size): asked again.
        let text = std::fs::read_to_string(&criu).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&criu, format!("{text}\n# upgraded\n")).unwrap_or_else(|e| panic!("{e}"));
        probe(&criu, &state).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(runs(dir.path()), 8);
    }

    #[test]
    fn agents_check_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // A criu whose runs note when one starts while another runs.
        let criu = dir.path().join("criu");
        let d = dir.path().display();
        std::fs::write(
            &criu,
            format!(
                "#!/bin/sh\nmkdir '{d}/busy' 2>/dev/null || echo overlap >> '{d}/overlaps'\n\
                 echo run >> '{d}/runs'\nsleep 0.1\nrmdir '{d}/busy' 2>/dev/null\nexit 0\n"
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&criu, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap_or_else(|e| panic!("{e}"));
        let agents: Vec<_> = (0..3)
            .map(|i| {
                let (criu, state) = (criu.clone(), dir.path().join(format!("state{i}")));
                std::fs::create_dir(&state).unwrap_or_else(|e| panic!("{e}"));
                std::thread::spawn(move || probe(&criu, &state).map(|p| p.check_failed))
            })
            .collect();
        for a in agents {
            let checked = a.join().unwrap_or_else(|_| panic!("an agent panicked"));
            assert!(matches!(checked, Ok(None)), "{checked:?}");
        }
        assert_eq!(runs(dir.path()), 12, "three agents, four runs each");
        assert!(
            !dir.path().join("overlaps").exists(),
            "criu runs of two agents overlapped"
        );
    }

    #[test]
    fn a_state_folder_that_cannot_keep_it_only_costs_the_checks() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let criu = fake_criu(dir.path());
        let missing = dir.path().join("no-such-folder");
        let p = probe(&criu, &missing).unwrap_or_else(|e| panic!("{e}"));
        assert!(p.check_failed.is_none());
    }
}
