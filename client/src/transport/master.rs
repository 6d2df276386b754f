//! Starting a node's ssh master: as `openssh::SessionBuilder` would, plus one option its
//! builder cannot pass, the key exchange ssh tries first.
//!
//! OpenSSH 9's first choice, `sntrup761x25519-sha512` (post-quantum), costs the `ssh`
//! process about 95 ms of CPU per connection in the portable implementation, against
//! about 15 ms for a whole handshake with `curve25519-sha256` (docs/benchmarks.md,
//! "Start-up of the main window"). At 250 nodes that is 24 s of the workstation's CPU
//! before a lamp can light, so the master asks for curve25519 first (`^` keeps every
//! other algorithm allowed, in ssh's order, for servers without it). It does so only
//! when the ssh configuration leaves `KexAlgorithms` at ssh's default: a choice made
//! there (e.g. post-quantum only) is kept. `OPENMOSIX_SSH_KEX=default` keeps ssh's
//! order regardless.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, LazyLock, Mutex};

use openssh::SessionBuilder;
use tempfile::TempDir;
use tokio::process::Command;

use super::ClientOptions;

/// What the master asks for first when the configuration does not say.
const FAST_KEX: &str = "KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org";

/// How long a master stays once no channel has used it: the master outlives a program
/// killed by a signal (no destructor runs), so it must leave by itself.
const PERSIST_S: u32 = 30;

/// Starts `ssh -M -f -N` to `dest` with its control socket in a new folder under the
/// temporary folder, and returns that folder once ssh has authenticated and gone to the
/// background (as `SessionBuilder::launch_master`; errors in the same words).
pub(crate) async fn launch(dest: &str, options: &ClientOptions) -> Result<TempDir, String> {
    let (builder, host) = resolved(dest);
    let dir = tempfile::Builder::new()
        .prefix(".ssh-connection")
        .tempdir_in(std::env::temp_dir())
        .map_err(|e| format!("cannot make a folder for the ssh control socket: {e}"))?;
    let log = dir.path().join("log");
    let mut ssh = Command::new("ssh");
    ssh.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .arg("-E")
        .arg(&log)
        .arg("-S")
        .arg(dir.path().join("master"))
        .args(["-M", "-f", "-N"])
        .arg("-o")
        .arg(format!("ControlPersist={PERSIST_S}s"))
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!(
            "ConnectTimeout={}",
            options.connect_timeout.as_secs().max(1)
        ))
        .args(["-o", "ServerAliveInterval=1"]);
    if let Some(port) = builder.get_port() {
        ssh.arg("-p").arg(port);
    }
    if let Some(user) = builder.get_user() {
        ssh.arg("-l").arg(user);
    }
    if let Some(cfg) = &options.ssh_config {
        ssh.arg("-F").arg(cfg);
    }
    if prefer_fast_kex(options.ssh_config.as_deref(), host).await {
        ssh.arg("-o").arg(FAST_KEX);
    }
    ssh.arg(host);
    let status = ssh
        .status()
        .await
        .map_err(|e| format!("failed to connect to the remote host: cannot start ssh: {e}"))?;
    if status.success() {
        return Ok(dir);
    }
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    Err(format!(
        "failed to connect to the remote host: {}",
        ssh_said(&said)
    ))
}

/// `dest` with an `ssh://user@host:port` form taken apart, as the builder does (older ssh
/// do not take that form).
fn resolved(dest: &str) -> (SessionBuilder, &str) {
    let plain = SessionBuilder::default();
    let (builder, host) = plain.resolve(dest);
    (builder.into_owned(), host)
}

/// What ssh wrote in its log, as `openssh` words it: without the `ssh: ` prefix and a
/// "Permanently added" warning, one line.
fn ssh_said(log: &str) -> String {
    let mut text = log.trim();
    text = text.strip_prefix("ssh: ").unwrap_or(text);
    if text.starts_with("Warning: Permanently added ") {
        text = text.split_once('\n').map_or("", |x| x.1.trim());
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The answer per ssh configuration file, found once (two `ssh -G`, about 6 ms each).
type Answers = HashMap<Option<PathBuf>, Arc<tokio::sync::OnceCell<bool>>>;
static ANSWERS: LazyLock<Mutex<Answers>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether the master should ask for curve25519 first: unless `OPENMOSIX_SSH_KEX=default`,
/// when `config`, as it applies to the cluster's first node asked about, leaves the key
/// exchange at ssh's default. Per configuration file, not per node: a file that sets it
/// for some hosts only is judged by the first.
async fn prefer_fast_kex(config: Option<&Path>, host: &str) -> bool {
    if std::env::var_os("OPENMOSIX_SSH_KEX").is_some_and(|v| v == "default") {
        return false;
    }
    let cell = {
        let mut all = ANSWERS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(all.entry(config.map(Path::to_owned)).or_default())
    };
    *cell
        .get_or_init(|| async {
            let (configured, default) = tokio::join!(
                kex_list(config, host),
                kex_list(Some(Path::new("/dev/null")), host)
            );
            // Unknown (ssh too old for -G, a broken file): keep ssh's own choice.
            configured.is_some() && configured == default
        })
        .await
}

/// The `kexalgorithms` line of `ssh -G` for `host` under `config` (the user's own when
/// `None`).
async fn kex_list(config: Option<&Path>, host: &str) -> Option<String> {
    let mut ssh = Command::new("ssh");
    ssh.arg("-G").stdin(Stdio::null()).stderr(Stdio::null());
    if let Some(cfg) = config {
        ssh.arg("-F").arg(cfg);
    }
    let out = ssh.arg(host).output().await.ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("kexalgorithms "))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_words_are_kept_without_prefix_and_warning() {
        assert_eq!(
            ssh_said("ssh: connect to host 10.0.0.1 port 22: Connection refused\n"),
            "connect to host 10.0.0.1 port 22: Connection refused"
        );
        assert_eq!(
            ssh_said(
                "Warning: Permanently added 'x' (ED25519) to the list of known hosts.\nroot@x: Permission denied (publickey).\n"
            ),
            "root@x: Permission denied (publickey)."
        );
    }

    #[test]
    fn url_destinations_are_taken_apart() {
        let (b, host) = resolved("ssh://ann@node7:2222");
        assert_eq!(
            (b.get_user(), b.get_port(), host),
            (Some("ann"), Some("2222"), "node7")
        );
        let (b, host) = resolved("ann@node7");
        assert_eq!(
            (b.get_user(), b.get_port(), host),
            (None, None, "ann@node7")
        );
    }

    #[tokio::test]
    async fn a_config_that_names_the_key_exchange_is_obeyed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let own = dir.path().join("own");
        std::fs::write(
            &own,
            "Host *\n    KexAlgorithms sntrup761x25519-sha512@openssh.com\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "Host *\n    User root\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(!prefer_fast_kex(Some(&own), "node1").await);
        assert!(prefer_fast_kex(Some(&plain), "node1").await);
    }
}
