//! Putting the suite's own programs on a node over an open SSH master (the agent, and on
//! a gateway the relay, [`Program`]): compare architectures, upload into a temporary
//! name, compare the node's SHA-256 of it with ours (sending again on a mismatch), then
//! chmod and rename it into `~/.local/lib/openmosix/NAME` and run it once.
//!
//! Every remote command line is a constant (`sh -c SCRIPT NAME`, the program's name one
//! of two constants, arriving as `$0`); the binary travels on the channel's stdin, so no
//! path or user data is ever interpolated into a shell.

use std::sync::Arc;

use openssh::Session;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use super::ClientError;
use super::transport::ssh_reason;

/// The upload goes to a temporary name; it is checked, made executable and run once
/// there, and only then renamed over the installed agent (so a copy that does not run
/// never replaces one that does).
const UPLOAD: &str = "umask 022; mkdir -p \"$HOME/.local/lib/openmosix\" && \
                      cat > \"$HOME/.local/lib/openmosix/.$0.upload\"";
const SUM: &str = "sha256sum \"$HOME/.local/lib/openmosix/.$0.upload\"";
const CHMOD: &str = "chmod 755 \"$HOME/.local/lib/openmosix/.$0.upload\"";
const RENAME: &str = "mv -f \"$HOME/.local/lib/openmosix/.$0.upload\" \
                      \"$HOME/.local/lib/openmosix/$0\"";
const DISCARD: &str = "rm -f \"$HOME/.local/lib/openmosix/.$0.upload\"";
/// (A loader failure exits 127, which ssh would report as "command not found".)
const VERSION: &str = "\"$HOME/.local/lib/openmosix/.$0.upload\" --version || exit 1";

/// A program `node add` installs into `~/.local/lib/openmosix/`, where the client's
/// lookup ([`super::transport::AGENT_LOOKUP`]) runs it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `openmosix-agent`, on every node.
    Agent,
    /// `openmosix`, whose `gateway serve` and `gateway pipe` a gateway runs for its
    /// group (docs/fan-out.md).
    Relay,
}

impl Program {
    /// Its file name (the same on the node as here).
    pub fn name(self) -> &'static str {
        match self {
            Program::Agent => "openmosix-agent",
            Program::Relay => super::gateway::GATEWAY_PROGRAM,
        }
    }
}

/// How many times a copy is sent before giving up on a checksum mismatch.
pub const UPLOAD_ATTEMPTS: u32 = 3;

/// Test-only fault hook: when this variable is `1`, the first upload of a run has one
/// byte flipped on its way, so that the checksum check (the real one) must catch it and
/// send again. Documented in docs/provisioning.md; never set it otherwise.
pub const CORRUPT_FIRST_UPLOAD_ENV: &str = "OPENMOSIX_TEST_CORRUPT_UPLOAD";

/// The lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The ELF machine of a binary and the `uname -m` names of machines that run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// A readable name (`x86_64`, `aarch64` …).
    pub name: &'static str,
    /// ELF `e_machine`.
    pub elf: u16,
}

const MACHINES: &[(u16, &str, &[&str])] = &[
    (62, "x86_64", &["x86_64", "amd64"]),
    (183, "aarch64", &["aarch64", "arm64", "armv8b", "armv8l"]),
    (40, "arm (32-bit)", &["armv7l", "armv6l", "armv5tel", "arm"]),
    (3, "i386 (32-bit x86)", &["i386", "i486", "i586", "i686"]),
    (243, "riscv64", &["riscv64"]),
    (21, "ppc64", &["ppc64", "ppc64le"]),
    (22, "s390x", &["s390x"]),
    (258, "loongarch64", &["loongarch64"]),
];

/// The machine an ELF binary is built for; `None` when it is not ELF.
pub fn elf_machine(head: &[u8]) -> Option<Machine> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let raw = [head[18], head[19]];
    let elf = if head[5] == 2 {
        u16::from_be_bytes(raw)
    } else {
        u16::from_le_bytes(raw)
    };
    let name = MACHINES
        .iter()
        .find(|(m, ..)| *m == elf)
        .map_or("an unknown machine", |(_, n, _)| *n);
    Some(Machine { name, elf })
}

