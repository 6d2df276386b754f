//! Disk-less migration: memory pages go from criu on the source straight into `criu
//! page-server` on the target while the dump runs, never through the source's disk.
//! The rest of the image (small: registers, files, mappings) follows as a tar stream.
//!
//! Two pumps carry the page stream, started by the client over SSH before the dump:
//! `openmosix-agent pages send IMAGE` on the source listens on [`SOCKET`] in the image
//! folder, where the agent's dump connects and hands the socket to criu
//! (`--ps-socket`); `openmosix-agent pages receive IMAGE` on the target feeds a `criu
//! page-server` through a socket pair. Between them the bytes go either through the
//! client (its SSH channels, "relayed") or node to node over TCP ("direct"), sealed
//! with a one-time key ([`super::link`]). Each pump speaks one line of control on
//! stdin/stdout first (docs/protocol.md, "Page streams").

use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::frames::{Framed, Unframed};
use super::image_link;
use super::link::{self, End, Key};
use super::{Migrator, io as io_error};
use crate::backend::criu::Criu;
use openmosix_hpc::protocol::{AgentError, ErrorKind};

/// The source pump's socket, in the image folder.
pub const SOCKET: &str = "pages.sock";
/// How long a pump waits for the other side (the dump to connect, the peer to come).
pub(super) const WAIT: Duration = Duration::from_secs(60);
/// How long the source tries each of the target's addresses.
const CONNECT: Duration = Duration::from_millis(1500);

fn failed(message: impl Into<String>) -> AgentError {
    AgentError::new(ErrorKind::MigrationFailed, message)
}

/// Room in a page stream's unix sockets: a whole answer of criu's page server (it
/// sends at most 4 MiB at a time).
const SOCKET_ROOM: usize = 4 << 20;

/// The agent's side: connects to the source pump listening in image folder `dir`. criu
/// writes the pages into it.
pub fn connect(dir: &Path) -> Result<UnixStream, AgentError> {
    let s = UnixStream::connect(dir.join(SOCKET)).map_err(|e| {
        failed(format!(
            "the page stream of image {} is not open: {e}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ))
    })?;
    crate::backend::syscalls::widen_send_buffer(s.as_raw_fd(), SOCKET_ROOM);
    Ok(s)
}

/// A socket pair between a pump (the first end, which writes the pages) and the criu
/// on the target that reads them.
pub(super) fn criu_pair() -> Result<(UnixStream, UnixStream), AgentError> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| failed(format!("page stream: {e}")))?;
    crate::backend::syscalls::widen_send_buffer(ours.as_raw_fd(), SOCKET_ROOM);
    Ok((ours, theirs))
}

/// A stream end that can say "no more" to its reader.
pub trait Ending: Write {
    /// Flushes and tells the reader at the other end that nothing more comes.
    fn end(&mut self) -> io::Result<()>;
}

impl Ending for UnixStream {
    fn end(&mut self) -> io::Result<()> {
        self.flush()?;
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl Ending for link::Sealer<TcpStream> {
    fn end(&mut self) -> io::Result<()> {
        self.finish()?;
        self.get_ref().shutdown(std::net::Shutdown::Write)
    }
}

/// How a pump's bytes travel, once the control lines are said.
pub(super) enum Transport<R> {
    /// Through the client: the rest of stdin, and stdout, both framed
    /// ([`super::frames`]).
    Relay(R),
    /// Node to node.
    Direct(Box<(link::Opener<TcpStream>, link::Sealer<TcpStream>)>),
}

/// Copies `from` into `to` (counting into `moved`), then ends `to`.
fn copy(mut from: impl Read, mut to: impl Ending, moved: Option<&AtomicU64>) -> io::Result<()> {
    let mut buf = vec![0u8; link::FRAME];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        if let Some(m) = moved {
            m.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    to.end()
}

/// Runs both directions at once; the first error ends the pump (the process exits, so
/// a direction stuck reading is not waited for). `up` is counted into `moved`; while
/// it runs, `report` is called every 100 ms.
pub(super) fn duplex<UR, UW, DR, DW>(
    up: (UR, UW),
    down: (DR, DW),
    moved: &Arc<AtomicU64>,
    mut report: impl FnMut(u64),
) -> io::Result<()>
where
    UR: Read + Send + 'static,
    UW: Ending + Send + 'static,
    DR: Read + Send + 'static,
    DW: Ending + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<(bool, io::Result<()>)>();
    let counted = Arc::clone(moved);
    let up_tx = tx.clone();
    std::thread::spawn(move || {
        let _ = up_tx.send((true, copy(up.0, up.1, Some(&counted))));
    });
    std::thread::spawn(move || {
        let _ = tx.send((false, copy(down.0, down.1, None)));
    });
    let mut ended = 0;
    while ended < 2 {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((_, Err(e))) => return Err(e),
            Ok((is_up, Ok(()))) => {
                ended += 1;
                if is_up {
                    report(moved.load(Ordering::Relaxed));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => report(moved.load(Ordering::Relaxed)),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(io::Error::other("a page pump thread ended without a word"));
            }
        }
    }
    Ok(())
}

pub(super) fn say(out: &mut impl Write, line: &str) -> Result<(), AgentError> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| failed(format!("the client went away: {e}")))
}

