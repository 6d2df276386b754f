//! Framing the input: one request a line, never more than a bound held in memory.

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _};

/// How reading one line ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line (without its newline) is in the buffer.
    Line,
    /// The line was longer than the limit; it was read and dropped.
    TooLong,
    /// End of input.
    Eof,
}

/// Reads one line into `buf`, never holding more than `max` bytes of it: a longer line
/// is consumed to its end and reported as [`Frame::TooLong`].
pub async fn read_bounded_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Frame> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if too_long {
                Frame::TooLong
            } else if buf.is_empty() {
                Frame::Eof
            } else {
                Frame::Line
            });
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                Frame::TooLong
            } else {
                Frame::Line
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_lines() {
        let data = b"short\nthis line is far too long\nok\nlast".to_vec();
        let mut r = tokio::io::BufReader::with_capacity(4, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::Line
        );
        assert_eq!(buf, b"short");
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::TooLong
        );
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::Line
        );
        assert_eq!(buf, b"ok");
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::Line
        );
        assert_eq!(buf, b"last");
        assert_eq!(
            read_bounded_line(&mut r, &mut buf, 10).await.unwrap(),
            Frame::Eof
        );
    }
}
