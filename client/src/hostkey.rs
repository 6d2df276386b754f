//! Host keys of a node before the suite connects to it: known, unknown (shown to the user
//! as a SHA256 fingerprint and recorded only on an explicit choice) or changed (refused
//! with a warning; the suite never rewrites a recorded key).
//!
//! Everything goes through the system's own tools, so ssh's view is the one used: `ssh -G`
//! says which host name, port, alias and known_hosts files apply to a destination,
//! `ssh-keygen -F` looks the host up in them (hashed entries included), and `ssh-keyscan`
//! fetches the keys the node offers, from that address only. The connection afterwards
//! still runs with `StrictHostKeyChecking=yes`, so ssh itself has the last word.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tokio::process::Command;

/// What can go wrong finding out about a host key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostKeyError {
    /// A system tool could not be run or failed.
    #[error("{0}")]
    Tool(String),
    /// The node offered no key.
    #[error("{0}")]
    NoKey(String),
    /// The node shows a key that a `@revoked` line of known_hosts names.
    #[error("{0}")]
    Revoked(String),
    /// Recording the key failed.
    #[error("cannot record the host key in {path}: {reason}")]
    Record {
        /// The known_hosts file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// One public host key: its type and its base64 blob, as a known_hosts line has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa` …
    pub kind: String,
    /// The key blob in base64.
    pub blob: String,
}

impl HostKey {
    /// The fingerprint as ssh prints it: `SHA256:` and the unpadded base64 of the
    /// SHA-256 of the key blob.
    pub fn fingerprint(&self) -> String {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.blob.as_bytes())
            .unwrap_or_else(|_| self.blob.as_bytes().to_vec());
        let digest = Sha256::digest(&raw);
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        )
    }

    /// A short type name as ssh shows it (`ED25519`, `ECDSA`, `RSA`).
    pub fn short_kind(&self) -> &str {
        match self.kind.as_str() {
            "ssh-ed25519" => "ED25519",
            k if k.starts_with("ecdsa-") => "ECDSA",
            "ssh-rsa" => "RSA",
            k => k,
        }
    }

    /// ssh's default preference among key types (lower first).
    fn rank(&self) -> u8 {
        match self.kind.as_str() {
            "ssh-ed25519" => 0,
            "ecdsa-sha2-nistp256" => 1,
            "ecdsa-sha2-nistp384" => 2,
            "ecdsa-sha2-nistp521" => 3,
            "ssh-rsa" => 4,
            _ => 5,
        }
    }
}

/// How ssh reaches a destination, as `ssh -G` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The destination as the user wrote it.
    pub dest: String,
    /// The host ssh connects to.
    pub hostname: String,
    /// Its port.
    pub port: u16,
    /// The name looked up in known_hosts: the HostKeyAlias, else `host` or `[host]:port`.
    pub lookup: String,
    /// The user's known_hosts files; new keys go into the first.
    pub user_files: Vec<PathBuf>,
    /// The system-wide known_hosts files (read only).
    pub global_files: Vec<PathBuf>,
    /// Whether the destination goes through a ProxyJump/ProxyCommand (ssh-keyscan cannot).
    pub proxied: bool,
}

impl SshTarget {
    /// The known_hosts file an accepted key goes into (the first user file), for people.
    pub fn record_file_name(&self) -> String {
        self.user_files
            .first()
            .map_or_else(|| "known_hosts".into(), |p| p.display().to_string())
    }
}

/// What a known_hosts line says of its key (sshd(8), SSH_KNOWN_HOSTS FILE FORMAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyMarker {
    /// A plain line: the host's own key.
    #[default]
    Plain,
    /// `@cert-authority`: a CA whose certificates the host may show instead.
    CertAuthority,
    /// `@revoked`: a key never to be accepted, whatever else is listed.
    Revoked,
}

/// A key recorded for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedKey {
    /// The key.
    pub key: HostKey,
    /// The file it is in.
    pub file: PathBuf,
    /// Plain, CA or revoked.
    pub marker: KeyMarker,
}