pub(super) fn read_line(input: &mut impl BufRead) -> Result<String, AgentError> {
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) => Err(failed("the client closed the page stream before it began")),
        Ok(_) => Ok(line.trim().to_owned()),
        Err(e) => Err(failed(format!(
            "reading the page stream's control line: {e}"
        ))),
    }
}

/// The source pump (`openmosix-agent pages send IMAGE`): listens for the dump in the
/// prepared image folder, then carries its pages to the target, relayed or direct.
/// `stdin` is read for the control line and, relayed, for the target's answers;
/// `stdout` takes control lines and, relayed, the pages.
pub fn send(
    m: &Migrator,
    id: &str,
    mut stdin: impl BufRead + Send + 'static,
    mut stdout: std::fs::File,
) -> Result<u64, AgentError> {
    let dir = m.image_dir(id)?;
    if !dir.is_dir() {
        return Err(failed(format!("no image {id} is prepared here")));
    }
    let path = dir.join(SOCKET);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| io_error("listening on", &path, &e))?;
    say(&mut stdout, "ready")?;
    let control = read_line(&mut stdin)?;
    let words = control.split_whitespace().collect::<Vec<_>>();
    let image_first = words.get(3) == Some(&image_link::IMAGE_WORD);
    let mut transport = match words[..] {
        ["relay"] => Transport::Relay(stdin),
        ["direct", addrs, key] | ["direct", addrs, key, image_link::IMAGE_WORD] => {
            let key = Key::from_hex(key).map_err(failed)?;
            match dial(addrs, &key) {
                Ok((o, s)) => {
                    say(&mut stdout, "direct")?;
                    Transport::Direct(Box::new((o, s)))
                }
                Err(why) => {
                    say(&mut stdout, &format!("relay {why}"))?;
                    Transport::Relay(stdin)
                }
            }
        }
        _ => return Err(failed(format!("unknown page stream control {control:?}"))),
    };
    let criu = accept_dump(&listener, &path)?;
    let _ = std::fs::remove_file(&path);
    if let (Transport::Direct(halves), true) = (&mut transport, image_first) {
        // Post-copy: the small image goes first, on the link (criu waits meanwhile).
        if let Err(e) = image_link::send(m, id, &dir, &mut halves.1) {
            m.record_stream_end(id, Err(e.message.clone()));
            return Err(e);
        }
    }
    let moved = Arc::new(AtomicU64::new(0));
    let carried = carry(transport, criu, stdout, &moved, true);
    // What a post-copy move's source decides by when no client is left to tell it.
    m.record_stream_end(
        id,
        carried.as_ref().map(|_| ()).map_err(ToString::to_string),
    );
    carried.map_err(|e| failed(format!("the page stream broke: {e}")))?;
    Ok(moved.load(Ordering::Relaxed))
}

/// Carries the page stream both ways between criu's socket `criu` and the other pump,
/// counting the bytes into `moved`: relayed, framed on stdout and stdin
/// ([`super::frames`]); direct, over the sealed link. With `report` (the source) a
/// direct stream's counts go to the client on stdout (`moved N`, and `done N` at the
/// end), since no byte of it passes the client.
pub(super) fn carry<R: BufRead + Send + 'static>(
    transport: Transport<R>,
    criu: UnixStream,
    mut stdout: std::fs::File,
    moved: &Arc<AtomicU64>,
    report: bool,
) -> io::Result<()> {
    let criu_out = criu.try_clone()?;
    match transport {
        Transport::Relay(input) => duplex(
            (criu, Framed(stdout)),
            (Unframed::new(input), criu_out),
            moved,
            |_| {},
        ),
        Transport::Direct(halves) => {
            let (opener, sealer) = *halves;
            duplex((criu, sealer), (opener, criu_out), moved, |n| {
                if report {
                    let _ = say(&mut stdout, &format!("moved {n}"));
                }
            })?;
            if report {
                // The stream itself is whole: a client gone meanwhile does not make it
                // cut (its pages are all across).
                let _ = say(
                    &mut stdout,
                    &format!("done {}", moved.load(Ordering::Relaxed)),
                );
            }
            Ok(())
        }
    }
}

