//! The image's way from the source's side channel to the target's, through this client.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

use super::{Progress, failed, say};
use crate::ClientError;
use crate::transport::Aux;

/// Streams image `image` from the source's `images send` to the target's `images
/// receive` (`onto_pages`: the rest of a disk-less dump, after that many bytes of its
/// page stream; `size`: the target's hint where to keep it).
pub(super) async fn transfer(
    src: &Aux,
    dst: &Aux,
    image: &str,
    total: u64,
    onto_pages: Option<u64>,
    size: Option<u64>,
    progress: Option<&mpsc::UnboundedSender<Progress>>,
) -> Result<(), ClientError> {
    let mut send = src
        .images(true, image, false, None)
        .await
        .map_err(|e| failed(format!("cannot read the image: {e}")))?;
    let mut recv = match dst.images(false, image, onto_pages.is_some(), size).await {
        Ok(r) => r,
        Err(e) => {
            send.abort().await;
            return Err(failed(format!("cannot send the image: {e}")));
        }
    };
    let (Some(mut reader), Some(mut writer)) = (send.reader.take(), recv.writer.take()) else {
        return Err(failed("image stream pipes missing".into()));
    };
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let before = onto_pages.unwrap_or(0);
    let total = before + total;
    let moved = |sent: u64| Progress::transfer(before + sent, total, sent, started);
    let copied: Result<(), String> = async {
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading the image: {e}"))?;
            if n == 0 {
                break;
            }
            writer
                .write_all(&buf[..n])
                .await
                .map_err(|e| format!("the target stopped taking the image: {e}"))?;
            sent += n as u64;
            if last_report.elapsed() > Duration::from_millis(100) {
                say(progress, moved(sent));
                last_report = Instant::now();
            }
        }
        writer
            .shutdown()
            .await
            .map_err(|e| format!("closing the image stream: {e}"))
    }
    .await;
    drop(writer);
    drop(reader);
    say(progress, moved(sent));
    let sent_ok = send.finish().await;
    let recv_ok = recv.finish().await;
    match (copied, sent_ok, recv_ok) {
        (Ok(()), Ok(()), Ok(())) => Ok(()),
        (_, Err(e), _) => Err(failed(format!("sending the image failed: {e}"))),
        (_, _, Err(e)) => Err(failed(format!("the target could not take the image: {e}"))),
        (Err(e), _, _) => Err(failed(e)),
    }
}
