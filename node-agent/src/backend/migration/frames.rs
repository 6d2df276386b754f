//! The relayed page stream's framing: `length (u32, big endian) ‖ bytes`, an empty
//! frame for the end (docs/protocol.md, "Page streams").
//!
//! A relayed pump cannot end its stream by closing stdout: sshd holds a channel's end
//! of file back while the process's stderr is open (OpenSSH delays the EOF "if EFD
//! still in use"), and the pump keeps stderr for its last word. So each direction
//! says its end in-band, and a stream cut short reads as an error, not as an end.

use std::io::{self, Read, Write};

use openmosix_hpc::protocol::PAGE_FRAME;

use super::pages::Ending;

/// Writes frames of at most [`PAGE_FRAME`] bytes; [`Ending::end`] sends the empty one.
pub struct Framed<W: Write>(pub W);

impl<W: Write> Write for Framed<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(PAGE_FRAME);
        if n == 0 {
            return Ok(0);
        }
        let mut frame = Vec::with_capacity(4 + n);
        frame.extend_from_slice(&(n as u32).to_be_bytes());
        frame.extend_from_slice(&data[..n]);
        self.0.write_all(&frame)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Ending for Framed<W> {
    fn end(&mut self) -> io::Result<()> {
        self.0.write_all(&0u32.to_be_bytes())?;
        self.0.flush()
    }
}

/// Reads the bytes of frames until the empty one, which reads as the end of file.
pub struct Unframed<R: Read> {
    inner: R,
    /// Bytes left in the current frame.
    left: usize,
    ended: bool,
}

impl<R: Read> Unframed<R> {
    pub fn new(inner: R) -> Self {
        Unframed {
            inner,
            left: 0,
            ended: false,
        }
    }
}

impl<R: Read> Read for Unframed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut head = [0u8; 4];
            self.inner.read_exact(&mut head).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::new(e.kind(), "the page stream was cut before its end")
                } else {
                    e
                }
            })?;
            let len = u32::from_be_bytes(head) as usize;
            if len == 0 {
                self.ended = true;
                return Ok(0);
            }
            if len > PAGE_FRAME {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a page frame of {len} bytes is over the bound of {PAGE_FRAME}"),
                ));
            }
            self.left = len;
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the page stream was cut inside a frame",
            ));
        }
        self.left -= n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(data: &[u8]) -> Vec<u8> {
        let mut w = Framed(Vec::new());
        w.write_all(data).unwrap();
        w.end().unwrap();
        w.0
    }

    #[test]
    fn bytes_come_back_and_the_end_is_the_empty_frame() {
        let data: Vec<u8> = (0..PAGE_FRAME * 2 + 77).map(|i| i as u8).collect();
        let mut wire = framed(&data);
        // Bytes after the end mark are not read as the stream.
        wire.extend_from_slice(b"trailing");
        let mut got = Vec::new();
        Unframed::new(&wire[..]).read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn a_cut_stream_is_an_error_not_an_end() {
        let wire = framed(&[5u8; 1000]);
        for cut in [0, 2, 4, 500, wire.len() - 4] {
            let mut got = Vec::new();
            let err = Unframed::new(&wire[..cut])
                .read_to_end(&mut got)
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "cut at {cut}");
        }
    }

    #[test]
    fn an_oversized_frame_is_refused() {
        let mut wire = ((PAGE_FRAME + 1) as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&[0u8; 16]);
        let err = Unframed::new(&wire[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("over the bound"), "{err}");
    }
}