/// What the known_hosts files say about what the node offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// A recorded key matches: ssh will connect.
    Known {
        /// The matching key.
        key: HostKey,
    },
    /// Nothing is recorded for the host: `offered` (ssh's preferred key among those the
    /// node showed) may be accepted by an explicit choice.
    Unknown {
        /// The key to show and, on acceptance, record.
        offered: HostKey,
    },
    /// No key of the host is recorded plainly, but a `@cert-authority` line covers it: the
    /// host shows a certificate signed by that CA, which ssh itself verifies on connect
    /// (`StrictHostKeyChecking=yes` refuses a host without one).
    Vouched {
        /// The CA line that applies (the first, when several do).
        ca: RecordedKey,
    },
    /// Keys are recorded for the host and the node shows another: refused.
    Changed {
        /// What is recorded (one of them).
        recorded: RecordedKey,
        /// What the node shows now.
        offered: HostKey,
    },
}

/// A host key check: the target and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyCheck {
    /// How ssh reaches the node.
    pub target: SshTarget,
    /// Known, unknown or changed.
    pub status: HostKeyStatus,
}

impl HostKeyCheck {
    /// The warning for a changed key, in words (also used when ssh itself refuses).
    pub fn changed_warning(
        target: &SshTarget,
        recorded: &RecordedKey,
        offered: &HostKey,
    ) -> String {
        format!(
            "WARNING: the host key of {} has CHANGED. {} records {} {} for {}, but the node now shows {} {}. \
             Someone may be intercepting the connection, or the node was reinstalled. \
             The suite does not connect and does not change known_hosts; if the change is expected, \
             remove the old key yourself (ssh-keygen -R '{}' -f {}) and add the node again.",
            target.dest,
            recorded.file.display(),
            recorded.key.short_kind(),
            recorded.key.fingerprint(),
            target.lookup,
            offered.short_kind(),
            offered.fingerprint(),
            target.lookup,
            recorded.file.display(),
        )
    }
}

fn tool_error(what: &str, e: &std::io::Error) -> HostKeyError {
    HostKeyError::Tool(format!("cannot run {what}: {e}"))
}

/// `ssh -G`: how ssh would reach `dest` with this config (no network traffic).
pub async fn resolve(dest: &str, ssh_config: Option<&Path>) -> Result<SshTarget, HostKeyError> {
    if dest.starts_with('-') || dest.trim().is_empty() {
        return Err(HostKeyError::Tool(format!(
            "{dest:?} is not an ssh destination"
        )));
    }
    let mut cmd = Command::new("ssh");
    cmd.arg("-G");
    if let Some(cfg) = ssh_config {
        cmd.arg("-F").arg(cfg);
    }
    let out = cmd
        .arg(dest)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| tool_error("ssh -G", &e))?;
    if !out.status.success() {
        return Err(HostKeyError::Tool(format!(
            "ssh cannot read its configuration for {dest}: {}",
            last_line(&out.stderr)
        )));
    }
    Ok(parse_ssh_g(dest, &String::from_utf8_lossy(&out.stdout)))
}

fn parse_ssh_g(dest: &str, text: &str) -> SshTarget {
    let mut t = SshTarget {
        dest: dest.to_owned(),
        hostname: dest.to_owned(),
        port: 22,
        lookup: String::new(),
        user_files: Vec::new(),
        global_files: Vec::new(),
        proxied: false,
    };
    let mut alias = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let files = || value.split_whitespace().map(PathBuf::from).collect();
        match key {
            "hostname" => t.hostname = value.to_owned(),
            "port" => t.port = value.parse().unwrap_or(22),
            "hostkeyalias" => alias = Some(value.to_owned()),
            "userknownhostsfile" => t.user_files = files(),
            "globalknownhostsfile" => t.global_files = files(),
            "proxycommand" | "proxyjump" if value != "none" => t.proxied = true,
            _ => {}
        }
    }
    t.lookup = alias.unwrap_or_else(|| {
        if t.port == 22 {
            t.hostname.clone()
        } else {
            format!("[{}]:{}", t.hostname, t.port)
        }
    });
    t
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("Pseudo-terminal"))
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Parses `NAME TYPE BLOB [comment]` lines (ssh-keyscan output); comments and marker
/// lines are left out.
fn parse_key_lines(text: &str) -> Vec<HostKey> {
    parse_marked_lines(text)
        .into_iter()
        .filter(|(m, _)| *m == KeyMarker::Plain)
        .map(|(_, k)| k)
        .collect()
}

