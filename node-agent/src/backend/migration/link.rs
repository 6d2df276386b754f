//! The node-to-node page link: a TCP connection between the two agents' page pumps,
//! encrypted and authenticated with a one-time key the client hands to both ends
//! through their SSH channels (docs/migration.md, "Node to node").
//!
//! The key is 64 random bytes: an AES-256-GCM key for each direction, so that a frame
//! can never be reflected back to its sender. Every frame is `length (u32, big
//! endian) ‖ ciphertext ‖ tag`, sealed with a nonce that counts the frames of its
//! direction, so frames cannot be replayed, dropped or reordered unnoticed. The first
//! frame each way is a greeting that proves the key; an empty frame ends the stream,
//! so a connection cut short reads as an error, never as a clean end.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use aes_gcm::aead::{AeadInPlace as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};

/// Bytes of a one-time key: two AES-256 keys.
pub const KEY_LEN: usize = 64;
/// Most plaintext bytes in one frame.
pub const FRAME: usize = openmosix_hpc::protocol::PAGE_FRAME;
const TAG: usize = 16;
const SOURCE_HELLO: &[u8] = b"openmosix page link 1: source";
const TARGET_HELLO: &[u8] = b"openmosix page link 1: target";

/// Which end of the link this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The dumping node: it connects.
    Source,
    /// The restoring node: it listens.
    Target,
}

/// A one-time key, parsed from its hex form.
#[derive(Clone)]
pub struct Key([u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

impl Key {
    /// The key written as 128 hex digits.
    pub fn from_hex(text: &str) -> Result<Key, String> {
        let bytes = hex::decode(text.trim()).map_err(|_| "the page link key is not hex")?;
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| format!("the page link key is not {KEY_LEN} bytes"))?;
        Ok(Key(key))
    }

    fn cipher(&self, half: usize) -> Aes256Gcm {
        // Infallible: each half is exactly 32 bytes.
        Aes256Gcm::new_from_slice(&self.0[half * 32..half * 32 + 32])
            .unwrap_or_else(|_| unreachable!("32-byte key"))
    }
}

/// The sealing half: frames this end sends.
pub struct Sealer<W> {
    out: W,
    cipher: Aes256Gcm,
    sent: u64,
    buf: Vec<u8>,
}

/// The opening half: frames this end receives.
pub struct Opener<R> {
    input: R,
    cipher: Aes256Gcm,
    got: u64,
    plain: Vec<u8>,
    at: usize,
    ended: bool,
}

impl<W> std::fmt::Debug for Sealer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealer({} frames)", self.sent)
    }
}

