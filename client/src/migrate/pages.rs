//! The page stream of a disk-less migration, seen from the client: both pumps started
//! (`openmosix-agent pages send|receive`), the path chosen — node to node when the
//! source reaches the target, else relayed through this client — and, while the dump
//! runs, the bytes relayed or their count read for the progress.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::sync::mpsc;

use super::{Progress, failed, say};
use crate::ClientError;
use crate::transport::{Aux, ImageStream};
use openmosix_hpc::protocol::PAGE_FRAME;

/// How long a pump may take to say its control line.
const CONTROL: Duration = Duration::from_secs(30);

/// The way the image's bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Node to node, over a TCP link sealed with a one-time key.
    Direct,
    /// Through this client's two SSH connections.
    Relayed,
}

/// Both pumps, their path agreed.
pub(super) struct PageStream {
    src: ImageStream,
    dst: ImageStream,
    src_out: BufReader<Box<dyn AsyncRead + Unpin + Send>>,
    dst_out: BufReader<Box<dyn AsyncRead + Unpin + Send>>,
    src_in: Box<dyn AsyncWrite + Unpin + Send>,
    dst_in: Box<dyn AsyncWrite + Unpin + Send>,
    /// The path taken.
    pub route: Route,
    /// Why the direct path was not taken, when it was tried.
    pub relayed_because: Option<String>,
    /// Post-copy: the source's pump sends the small image on the direct link, and the
    /// target's starts the lazy pages when it is in (no `start` from here).
    pub image_on_link: bool,
}

impl std::fmt::Debug for PageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PageStream({:?})", self.route)
    }
}

async fn line(
    r: &mut BufReader<Box<dyn AsyncRead + Unpin + Send>>,
    who: &str,
) -> Result<String, String> {
    let mut l = String::new();
    match tokio::time::timeout(CONTROL, r.read_line(&mut l)).await {
        Err(_) => Err(format!("the {who} page pump said nothing for {CONTROL:?}")),
        Ok(Err(e)) => Err(format!("the {who} page pump: {e}")),
        Ok(Ok(0)) => Err(format!("the {who} page pump ended before it was ready")),
        Ok(Ok(_)) => Ok(l.trim().to_owned()),
    }
}

async fn tell(
    w: &mut Box<dyn AsyncWrite + Unpin + Send>,
    text: &str,
    who: &str,
) -> Result<(), String> {
    w.write_all(format!("{text}\n").as_bytes())
        .await
        .and(w.flush().await)
        .map_err(|e| format!("the {who} page pump went away: {e}"))
}

/// A fresh one-time key for a direct link, in hex (two AES-256 keys).
fn one_time_key() -> Result<String, String> {
    let mut key = [0u8; 64];
    getrandom::fill(&mut key).map_err(|e| format!("no randomness for the page link key: {e}"))?;
    Ok(hex::encode(key))
}

impl PageStream {
    /// Starts both pumps for image `image` and agrees the path: direct when `direct`
    /// and the source reaches the target with the key, else relayed. With `lazy` the
    /// target's pump waits for [`PageStream::start_lazy`] (post-copy). `size`: about
    /// how many bytes of pages come, for a target that keeps images in memory. With
    /// `image_first` (post-copy) a direct link carries the small image too.
    pub(super) async fn open(
        src: &Aux,
        dst: &Aux,
        image: &str,
        direct: bool,
        lazy: bool,
        size: Option<u64>,
        image_first: bool,
    ) -> Result<PageStream, ClientError> {
        let mut src = src
            .pages(true, image, false, None)
            .await
            .map_err(|e| failed(format!("cannot open the page stream on the source: {e}")))?;
        let mut dst = match dst.pages(false, image, lazy, size).await {
            Ok(d) => d,
            Err(e) => {
                src.abort().await;
                return Err(failed(format!(
                    "cannot open the page stream on the target: {e}"
                )));
            }
        };
        let pipes = (
            src.reader.take(),
            src.writer.take(),
            dst.reader.take(),
            dst.writer.take(),
        );
        let (Some(so), Some(si), Some(dout), Some(di)) = pipes else {
            return Err(failed("page stream pipes missing".into()));
        };
        let mut stream = PageStream {
            src,
            dst,
            src_out: BufReader::with_capacity(256 * 1024, so),
            dst_out: BufReader::with_capacity(256 * 1024, dout),
            src_in: si,
            dst_in: di,
            route: Route::Relayed,
            relayed_because: None,
            image_on_link: false,
        };
        if let Err(e) = stream.agree(direct, image_first).await {
            let why = stream.why(e).await;
            stream.abort().await;
            return Err(failed(why));
        }
        Ok(stream)
    }