/// Parses `[@MARKER] NAME TYPE BLOB [comment]` lines (ssh-keygen -F output): plain,
/// `@cert-authority` and `@revoked` lines; comments and unknown markers are left out.
fn parse_marked_lines(text: &str) -> Vec<(KeyMarker, HostKey)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let marker = match l.starts_with('@').then(|| words.next()).flatten() {
                None => KeyMarker::Plain,
                Some("@cert-authority") => KeyMarker::CertAuthority,
                Some("@revoked") => KeyMarker::Revoked,
                Some(_) => return None,
            };
            let _name = words.next()?;
            let kind = words.next()?;
            let blob = words.next()?;
            Some((
                marker,
                HostKey {
                    kind: kind.to_owned(),
                    blob: blob.to_owned(),
                },
            ))
        })
        .collect()
}

/// The keys recorded for `target` in every known_hosts file ssh reads.
pub async fn recorded_keys(target: &SshTarget) -> Result<Vec<RecordedKey>, HostKeyError> {
    let mut found = Vec::new();
    for file in target.user_files.iter().chain(&target.global_files) {
        if !file.is_file() {
            continue;
        }
        let out = Command::new("ssh-keygen")
            .arg("-F")
            .arg(&target.lookup)
            .arg("-f")
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| tool_error("ssh-keygen -F", &e))?;
        // 1 = not found; anything else but 0 is a problem with the file.
        match out.status.code() {
            Some(0) => found.extend(
                parse_marked_lines(&String::from_utf8_lossy(&out.stdout))
                    .into_iter()
                    .map(|(marker, key)| RecordedKey {
                        key,
                        file: file.clone(),
                        marker,
                    }),
            ),
            Some(1) => {}
            _ => {
                return Err(HostKeyError::Tool(format!(
                    "ssh-keygen cannot read {}: {}",
                    file.display(),
                    last_line(&out.stderr)
                )));
            }
        }
    }
    Ok(found)
}

/// The keys the node offers (`ssh-keyscan` to its address and port only), ssh's
/// preferred type first.
pub async fn scan(target: &SshTarget, timeout: Duration) -> Result<Vec<HostKey>, HostKeyError> {
    if target.proxied {
        return Err(HostKeyError::Tool(format!(
            "{} is reached through a proxy, which ssh-keyscan cannot use; connect once with ssh to check its key",
            target.dest
        )));
    }
    if target.hostname.starts_with('-') {
        return Err(HostKeyError::Tool(format!(
            "{:?} is not a host name",
            target.hostname
        )));
    }
    let secs = timeout.as_secs().max(1);
    let out = Command::new("ssh-keyscan")
        .args(["-T", &secs.to_string(), "-p", &target.port.to_string()])
        .arg(&target.hostname)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| tool_error("ssh-keyscan", &e))?;
    let mut keys = parse_key_lines(&String::from_utf8_lossy(&out.stdout));
    if keys.is_empty() {
        let why = last_line(&out.stderr);
        return Err(HostKeyError::NoKey(format!(
            "{} ({}:{}) offered no host key{}",
            target.dest,
            target.hostname,
            target.port,
            if why.is_empty() || why.starts_with('#') {
                " (is sshd running there?)".to_owned()
            } else {
                format!(": {why}")
            }
        )));
    }
    keys.sort_by_key(HostKey::rank);
    Ok(keys)
}

/// The refusal when the node shows a key that a `@revoked` line names: whatever else
/// is recorded (the same key listed plainly too), a revoked key is never accepted.
pub fn revoked_warning(
    target: &SshTarget,
    recorded: &[RecordedKey],
    offered: &[HostKey],
) -> Option<String> {
    let (key, line) = offered.iter().find_map(|k| {
        recorded
            .iter()
            .find(|r| r.marker == KeyMarker::Revoked && r.key == *k)
            .map(|r| (k, r))
    })?;
    Some(format!(
        "the host key of {} ({} {}) is REVOKED: {} lists it under @revoked for {}. \
         The suite does not connect and does not change known_hosts.",
        target.dest,
        key.short_kind(),
        key.fingerprint(),
        line.file.display(),
        target.lookup,
    ))
}