/// Connects to the first of `addrs` (`ip:port,ip:port…`) that answers with the key.
fn dial(
    addrs: &str,
    key: &Key,
) -> Result<(link::Opener<TcpStream>, link::Sealer<TcpStream>), String> {
    let mut why = String::from("the target named no address");
    for a in addrs.split(',').filter(|a| !a.is_empty()) {
        let Ok(addr) = a.parse::<SocketAddr>() else {
            why = format!("{a:?} is not an address");
            continue;
        };
        let stream = match TcpStream::connect_timeout(&addr, CONNECT) {
            Ok(s) => s,
            Err(e) => {
                why = format!("node to node {addr}: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        match link::handshake(&stream, key, End::Source) {
            Ok(halves) => {
                let _ = stream.set_read_timeout(None);
                return Ok(halves);
            }
            Err(e) => why = format!("node to node {addr}: {e}"),
        }
    }
    Err(why)
}

/// Waits for the agent's dump to connect to the socket at `path`.
fn accept_dump(listener: &UnixListener, path: &Path) -> Result<UnixStream, AgentError> {
    listener
        .set_nonblocking(true)
        .map_err(|e| io_error("listening on", path, &e))?;
    let deadline = Instant::now() + WAIT;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)
                    .map_err(|e| io_error("reading", path, &e))?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(failed("no dump came to the page stream within a minute"));
            }
            Err(e) => return Err(io_error("listening on", path, &e)),
        }
    }
}

/// This node's addresses another node may reach it on (loopback only when there is
/// nothing else).
fn own_addresses() -> Vec<IpAddr> {
    let all: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4())
        .collect();
    let outside: Vec<IpAddr> = all.iter().copied().filter(|ip| !ip.is_loopback()).collect();
    if outside.is_empty() { all } else { outside }
}

/// The client's next line, read while the link is open (and stdin with it).
pub(super) type NextLine<R> = mpsc::Receiver<(Result<String, AgentError>, R)>;

/// What the target pump heard first: the link (and the client's next line to come), or
/// the client's word to relay.
enum Heard<R> {
    Link(
        Box<(link::Opener<TcpStream>, link::Sealer<TcpStream>)>,
        NextLine<R>,
    ),
    Relay(R),
}

/// The target pump (`openmosix-agent pages receive IMAGE`): takes the page stream
/// into a `criu page-server` writing the image's `dump` folder. The image is claimed
/// while the pages arrive. With `lazy` (post-copy) the image arrives first and the
/// pages are fetched as the restored process needs them ([`super::postcopy`]).
pub fn receive<R: BufRead + Send + 'static>(
    m: &Migrator,
    criu: &Criu,
    id: &str,
    mut stdin: R,
    mut stdout: std::fs::File,
    lazy: bool,
    size: Option<u64>,
) -> Result<(), AgentError> {
    let mut dump = m.image_dir(id)?.join("dump");
    let claim = if lazy {
        None
    } else {
        let claim = m.handoffs().claim(id)?;
        m.remove(id);
        dump = m.place(id, size, None)?.join("dump");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dump)
            .map_err(|e| io_error("creating", &dump, &e))?;
        Some(claim)
    };
    let control = read_line(&mut stdin)?;
    let mut next = None;
    let words = control.split_whitespace().collect::<Vec<_>>();
    let image_first = lazy && words.get(2) == Some(&image_link::IMAGE_WORD);
    let transport = match words[..] {
        ["relay"] => Transport::Relay(stdin),
        ["direct", key] | ["direct", key, image_link::IMAGE_WORD] => {
            let key = Key::from_hex(key).map_err(failed)?;
            match listen(&key, stdin, &mut stdout)? {
                Heard::Link(halves, rest) => {
                    next = Some(rest);
                    Transport::Direct(halves)
                }
                Heard::Relay(input) => Transport::Relay(input),
            }
        }
        _ => return Err(failed(format!("unknown page stream control {control:?}"))),
    };
    if lazy {
        let image = image_first.then_some(size);
        return super::postcopy::receive(m, criu, id, transport, next, stdout, image);
    }
    let _claim = claim;
    let (ours, theirs) = criu_pair()?;
    let server = {
        let criu = criu.clone();
        std::thread::spawn(move || {
            let r = criu.page_server(&dump, theirs.as_raw_fd());
            // criu is gone: our end reads its end of stream now.
            drop(theirs);
            r
        })
    };
    let ours_ctl = ours
        .try_clone()
        .map_err(|e| failed(format!("page stream: {e}")))?;
    let moved = Arc::new(AtomicU64::new(0));
    let pumped = carry(transport, ours, stdout, &moved, false);
    if pumped.is_err() {
        // The stream broke: the page server reads its end now instead of waiting for
        // pages that never come.
        let _ = ours_ctl.shutdown(std::net::Shutdown::Both);
    }
    let served = server
        .join()
        .unwrap_or_else(|_| Err(failed("the page server thread crashed")));
    let done = served.and(pumped.map_err(|e| failed(format!("the page stream broke: {e}"))));
    if done.is_err() {
        // Half an image is no image: nothing of it stays.
        m.remove(id);
        return done;
    }
    // Node to node the pages come without the client; it says `keep` once it has seen
    // them all and the rest of the image follows. A client gone meanwhile never sends
    // the rest, so its pages go now rather than at the next sweep.
    if let Some(next) = next {
        match next.recv_timeout(WAIT) {
            Ok((Ok(line), _)) if line == "keep" => {}
            _ => {
                m.remove(id);
                return Err(failed(
                    "the client went away before the rest of the image came; its pages are dropped",
                ));
            }
        }
    }
    Ok(())
}