/// Whether a node whose `uname -m` says `uname` runs a binary for `machine`; `None` when
/// the name is not one this table knows (the run test then decides).
pub fn runs_on(machine: Machine, uname: &str) -> Option<bool> {
    let uname = uname.trim();
    let known = MACHINES
        .iter()
        .find(|(_, _, names)| names.contains(&uname))?;
    Some(known.0 == machine.elf)
}

/// Turns what the loader said when the agent would not run into a sentence.
pub fn loader_sentence(node: &str, stderr: &str) -> String {
    let text = stderr.trim();
    if let Some(pos) = text.find("error while loading shared libraries: ") {
        let rest = &text[pos + "error while loading shared libraries: ".len()..];
        let lib = rest.split(':').next().unwrap_or(rest).trim();
        return format!(
            "{node} lacks the library {lib} that the agent needs: install it there, or install an agent built for that system"
        );
    }
    if let Some(pos) = text.find("version `") {
        let rest = &text[pos + "version `".len()..];
        let want = rest.split('\'').next().unwrap_or(rest);
        let what = if want.starts_with("GLIBC") {
            "C library (glibc)"
        } else {
            "system libraries"
        };
        return format!(
            "{node}'s {what} is older than the agent needs ({want} not found): build the agent on a system as old as the node, or statically"
        );
    }
    if text.contains("Exec format error") || text.contains("cannot execute binary file") {
        return format!(
            "{node} cannot execute the agent (wrong architecture or binary format): {}",
            text.lines().last().unwrap_or(text)
        );
    }
    if text.contains("No such file or directory") {
        return format!(
            "{node} lacks the program loader the agent was linked for (another C library, e.g. musl?): {}",
            text.lines().last().unwrap_or(text)
        );
    }
    format!(
        "the agent does not run on {node}: {}",
        text.lines()
            .last()
            .unwrap_or("it exited with an error and said nothing")
    )
}

