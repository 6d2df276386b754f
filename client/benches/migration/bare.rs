//! The bare copy of N bytes along the paths a migration's pages take between node 1 and
//! node 2 of the testbed: relayed through this machine (two ssh pipes here), direct over
//! the testbed's network with ssh from node 1 to node 2 (the nodes share the testbed's
//! ssh config and key), and, for scale, direct over plain TCP (no cipher). A path's rate
//! leaves the setup out: N ÷ (median time − median time of the same copy of 0 bytes).

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use openmosix_testbed::stats::median;
use openmosix_testbed::{Testbed, shell_quote};

/// Where the raw TCP listener listens on node 2.
const TCP_PORT: u16 = 47181;
/// Copies of 0 bytes that measure a path's setup (ssh handshakes, process starts).
const SETUP_RUNS: usize = 3;

/// Node 2's listener for the raw TCP copy: says `ready`, takes one connection, prints
/// the bytes it read.
const LISTENER: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", int(sys.argv[1])))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
b = bytearray(1 << 20)
n = 0
while True:
    k = c.recv_into(b)
    if not k:
        break
    n += k
print(n, flush=True)
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// node 1 → this machine → node 2.
    Relayed,
    /// node 1 → node 2 over ssh.
    Direct,
    /// node 1 → node 2 over plain TCP.
    Tcp,
}

pub const PATHS: [Path; 3] = [Path::Relayed, Path::Direct, Path::Tcp];

impl Path {
    pub fn label(self) -> &'static str {
        match self {
            Path::Relayed => "relayed",
            Path::Direct => "direct",
            Path::Tcp => "direct, plain TCP",
        }
    }

    /// The copy as a shell line, its pipes escaped for a markdown table.
    pub fn how(self) -> &'static str {
        match self {
            Path::Relayed => r"`ssh n1 'head -c N /dev/zero' \| ssh n2 'cat > /dev/null'`",
            Path::Direct => r#"`ssh n1 'head -c N /dev/zero \| ssh n2 "cat > /dev/null"'`"#,
            Path::Tcp => "`ssh n1 'head -c N /dev/zero > /dev/tcp/n2/PORT'`, python reading on n2",
        }
    }
}

/// A path's figures for one N.
#[derive(Debug, Clone, Copy)]
pub struct Bare {
    pub runs: usize,
    /// Median time of a copy of N bytes.
    pub median: Duration,
    /// Median time of a copy of 0 bytes.
    pub setup: Duration,
    /// Bytes a second, setup left out.
    pub rate: f64,
}

impl Bare {
    /// How long `bytes` take at this rate, setup left out, in ms.
    pub fn ms_for(&self, bytes: f64) -> f64 {
        bytes / self.rate * 1000.0
    }
}

/// `runs` copies of `bytes` along `path`, and the setup.
pub fn measure(bed: &Testbed, path: Path, bytes: u64, runs: usize) -> Result<Bare> {
    let time = |n| -> Result<Vec<f64>> {
        (0..if n == 0 { SETUP_RUNS } else { runs })
            .map(|_| copy(bed, path, n).map(|d| d.as_secs_f64()))
            .collect()
    };
    let setup = median(time(0)?);
    let full = median(time(bytes)?);
    let transfer = if full > setup { full - setup } else { full };
    Ok(Bare {
        runs,
        median: Duration::from_secs_f64(full),
        setup: Duration::from_secs_f64(setup),
        rate: bytes as f64 / transfer,
    })
}

/// One copy of `bytes` zeros along `path`: how long it took.
fn copy(bed: &Testbed, path: Path, bytes: u64) -> Result<Duration> {
    match path {
        Path::Relayed => relayed(bed, bytes),
        Path::Direct => direct(bed, bytes),
        Path::Tcp => tcp(bed, bytes),
    }
}

fn relayed(bed: &Testbed, bytes: u64) -> Result<Duration> {
    let n = bytes.to_string();
    let start = Instant::now();
    let mut src = bed
        .ssh_command(1, &["head", "-c", &n, "/dev/zero"])
        .stdin(Stdio::null())
        .spawn()
        .context("cannot run ssh to node 1")?;
    let pipe = src.stdout.take().context("ssh to node 1 has no stdout")?;
    let dst = bed
        .ssh_command(2, &["sh", "-c", "cat > /dev/null"])
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run ssh to node 2")?;
    ok("ssh n2 'cat > /dev/null'", &dst.wait_with_output()?)?;
    ok("ssh n1 'head -c N /dev/zero'", &src.wait_with_output()?)?;
    Ok(start.elapsed())
}

fn direct(bed: &Testbed, bytes: u64) -> Result<Duration> {
    let config = bed.ssh_config().to_string_lossy().into_owned();
    let script = format!(
        "head -c {bytes} /dev/zero | ssh -F {} {} 'cat > /dev/null'",
        shell_quote(&config),
        bed.addr(2)
    );
    let start = Instant::now();
    let out = bed
        .ssh_command(1, &["sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .context("cannot run ssh to node 1")?;
    ok("ssh n1 'head -c N /dev/zero | ssh n2 …'", &out)?;
    Ok(start.elapsed())
}

fn tcp(bed: &Testbed, bytes: u64) -> Result<Duration> {
    let port = TCP_PORT.to_string();
    let mut listener = Listener(
        bed.ssh_command(2, &["python3", "-c", LISTENER, &port])
            .stdin(Stdio::null())
            .spawn()
            .context("cannot run ssh to node 2")?,
    );
    let mut out = BufReader::new(listener.0.stdout.take().context("listener stdout")?);
    let mut line = String::new();
    out.read_line(&mut line)?;
    if line.trim() != "ready" {
        bail!("the listener on node 2 did not start: {line:?}");
    }
    let send = format!(
        "head -c {bytes} /dev/zero > /dev/tcp/{}/{port}",
        bed.addr(2)
    );
    let start = Instant::now();
    let sent = bed
        .ssh_command(1, &["bash", "-c", &send])
        .stdin(Stdio::null())
        .output()
        .context("cannot run ssh to node 1")?;
    ok("ssh n1 'head -c N /dev/zero > /dev/tcp/…'", &sent)?;
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    let elapsed = start.elapsed();
    listener
        .0
        .wait()
        .context("waiting for the listener's ssh")?;
    let got: u64 = rest
        .trim()
        .parse()
        .with_context(|| format!("the listener on node 2 said {rest:?}"))?;
    if got != bytes {
        bail!("node 2 read {got} bytes of {bytes}");
    }
    Ok(elapsed)
}

/// The listener's ssh, killed if it is still there when the copy ends.
struct Listener(Child);

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ok(what: &str, out: &Output) -> Result<()> {
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