impl<R> std::fmt::Debug for Opener<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opener({} frames)", self.got)
    }
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn broken(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl<W: Write> Sealer<W> {
    fn new(out: W, cipher: Aes256Gcm) -> Self {
        Sealer {
            out,
            cipher,
            sent: 0,
            buf: Vec::with_capacity(FRAME + TAG),
        }
    }

    /// Seals and sends one frame of `data` (at most [`FRAME`] bytes).
    fn frame(&mut self, data: &[u8]) -> io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(data);
        self.cipher
            .encrypt_in_place(Nonce::from_slice(&nonce(self.sent)), b"", &mut self.buf)
            .map_err(|_| broken("sealing a page link frame failed"))?;
        self.sent += 1;
        let len = u32::try_from(self.buf.len()).map_err(|_| broken("frame too long"))?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&self.buf)
    }

    /// The stream the frames go to.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Sends the end mark and flushes: the other end reads a clean end of stream.
    pub fn finish(&mut self) -> io::Result<()> {
        self.frame(b"")?;
        self.out.flush()
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let n = data.len().min(FRAME);
        self.frame(&data[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<R: Read> Opener<R> {
    fn new(input: R, cipher: Aes256Gcm) -> Self {
        Opener {
            input,
            cipher,
            got: 0,
            plain: Vec::with_capacity(FRAME + TAG),
            at: 0,
            ended: false,
        }
    }

    /// Reads and opens the next frame into `self.plain`; `false` at the end mark.
    fn next_frame(&mut self) -> io::Result<bool> {
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                broken("the page link was cut short")
            } else {
                e
            }
        })?;
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG..=FRAME + TAG).contains(&len) {
            return Err(broken("a page link frame has an impossible length"));
        }
        self.plain.resize(len, 0);
        self.input.read_exact(&mut self.plain)?;
        self.cipher
            .decrypt_in_place(Nonce::from_slice(&nonce(self.got)), b"", &mut self.plain)
            .map_err(|_| broken("a page link frame failed authentication"))?;
        self.got += 1;
        self.at = 0;
        Ok(!self.plain.is_empty())
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.plain.len() {
            if self.ended || !self.next_frame()? {
                self.ended = true;
                self.plain.clear();
                self.at = 0;
                return Ok(0);
            }
        }
        let n = out.len().min(self.plain.len() - self.at);
        out[..n].copy_from_slice(&self.plain[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Both halves of an authenticated link over `stream`: the greetings are exchanged
/// (the source speaks first); a peer without the key fails here.
pub fn handshake(
    stream: &TcpStream,
    key: &Key,
    end: End,
) -> io::Result<(Opener<TcpStream>, Sealer<TcpStream>)> {
    let (mine, theirs, say, expect) = match end {
        End::Source => (0, 1, SOURCE_HELLO, TARGET_HELLO),
        End::Target => (1, 0, TARGET_HELLO, SOURCE_HELLO),
    };
    let mut sealer = Sealer::new(stream.try_clone()?, key.cipher(mine));
    let mut opener = Opener::new(stream.try_clone()?, key.cipher(theirs));
    let greet = |sealer: &mut Sealer<TcpStream>| {
        sealer.frame(say)?;
        sealer.flush()
    };
    let check = |opener: &mut Opener<TcpStream>| -> io::Result<()> {
        opener.next_frame()?;
        if opener.plain != expect {
            return Err(broken("the page link peer gave the wrong greeting"));
        }
        opener.at = opener.plain.len();
        Ok(())
    };
    if end == End::Source {
        greet(&mut sealer)?;
        check(&mut opener)?;
    } else {
        check(&mut opener)?;
        greet(&mut sealer)?;
    }
    Ok((opener, sealer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn key(b: u8) -> Key {
        Key([b; KEY_LEN])
    }

    fn pair(src_key: &Key, dst_key: Key) -> (io::Result<()>, io::Result<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let target = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let (mut opener, _sealer) = handshake(&s, &dst_key, End::Target)?;
            let mut got = Vec::new();
            opener.read_to_end(&mut got)?;
            Ok(got)
        });
        let s = TcpStream::connect(addr).unwrap();
        let sent = handshake(&s, src_key, End::Source).and_then(|(_o, mut sealer)| {
            sealer.write_all(&vec![7u8; FRAME * 2 + 5])?;
            sealer.finish()
        });
        (sent, target.join().unwrap())
    }

    #[test]
    fn bytes_cross_with_the_same_key() {
        let (sent, got) = pair(&key(1), key(1));
        sent.unwrap();
        assert_eq!(got.unwrap(), vec![7u8; FRAME * 2 + 5]);
    }

    #[test]
    fn a_peer_without_the_key_is_refused() {
        let (_sent, got) = pair(&key(1), key(2));
        let e = got.unwrap_err();
        assert_eq!(e.to_string(), "a page link frame failed authentication");
    }

    #[test]
    fn a_stream_cut_short_is_an_error_not_an_end() {
        // Distinct halves, so that a frame read with the other direction's key fails.
        let k = Key(std::array::from_fn(|i| u8::try_from(i).unwrap_or(0)));
        let mut wire = Vec::new();
        let mut sealer = Sealer::new(&mut wire, k.cipher(0));
        sealer.write_all(b"some pages").unwrap();
        // No finish(): the end mark is missing.
        let mut opener = Opener::new(&wire[..], k.cipher(0));
        let mut got = Vec::new();
        let e = opener.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.to_string(), "the page link was cut short");
        // A flipped bit fails authentication; a reflected frame (other key half) too.
        let mut wire = Vec::new();
        let mut sealer = Sealer::new(&mut wire, k.cipher(0));
        sealer.write_all(b"some pages").unwrap();
        sealer.finish().unwrap();
        let mut bad = wire.clone();
        bad[6] ^= 1;
        let e = Opener::new(&bad[..], k.cipher(0))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(e.to_string(), "a page link frame failed authentication");
        assert!(
            Opener::new(&wire[..], k.cipher(1))
                .read_to_end(&mut Vec::new())
                .is_err()
        );
        let mut got = Vec::new();
        Opener::new(&wire[..], k.cipher(0))
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, b"some pages");
    }

    #[test]
    fn keys_parse_from_hex_only_at_full_length() {
        assert!(Key::from_hex(&"ab".repeat(KEY_LEN)).is_ok());
        assert!(Key::from_hex("abcd").is_err());
        assert!(Key::from_hex(&"zz".repeat(KEY_LEN)).is_err());
    }
}