/// What one remote command said.
#[derive(Debug)]
pub struct Ran {
    /// It exited with status 0.
    pub ok: bool,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// Runs `sh -c SCRIPT` (a constant) on the session.
pub async fn run_script(session: &Arc<Session>, script: &str) -> Result<Ran, String> {
    run_script_for(session, script, Program::Agent).await
}

/// Runs `sh -c SCRIPT NAME` (constants; `$0` is the program's name) on the session.
async fn run_script_for(
    session: &Arc<Session>,
    script: &str,
    program: Program,
) -> Result<Ran, String> {
    let out = Arc::clone(session)
        .arc_command("sh")
        .arg("-c")
        .arg(script)
        .arg(program.name())
        .stdin(openssh::Stdio::null())
        .output()
        .await
        .map_err(|e| ssh_reason(&e))?;
    Ok(Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `uname -m` of the node.
pub async fn remote_machine(session: &Arc<Session>) -> Result<String, String> {
    let ran = run_script(session, "uname -m").await?;
    if !ran.ok {
        return Err(format!("uname -m failed: {}", ran.stderr.trim()));
    }
    Ok(ran.stdout.trim().to_owned())
}

/// Sends `bytes` into the temporary name; `sent(done, total)` is called as it goes.
async fn send(
    session: &Arc<Session>,
    program: Program,
    bytes: &[u8],
    sent: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<(), String> {
    let mut child = Arc::clone(session)
        .arc_command("sh")
        .arg("-c")
        .arg(UPLOAD)
        .arg(program.name())
        .stdin(openssh::Stdio::piped())
        .stdout(openssh::Stdio::null())
        .stderr(openssh::Stdio::piped())
        .spawn()
        .await
        .map_err(|e| ssh_reason(&e))?;
    let mut stdin = child
        .stdin()
        .take()
        .ok_or_else(|| "the upload channel has no stdin".to_owned())?;
    let chunk = (1 << 20).max(bytes.len() / 10);
    let mut done = 0;
    for part in bytes.chunks(chunk) {
        stdin
            .write_all(part)
            .await
            .map_err(|e| format!("the upload broke off: {e}"))?;
        done += part.len();
        sent(done, bytes.len());
    }
    stdin
        .shutdown()
        .await
        .map_err(|e| format!("the upload broke off: {e}"))?;
    drop(stdin);
    let out = child.wait_with_output().await.map_err(|e| ssh_reason(&e))?;
    if !out.status.success() {
        return Err(format!(
            "the node could not store the upload: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The node's SHA-256 of the temporary upload.
async fn remote_sum(session: &Arc<Session>, program: Program) -> Result<String, String> {
    let ran = run_script_for(session, SUM, program).await?;
    let sum = ran
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned();
    if !ran.ok || sum.len() != 64 {
        return Err(format!(
            "sha256sum on the node failed: {}",
            ran.stderr.trim()
        ));
    }
    Ok(sum)
}

/// What happened to one upload attempt, for the progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadEvent {
    /// Bytes sent so far of the total, in attempt N.
    Sent {
        /// Attempt number, from 1.
        attempt: u32,
        /// Bytes sent.
        done: usize,
        /// Bytes in all.
        total: usize,
    },
    /// The node's checksum differs from ours; sending again.
    Mismatch {
        /// Attempt number, from 1.
        attempt: u32,
        /// Ours.
        expected: String,
        /// The node's.
        got: String,
    },
    /// The node's copy has our checksum.
    Verified {
        /// Attempt number, from 1.
        attempt: u32,
        /// The checksum.
        sum: String,
    },
}

/// Uploads `bytes` until the node's SHA-256 matches ours (at most [`UPLOAD_ATTEMPTS`]
/// times) and makes it executable, still under its temporary name (see
/// [`run_upload`], [`activate`]). The temporary file is removed when it fails.
pub async fn upload_verified(
    session: &Arc<Session>,
    program: Program,
    bytes: &[u8],
    event: &mut (dyn FnMut(UploadEvent) + Send),
) -> Result<String, String> {
    let expected = sha256_hex(bytes);
    let corrupt_first = std::env::var(CORRUPT_FIRST_UPLOAD_ENV).is_ok_and(|v| v == "1");
    for attempt in 1..=UPLOAD_ATTEMPTS {
        let corrupted;
        let payload: &[u8] = if corrupt_first && attempt == 1 && !bytes.is_empty() {
            let mut copy = bytes.to_vec();
            let mid = copy.len() / 2;
            copy[mid] ^= 0xff;
            corrupted = copy;
            &corrupted
        } else {
            bytes
        };
        let mut sent = |done, total| {
            event(UploadEvent::Sent {
                attempt,
                done,
                total,
            });
        };
        if let Err(e) = send(session, program, payload, &mut sent).await {
            let _ = run_script_for(session, DISCARD, program).await;
            return Err(e);
        }
        let got = remote_sum(session, program).await?;
        if got == expected {
            event(UploadEvent::Verified {
                attempt,
                sum: got.clone(),
            });
            let ran = run_script_for(session, CHMOD, program).await?;
            if !ran.ok {
                let _ = run_script_for(session, DISCARD, program).await;
                return Err(format!(
                    "cannot make the copy executable: {}",
                    ran.stderr.trim()
                ));
            }
            return Ok(got);
        }
        event(UploadEvent::Mismatch {
            attempt,
            expected: expected.clone(),
            got,
        });
    }
    let _ = run_script_for(session, DISCARD, program).await;
    Err(format!(
        "the copy arrived damaged {UPLOAD_ATTEMPTS} times (SHA-256 mismatch); nothing was installed"
    ))
}

/// Runs the uploaded copy once (`--version`); its version line, or the loader's
/// complaint turned into a sentence (the copy is then removed).
pub async fn run_upload(
    session: &Arc<Session>,
    program: Program,
    node: &str,
) -> Result<String, String> {
    let ran = run_script_for(session, VERSION, program).await?;
    if ran.ok {
        Ok(ran.stdout.trim().to_owned())
    } else {
        let _ = run_script_for(session, DISCARD, program).await;
        Err(loader_sentence(node, &ran.stderr))
    }
}

/// Renames the checked copy over `~/.local/lib/openmosix/NAME` (atomic).
pub async fn activate(session: &Arc<Session>, program: Program) -> Result<(), String> {
    let ran = run_script_for(session, RENAME, program).await?;
    if ran.ok {
        Ok(())
    } else {
        let _ = run_script_for(session, DISCARD, program).await;
        Err(format!(
            "cannot put {} in place: {}",
            program.name(),
            ran.stderr.trim()
        ))
    }
}

/// What the program that the client's lookup finds on the node says to `--version`
/// (its first line); `None` when there is none, or it does not run.
pub async fn lookup_version(
    session: &Arc<Session>,
    program: Program,
) -> Result<Option<String>, String> {
    // The lookup runs in a shell of its own (it `exec`s), and a lookup that finds none
    // exits 1 rather than 127 (which ssh would report as its own failure).
    let out = Arc::clone(session)
        .arc_command("sh")
        .arg("-c")
        .arg("sh -c \"$1\" \"$0\" --version || exit 1")
        .arg(program.name())
        .arg(super::transport::AGENT_LOOKUP)
        .stdin(openssh::Stdio::null())
        .output()
        .await
        .map_err(|e| ssh_reason(&e))?;
    let said = String::from_utf8_lossy(&out.stdout);
    Ok(said
        .lines()
        .next()
        .map(str::trim)
        .filter(|l| out.status.success() && !l.is_empty())
        .map(str::to_owned))
}

/// Whether the lookup proved that the node has no usable agent: the lookup script found
/// none, or the one it found speaks another protocol (ours, installed in
/// `~/.local/lib/openmosix`, then comes first).
pub fn probe_says_no_agent(e: &ClientError) -> bool {
    match e {
        ClientError::Connect { reason, .. } => reason.contains("not installed on this node"),
        ClientError::Protocol(m) => m.starts_with("agent speaks protocol"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_machines() {
        let mut head = vec![0u8; 64];
        head[..4].copy_from_slice(b"\x7fELF");
        head[5] = 1;
        head[18] = 62;
        let m = elf_machine(&head).expect("elf");
        assert_eq!(m.name, "x86_64");
        assert_eq!(runs_on(m, "x86_64\n"), Some(true));
        assert_eq!(runs_on(m, "aarch64"), Some(false));
        assert_eq!(runs_on(m, "mips"), None);
        head[18] = 183;
        assert_eq!(elf_machine(&head).map(|m| m.name), Some("aarch64"));
        assert!(elf_machine(b"#!/bin/sh\n").is_none());
    }

    #[test]
    fn loader_sentences() {
        let s = loader_sentence(
            "n3",
            "/x/openmosix-agent: error while loading shared libraries: libfoo.so.1: cannot open shared object file: No such file or directory",
        );
        assert!(s.contains("lacks the library libfoo.so.1"), "{s}");
        let s = loader_sentence(
            "n3",
            "/x/openmosix-agent: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.39' not found (required by /x/openmosix-agent)",
        );
        assert!(
            s.contains("C library (glibc) is older") && s.contains("GLIBC_2.39"),
            "{s}"
        );
        let s = loader_sentence("n3", "sh: 1: /x/openmosix-agent: Exec format error");
        assert!(s.contains("cannot execute"), "{s}");
    }

    #[test]
    fn checksum() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[test]
    fn only_a_probe_that_finds_no_agent_installs() {
        let connect = |reason: &str| ClientError::Connect {
            node: 3,
            reason: reason.into(),
        };
        assert!(probe_says_no_agent(&connect(
            "openmosix-agent: not installed on this node (not on PATH, not in ~/.local/lib/openmosix); openmosix node add installs it"
        )));
        assert!(probe_says_no_agent(&ClientError::Protocol(
            "agent speaks protocol 0 but this program speaks 1 (agent 0.0.1)".into()
        )));
        assert!(!probe_says_no_agent(&ClientError::Timeout(
            std::time::Duration::from_secs(5)
        )));
        assert!(!probe_says_no_agent(&ClientError::Closed));
        assert!(!probe_says_no_agent(&connect("the agent exited at once")));
        assert!(!probe_says_no_agent(&ClientError::Protocol(
            "agent sent a line that is not the protocol: \"x\"".into()
        )));
    }
}
