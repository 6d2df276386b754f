//! The target's page pump in a post-copy move (`openmosix-agent pages receive --lazy`):
//! once the rest of the image has arrived, it runs `criu lazy-pages` on it, which waits
//! for `criu restore --lazy-pages` and then fetches over the page stream every page the
//! restored process touches, and all the others after.
//!
//! If the stream or the daemon fails before every page has come, the restored copy
//! would read its missing pages as zeros: the pump kills it, and the source, told by the
//! client, lets its original run on (docs/migration.md, "Post-copy").

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::guard::{Guard, kill_restored};
use super::pages::{NextLine, Transport, WAIT, carry, read_line, say};
use super::{Migrator, failed_with, image_link};
use crate::backend::criu::Criu;
use openmosix_hpc::protocol::AgentError;

/// The client's word that the image is there and the lazy pages may start.
const START: &str = "start";

fn expect_start(line: Result<String, AgentError>) -> Result<(), AgentError> {
    match line?.as_str() {
        START => Ok(()),
        other => Err(failed_with(format!(
            "the client said {other:?} where the post-copy start was due"
        ))),
    }
}

/// Runs the lazy pages of image `id` over `transport` (`next`: the client's next line
/// when the link is direct). With `image` (`Some(size hint)`) and a direct link the
/// image itself comes first on the link ([`super::image_link`]); else it came through
/// the client, which then says `start`.
pub fn receive<R: BufRead + Send + 'static>(
    m: &Migrator,
    criu: &Criu,
    id: &str,
    transport: Transport<R>,
    next: Option<NextLine<R>>,
    mut stdout: std::fs::File,
    image: Option<Option<u64>>,
) -> Result<(), AgentError> {
    let transport = match (transport, next, image) {
        (Transport::Direct(mut halves), Some(_), Some(size)) => {
            image_link::receive(m, id, &mut halves.0, size)?;
            Transport::Direct(halves)
        }
        (transport, next, _) => wait_for_start(transport, next)?,
    };
    let dump = m.image_dir(id)?.join("dump");
    if !dump.is_dir() {
        return Err(failed_with(format!(
            "image {id} has not arrived, so its lazy pages cannot start"
        )));
    }
    let (ours, theirs) = super::pages::criu_pair()?;
    let guard = match Guard::start(m, criu, id, theirs) {
        Ok(g) => g,
        Err(e) => {
            m.remove(id);
            return Err(e);
        }
    };
    if let Err(e) = image_link::mark_ready(m, id) {
        guard.stop_daemon();
        m.remove(id);
        return Err(e);
    }
    say(&mut stdout, "lazy-ready")?;
    serve(m, criu, id, transport, ours, guard, stdout)
}

/// The image came through the client: waits for its word to start.
fn wait_for_start<R: BufRead + Send + 'static>(
    transport: Transport<R>,
    next: Option<NextLine<R>>,
) -> Result<Transport<R>, AgentError> {
    Ok(match (transport, next) {
        (Transport::Relay(mut input), _) => {
            expect_start(read_line(&mut input))?;
            Transport::Relay(input)
        }
        (Transport::Direct(halves), Some(next)) => {
            let (line, _stdin) = next
                .recv_timeout(WAIT)
                .map_err(|_| failed_with("the client never said to start the lazy pages"))?;
            expect_start(line)?;
            Transport::Direct(halves)
        }
        (Transport::Direct(_), None) => {
            return Err(failed_with(
                "a direct page link without its control channel",
            ));
        }
    })
}

/// Carries the pages between the link and the daemon until every page has come; on a
/// failure the copy is killed and the image removed.
fn serve<R: BufRead + Send + 'static>(
    m: &Migrator,
    criu: &Criu,
    id: &str,
    transport: Transport<R>,
    ours: std::os::unix::net::UnixStream,
    guard: Guard,
    stdout: std::fs::File,
) -> Result<(), AgentError> {
    let dump = &m.image_dir(id)?.join("dump");
    let ours_ctl = ours
        .try_clone()
        .map_err(|e| failed_with(format!("page stream: {e}")))?;
    let moved = Arc::new(AtomicU64::new(0));
    let pumped = carry(transport, ours, stdout, &moved, false);
    if pumped.is_err() {
        // The daemon must not wait for pages that never come; its guard then kills
        // the copy.
        let _ = ours_ctl.shutdown(std::net::Shutdown::Both);
        guard.stop_daemon();
    }
    let served = guard.served(criu.limit());
    // A restore may still be writing its pid file in the folder.
    m.wait_restored(id);
    let failed = match (pumped, served) {
        (Ok(()), Ok(())) => None,
        (Err(e), Err((killed, _))) => Some((killed, format!("the page stream broke: {e}"))),
        (_, Err((killed, why))) => Some((killed, why)),
        (Err(e), Ok(())) => Some((false, format!("the page stream broke: {e}"))),
    };
    if let Some((killed, why)) = failed {
        if !killed {
            // The guard is gone: the copy is killed here.
            kill_restored(m, dump);
        }
        // Keep the daemon's log for the admin, beside the images.
        if let Ok(keep) = m.image_dir(&format!("{id}-lazy-pages")) {
            let _ = std::fs::copy(dump.join("lazy-pages.log"), keep.with_extension("log"));
        }
        m.remove(id);
        return Err(failed_with(format!(
            "post-copy failed before every page had come, so the copy here was killed: {why}"
        )));
    }
    m.remove(id);
    Ok(())
}
