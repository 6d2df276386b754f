//! A post-copy move's small image (all but the private memory) on the direct page link
//! that is already open between the pumps, instead of two more SSH channels through the
//! client (docs/migration.md, "Post-copy").
//!
//! The source pump waits for the lazy dump to have written the image (its `tree.json`,
//! written last, after criu said it was ready), sends it as the usual checked tar
//! stream in frames ([`super::frames`]) ending with the empty one, and only then starts
//! carrying criu's page server bytes. The target pump unpacks it with the same checks
//! as `images receive`, starts `criu lazy-pages` on it at once, and marks the image
//! [`LAZY_READY`] for the restore, which the client sends without waiting for it.
//! criu's bytes follow the image on the link, so the two never mix: the daemon, which
//! asks for the first page, only starts once the image is in.

use std::io::{self, BufWriter};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::frames::{Framed, Unframed};
use super::link::{Opener, Sealer};
use super::pages::{Ending as _, WAIT};
use super::{Migrator, failed_with};
use openmosix_hpc::protocol::{AgentError, PAGE_FRAME};

/// The word the client adds to both pumps' `direct` control lines for this way.
pub const IMAGE_WORD: &str = "image";
/// Beside a post-copy image on the target: its `criu lazy-pages` waits for the restore.
pub const LAZY_READY: &str = "lazy.ready";
/// Written last into a lazy dump's image, once everything else is there.
const TREE: &str = "tree.json";
/// How often a pump or a restore looks for what it waits for.
const POLL: Duration = Duration::from_millis(2);

/// The source pump: waits for the lazy dump's image `id` in `dir`, then sends it over
/// `sealer`, ending with the empty frame.
pub(super) fn send(
    m: &Migrator,
    id: &str,
    dir: &Path,
    sealer: &mut Sealer<TcpStream>,
) -> Result<(), AgentError> {
    let deadline = Instant::now() + WAIT;
    while !dir.join(TREE).is_file() {
        if !dir.is_dir() {
            return Err(failed_with(format!(
                "image {id} went away before its dump was done (the dump failed)"
            )));
        }
        if Instant::now() > deadline {
            return Err(failed_with(format!(
                "the dump of image {id} was not done within {WAIT:?}"
            )));
        }
        std::thread::sleep(POLL);
    }
    // Frames of at most PAGE_FRAME bytes, length included, so each is one sealed frame.
    let mut out = BufWriter::with_capacity(PAGE_FRAME - 4, Framed(&mut *sealer));
    m.send(id, &mut out)?;
    let sent = out
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|mut framed| framed.end());
    sent.map_err(|e| failed_with(format!("sending the image on the page link failed: {e}")))
}

/// The target pump: takes image `id` from `opener` (`size`: about how many bytes the
/// process holds, to choose memory or disk), up to its empty frame.
pub(super) fn receive(
    m: &Migrator,
    id: &str,
    opener: &mut Opener<TcpStream>,
    size: Option<u64>,
) -> Result<(), AgentError> {
    let mut framed = Unframed::new(opener);
    m.receive(id, &mut framed, false, size)?;
    if let Err(why) = skip_padding(&mut framed) {
        m.remove(id);
        return Err(failed_with(why));
    }
    Ok(())
}

/// Reads the tar stream's padding after its end mark, up to the empty frame (criu's
/// bytes come after it). A tar stream pads to its record size at most: more is not
/// padding, and is refused.
fn skip_padding(framed: impl io::Read) -> Result<(), String> {
    match io::copy(&mut framed.take(PADDING + 1), &mut io::sink()) {
        Ok(n) if n <= PADDING => Ok(()),
        Ok(_) => Err(format!(
            "more than {} KiB follow the image on the page link: not a tar stream's padding",
            PADDING / 1024
        )),
        Err(e) => Err(format!("the image on the page link was cut short: {e}")),
    }
}

/// The most bytes taken after the image's tar end mark (tar pads its stream to records
/// of 10 KiB; the tar crate writes less).
const PADDING: u64 = 64 * 1024;

/// Marks image `id` ready for the restore: its daemon waits.
pub(super) fn mark_ready(m: &Migrator, id: &str) -> Result<(), AgentError> {
    let dir = m.image_dir(id)?;
    std::fs::write(dir.join(LAZY_READY), b"")
        .map_err(|e| failed_with(format!("marking image {id} ready failed: {e}")))
}

impl Migrator {
    /// Waits until the lazy pages of image `id` wait for the restore (its page pump
    /// marks it [`LAZY_READY`]); fails when the image never comes or goes away (its
    /// pump failed and removed it).
    pub fn wait_lazy_ready(&self, id: &str) -> Result<(), AgentError> {
        let deadline = Instant::now() + WAIT;
        let mut seen = false;
        loop {
            let dir = self.image_dir(id)?;
            if dir.join(LAZY_READY).is_file() {
                return Ok(());
            }
            let there = dir.is_dir();
            if seen && !there {
                return Err(failed_with(format!(
                    "image {id} went away before its lazy pages started (its page pump failed)"
                )));
            }
            seen |= there;
            if Instant::now() > deadline {
                return Err(failed_with(format!(
                    "the lazy pages of image {id} did not start within {WAIT:?}"
                )));
            }
            std::thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn rest(mut r: impl std::io::Read) -> Vec<u8> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn an_image_in_frames_leaves_what_follows_it_unread() {
        // The framing the link carries: the image's frames, the empty one, then criu's.
        let mut wire = Vec::new();
        {
            let mut out = BufWriter::with_capacity(PAGE_FRAME - 4, Framed(&mut wire));
            out.write_all(&vec![5u8; 700_000]).unwrap();
            out.into_inner()
                .map_err(|e| e.into_error())
                .unwrap()
                .end()
                .unwrap();
        }
        wire.extend_from_slice(b"criu");
        let mut input = &wire[..];
        let got = rest(Unframed::new(&mut input));
        assert_eq!(got.len(), 700_000);
        assert_eq!(input, b"criu");
    }

    #[test]
    fn padding_after_the_image_is_bounded() {
        let framed = |n: usize| {
            let mut wire = Vec::new();
            let mut out = Framed(&mut wire);
            out.write_all(&vec![0u8; n]).unwrap();
            out.end().unwrap();
            wire
        };
        let small = framed(10_240);
        assert_eq!(skip_padding(Unframed::new(&small[..])), Ok(()));
        let endless = framed(PADDING as usize + 1);
        let refused = skip_padding(Unframed::new(&endless[..])).unwrap_err();
        assert!(refused.contains("not a tar stream's padding"), "{refused}");
        let cut = &small[..100];
        let refused = skip_padding(Unframed::new(cut)).unwrap_err();
        assert!(refused.contains("cut short"), "{refused}");
    }
}