    async fn agree(&mut self, direct: bool, image_first: bool) -> Result<(), String> {
        let ready = line(&mut self.src_out, "source").await?;
        if ready != "ready" {
            return Err(format!("the source page pump said {ready:?}"));
        }
        if !direct {
            tell(&mut self.dst_in, "relay", "target").await?;
            return tell(&mut self.src_in, "relay", "source").await;
        }
        let key = one_time_key()?;
        let image = if image_first { " image" } else { "" };
        tell(&mut self.dst_in, &format!("direct {key}{image}"), "target").await?;
        let listen = line(&mut self.dst_out, "target").await?;
        let addrs = listen.strip_prefix("listen ").unwrap_or("");
        tell(
            &mut self.src_in,
            &format!("direct {addrs} {key}{image}"),
            "source",
        )
        .await?;
        let answer = line(&mut self.src_out, "source").await?;
        if answer == "direct" {
            self.route = Route::Direct;
            self.image_on_link = image_first;
            return Ok(());
        }
        self.relayed_because = Some(
            answer
                .strip_prefix("relay")
                .unwrap_or(&answer)
                .trim()
                .to_owned(),
        );
        tell(&mut self.dst_in, "relay", "target").await
    }

    /// Post-copy: the rest of the image is on the target; its pump starts `criu
    /// lazy-pages` on it, ready for the restore once this returns. With the image on
    /// the link the pump starts by itself, and this waits for its word.
    pub(super) async fn start_lazy(&mut self) -> Result<(), String> {
        let said = async {
            if !self.image_on_link {
                tell(&mut self.dst_in, "start", "target").await?;
            }
            match line(&mut self.dst_out, "target").await?.as_str() {
                "lazy-ready" => Ok(()),
                other => Err(format!("the target page pump said {other:?}")),
            }
        }
        .await;
        match said {
            Ok(()) => Ok(()),
            Err(e) => Err(self.why(e).await),
        }
    }

    /// The pumps' own words when they failed (their last error line), else `e`.
    async fn why(&mut self, e: String) -> String {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.src
            .tail_line()
            .or_else(|| self.dst.tail_line())
            .unwrap_or(e)
    }

    /// Kills both pumps.
    pub(super) async fn abort(self) {
        self.src.abort().await;
        self.dst.abort().await;
    }

    /// Carries the pages until the dump closes the stream (relayed: copies both ways;
    /// direct: reads the source's counts); the pages that crossed, which the target
    /// keeps once told ([`Carried::keep`]).
    pub(super) async fn run(
        mut self,
        total: u64,
        progress: Option<mpsc::UnboundedSender<Progress>>,
    ) -> Result<Carried, ClientError> {
        let started = Instant::now();
        match self.route {
            Route::Relayed => {
                let carried = relay(&mut self, total, progress.as_ref(), started).await;
                if let Err(e) = carried {
                    // One way broke: the other waits on a pump that waits on it (criu on
                    // the source waits for the answers of a page server that is gone), so
                    // both pumps go now; the source's dump fails and resumes the process.
                    let why = self.why(e).await;
                    self.abort().await;
                    return Err(failed(why));
                }
                drop(self.src_in);
                drop(self.dst_in);
                let bytes = finish(self.src, self.dst, carried).await?;
                Ok(Carried { bytes, rest: None })
            }
            Route::Direct => {
                let carried = counts(&mut self.src_out, total, progress.as_ref(), started).await;
                drop(self.src_in);
                match carried {
                    // The target pump waits for the word to keep the pages.
                    Ok(bytes) => Ok(Carried {
                        bytes,
                        rest: Some((self.dst_in, self.src, self.dst)),
                    }),
                    Err(e) => {
                        drop(self.dst_in);
                        finish(self.src, self.dst, Err(e)).await?;
                        Err(failed("the page stream ended early".into()))
                    }
                }
            }
        }
    }
}

/// Pages that have all crossed. Node to node, the target's pump waits for `keep` (sent
/// once the dump has answered: the rest of the image follows); dropped unsaid, the
/// target drops the pages, so a failed dump or a client gone leaves none behind.
pub(super) struct Carried {
    bytes: u64,
    rest: Option<(Box<dyn AsyncWrite + Unpin + Send>, ImageStream, ImageStream)>,
}

impl Carried {
    /// Tells the target to keep the pages; their bytes.
    pub(super) async fn keep(self) -> Result<u64, ClientError> {
        let Some((mut dst_in, src, dst)) = self.rest else {
            return Ok(self.bytes);
        };
        let _ = tell(&mut dst_in, "keep", "target").await;
        drop(dst_in);
        finish(src, dst, Ok(self.bytes)).await
    }
}