/// Compares what is recorded with what the node offers (revoked keys are
/// [`revoked_warning`]'s). A host with no plain key recorded but a `@cert-authority` line
/// is vouched for by that CA.
pub fn judge(all: &[RecordedKey], offered: &[HostKey]) -> Option<HostKeyStatus> {
    let preferred = offered.first()?.clone();
    let plain: Vec<RecordedKey> = all
        .iter()
        .filter(|r| r.marker == KeyMarker::Plain)
        .cloned()
        .collect();
    let recorded = plain.as_slice();
    if recorded.is_empty() {
        if let Some(ca) = all.iter().find(|r| r.marker == KeyMarker::CertAuthority) {
            return Some(HostKeyStatus::Vouched { ca: ca.clone() });
        }
        return Some(HostKeyStatus::Unknown { offered: preferred });
    }
    // A recorded type for which the node shows a different key: changed.
    for key in offered {
        let same_type: Vec<&RecordedKey> =
            recorded.iter().filter(|r| r.key.kind == key.kind).collect();
        if !same_type.is_empty() && !same_type.iter().any(|r| r.key == *key) {
            return Some(HostKeyStatus::Changed {
                recorded: same_type[0].clone(),
                offered: key.clone(),
            });
        }
    }
    if let Some(key) = offered
        .iter()
        .find(|k| recorded.iter().any(|r| r.key == **k))
    {
        return Some(HostKeyStatus::Known { key: key.clone() });
    }
    // Keys are recorded, but of types the node no longer shows.
    Some(HostKeyStatus::Changed {
        recorded: recorded[0].clone(),
        offered: preferred,
    })
}

/// Finds out whether ssh knows the host key of `dest`: resolves the destination, looks
/// it up in the known_hosts files, and fetches the node's keys to compare.
pub async fn check(
    dest: &str,
    ssh_config: Option<&Path>,
    timeout: Duration,
) -> Result<HostKeyCheck, HostKeyError> {
    let target = resolve(dest, ssh_config).await?;
    let recorded = recorded_keys(&target).await?;
    let offered = scan(&target, timeout).await?;
    if let Some(warning) = revoked_warning(&target, &recorded, &offered) {
        return Err(HostKeyError::Revoked(warning));
    }
    let status = judge(&recorded, &offered)
        .ok_or_else(|| HostKeyError::NoKey(format!("{dest} offered no host key")))?;
    Ok(HostKeyCheck { target, status })
}

/// Records an unknown key that the user accepted, after making sure its fingerprint is
/// the one the user saw (`fingerprint`, `SHA256:…`) and that nothing was recorded for the
/// host meanwhile. Appends one line to the first user known_hosts file (created 0600,
/// its folder 0700, when missing); never rewrites existing lines.
pub async fn accept(check: &HostKeyCheck, fingerprint: &str) -> Result<PathBuf, HostKeyError> {
    let HostKeyStatus::Unknown { offered } = &check.status else {
        return Err(HostKeyError::Tool(
            "only an unknown host key can be accepted".into(),
        ));
    };
    if offered.fingerprint() != fingerprint.trim() {
        return Err(HostKeyError::Tool(format!(
            "the fingerprint given ({}) is not the one {} shows ({} {}); nothing recorded",
            fingerprint.trim(),
            check.target.dest,
            offered.short_kind(),
            offered.fingerprint()
        )));
    }
    if recorded_keys(&check.target)
        .await?
        .iter()
        .any(|r| r.marker != KeyMarker::CertAuthority)
    {
        return Err(HostKeyError::Tool(format!(
            "a key for {} was recorded meanwhile; check again",
            check.target.lookup
        )));
    }
    let Some(file) = check.target.user_files.first() else {
        return Err(HostKeyError::Tool(
            "ssh names no UserKnownHostsFile to record the key in".into(),
        ));
    };
    let line = known_hosts_line(&check.target.lookup, offered);
    append_line(file, line).map_err(|e| HostKeyError::Record {
        path: file.clone(),
        reason: e.to_string(),
    })?;
    Ok(file.clone())
}

/// Appends `line` to a known_hosts file, creating it (0600) and its folder (0700) when
/// missing.
fn append_line(file: &Path, line: String) -> std::io::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(file)?
    };
    // A file that does not end in a newline would glue our line to its last one.
    let needs_newline = std::fs::read(file)
        .map(|b| b.last().is_some_and(|&c| c != b'\n'))
        .unwrap_or(false);
    let text = if needs_newline {
        format!("\n{line}")
    } else {
        line
    };
    f.write_all(text.as_bytes())
}

fn known_hosts_line(lookup: &str, key: &HostKey) -> String {
    format!("{lookup} {} {}\n", key.kind, key.blob)
}

#[cfg(test)]
mod tests;
