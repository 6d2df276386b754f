//! What the package test shares: the package built once and installed into a scratch
//! root, running commands with their output in the failure message, and finding child
//! processes (waiting and killing come from openmosix-testbed).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The package built once and installed into a scratch root, shared by the tests.
#[derive(Debug)]
pub struct Package {
    /// target/tmp/deb-package.
    pub base: PathBuf,
    /// The .deb.
    pub deb: PathBuf,
    /// The scratch root it is installed in.
    pub root: PathBuf,
}

static PACKAGE: OnceLock<Result<Package, String>> = OnceLock::new();

pub fn package() -> &'static Package {
    match PACKAGE.get_or_init(build_and_install) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn describe(what: &str, out: &Output) -> String {
    // dpkg warns once per package of the copied list that it has no file list: noise.
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("files list file for package"))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        stderr.trim_end()
    )
}

/// Runs a command to its end; its output, or why it did not succeed.
pub fn try_run(what: &str, cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if !out.status.success() {
        return Err(describe(what, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn run(what: &str, cmd: &mut Command) -> String {
    try_run(what, cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// An empty dpkg root whose package list is this machine's (so Depends are checked).
pub fn scratch_root(path: &Path) -> Result<(), String> {
    let admin = path.join("var/lib/dpkg");
    for d in ["info", "updates"] {
        std::fs::create_dir_all(admin.join(d)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    std::fs::create_dir_all(path.join("var/log")).map_err(|e| e.to_string())?;
    std::fs::copy("/var/lib/dpkg/status", admin.join("status"))
        .map_err(|e| format!("copying /var/lib/dpkg/status: {e}"))?;
    Ok(())
}

/// dpkg on the scratch root: its own admin folder and log; the maintainer scripts run
/// unchrooted with DPKG_ROOT set, which they honour by leaving the machine's systemd alone.
pub fn dpkg(root: &Path) -> Command {
    let mut c = Command::new("dpkg");
    c.arg(format!("--root={}", root.display()))
        .arg(format!("--log={}", root.join("var/log/dpkg.log").display()))
        .arg("--force-script-chrootless");
    c
}

fn build_and_install() -> Result<Package, String> {
    if !is_root() {
        return Err(
            "the package test installs with dpkg, as root: run it as root \
                    (scripts/test.sh does)"
                .into(),
        );
    }
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deb-package");
    if base.exists() {
        std::fs::remove_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    }
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let out = try_run(
        "scripts/build-deb.sh --profile debug --no-build (are the binaries built? \
         `cargo build --workspace --bins`)",
        Command::new(repo().join("scripts/build-deb.sh"))
            .args(["--profile", "debug", "--no-build", "--out"])
            .arg(&base),
    )?;
    let deb = PathBuf::from(out.lines().last().unwrap_or("").trim());
    if !deb.is_file() {
        return Err(format!("build-deb.sh printed no package path: {out}"));
    }
    let root = base.join("root");
    scratch_root(&root)?;
    try_run("dpkg -i", dpkg(&root).arg("-i").arg(&deb))?;
    Ok(Package { base, deb, root })
}

/// Processes whose executable is `exe` and whose parent is `ppid`.
pub fn children_running(exe: &Path, ppid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                // pid (comm) state ppid …; comm may hold spaces, so split after ')'.
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(ppid)
            })
        })
        .collect()
}