/// Waits for both pumps to end: `carried`, or why the stream failed.
async fn finish(
    src: ImageStream,
    dst: ImageStream,
    carried: Result<u64, String>,
) -> Result<u64, ClientError> {
    let src = src.finish().await;
    let dst = dst.finish().await;
    match (carried, src, dst) {
        (Ok(n), Ok(()), Ok(())) => Ok(n),
        (_, Err(e), _) => Err(failed(format!(
            "the page stream from the source failed: {e}"
        ))),
        (_, _, Err(e)) => Err(failed(format!("the target could not take the pages: {e}"))),
        (Err(e), _, _) => Err(failed(e)),
    }
}

/// Relays both ways: pages source → target (counted), the page server's answers back.
/// Each direction is framed by its pump and ends with an empty frame (docs/protocol.md,
/// "Page streams"): over SSH a pump's stdout does not reach its end of file while the
/// pump lives, so the end is said in-band.
async fn relay(
    s: &mut PageStream,
    total: u64,
    progress: Option<&mpsc::UnboundedSender<Progress>>,
    started: Instant,
) -> Result<u64, String> {
    let (src_out, dst_in) = (&mut s.src_out, &mut s.dst_in);
    let (dst_out, src_in) = (&mut s.dst_out, &mut s.src_in);
    let pages = async {
        let mut last = Instant::now();
        let sent = forward(src_out, dst_in, "pages", |sent| {
            if last.elapsed() > Duration::from_millis(100) {
                report(progress, sent, total, started);
                last = Instant::now();
            }
        })
        .await?;
        report(progress, sent, total, started);
        Ok::<u64, String>(sent)
    };
    let answers = forward(dst_out, src_in, "the page server's answers", |_| {});
    // The first way to fail ends both: the other would wait for ever.
    let (sent, ()) = tokio::try_join!(pages, async { answers.await.map(drop) })?;
    Ok(sent)
}

/// Copies frames from `from` to `to` up to and with the empty one; the bytes of pages
/// they held. `moved` hears the running count.
async fn forward(
    from: &mut BufReader<Box<dyn AsyncRead + Unpin + Send>>,
    to: &mut Box<dyn AsyncWrite + Unpin + Send>,
    what: &str,
    mut moved: impl FnMut(u64),
) -> Result<u64, String> {
    let mut buf = vec![0u8; 4 + PAGE_FRAME];
    let mut count = 0u64;
    loop {
        from.read_exact(&mut buf[..4])
            .await
            .map_err(|e| format!("{what}: the stream ended before its end mark ({e})"))?;
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > PAGE_FRAME {
            return Err(format!(
                "{what}: a frame of {len} bytes is over the bound of {PAGE_FRAME}"
            ));
        }
        from.read_exact(&mut buf[4..4 + len])
            .await
            .map_err(|e| format!("{what}: the stream was cut inside a frame ({e})"))?;
        to.write_all(&buf[..4 + len])
            .await
            .map_err(|e| format!("{what}: the receiving pump went away ({e})"))?;
        // The pumps wait on each other's small messages: nothing may sit in a buffer
        // while no more bytes are at hand.
        if len == 0 || from.buffer().is_empty() {
            to.flush()
                .await
                .map_err(|e| format!("{what}: the receiving pump went away ({e})"))?;
        }
        if len == 0 {
            return Ok(count);
        }
        count += len as u64;
        moved(count);
    }
}

/// Direct: the source pump says `moved N` as the pages go, `done N` at the end.
async fn counts(
    out: &mut BufReader<Box<dyn AsyncRead + Unpin + Send>>,
    total: u64,
    progress: Option<&mpsc::UnboundedSender<Progress>>,
    started: Instant,
) -> Result<u64, String> {
    let mut l = String::new();
    let mut moved = 0;
    loop {
        l.clear();
        if out
            .read_line(&mut l)
            .await
            .map_err(|e| format!("the source page pump: {e}"))?
            == 0
        {
            return Err("the page stream ended before the source said it was done".into());
        }
        let mut words = l.split_whitespace();
        let (word, n) = (
            words.next(),
            words.next().and_then(|n| n.parse::<u64>().ok()),
        );
        match (word, n) {
            (Some("moved"), Some(n)) => {
                moved = n;
                report(progress, moved, total, started);
            }
            (Some("done"), Some(n)) => {
                report(progress, n, total, started);
                return Ok(n);
            }
            _ => {
                return Err(format!(
                    "the source page pump said {:?} after {moved} bytes",
                    l.trim()
                ));
            }
        }
    }
}

fn report(
    progress: Option<&mpsc::UnboundedSender<Progress>>,
    sent: u64,
    total: u64,
    started: Instant,
) {
    say(progress, Progress::transfer(sent, total, sent, started));
}