/// Listens for the source on every address of this node, says where on stdout
/// (`listen PORT ADDR,ADDR…`), and waits for whichever comes first: a peer that proves
/// the key (peers that do not are dropped and the wait goes on), or the client's
/// `relay` line.
fn listen<R: BufRead + Send + 'static>(
    key: &Key,
    mut stdin: R,
    stdout: &mut impl Write,
) -> Result<Heard<R>, AgentError> {
    let listener = TcpListener::bind("0.0.0.0:0")
        .map_err(|e| failed(format!("cannot listen for the page stream: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| failed(format!("page stream: {e}")))?
        .port();
    let addrs: Vec<String> = own_addresses()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port).to_string())
        .collect();
    say(stdout, &format!("listen {}", addrs.join(",")))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let line = read_line(&mut stdin);
        let _ = tx.send((line, stdin));
    });
    listener
        .set_nonblocking(true)
        .map_err(|e| failed(format!("page stream: {e}")))?;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Ok((line, input)) = rx.try_recv() {
            return match line?.as_str() {
                "relay" => Ok(Heard::Relay(input)),
                other => Err(failed(format!("unknown page stream control {other:?}"))),
            };
        }
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(false);
                let _ = s.set_nodelay(true);
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                if let Ok((o, w)) = link::handshake(&s, key, End::Target) {
                    let _ = s.set_read_timeout(None);
                    return Ok(Heard::Link(Box::new((o, w)), rx));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(failed(format!("page stream: {e}"))),
        }
    }
    Err(failed("the source never opened the page stream"))
}

impl Migrator {
    /// Keeps the pages a page server wrote into image `id` aside while the rest of the
    /// image arrives: the folder is renamed to `ID-pages` (which the sweep removes if
    /// nothing takes it back).
    pub fn set_pages_aside(&self, id: &str) -> Result<Option<std::path::PathBuf>, AgentError> {
        let dir = self.image_dir(id)?;
        // Beside the image, on the same file system, so that the pages move back by
        // renaming.
        let aside_name = format!("{id}-pages");
        self.image_dir(&aside_name)?;
        let aside = dir.with_file_name(aside_name);
        if !dir.join("dump").is_dir() {
            return Ok(None);
        }
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(&dir, &aside).map_err(|e| io_error("moving", &dir, &e))?;
        Ok(Some(aside))
    }

    /// Moves the pages kept `aside` into image `id`'s `dump` folder, which the rest of
    /// the image has just filled: only criu's page files, none replacing a file there.
    pub fn take_pages_back(&self, id: &str, aside: &Path) -> Result<(), AgentError> {
        let dump = self.image_dir(id)?.join("dump");
        let from = aside.join("dump");
        let entries = std::fs::read_dir(&from).map_err(|e| io_error("reading", &from, &e))?;
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name();
            let text = name.to_string_lossy();
            let page_file = (text.starts_with("pages-") || text.starts_with("pagemap-"))
                && text.ends_with(".img");
            if !page_file {
                continue;
            }
            let to = dump.join(&name);
            if to.exists() {
                return Err(failed(format!(
                    "the image stream and the page stream both hold {text}"
                )));
            }
            std::fs::rename(e.path(), &to).map_err(|err| io_error("moving", &to, &err))?;
        }
        let _ = std::fs::remove_dir_all(aside);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_addresses_are_never_empty_on_a_machine_with_loopback() {
        assert!(!own_addresses().is_empty());
    }
}
