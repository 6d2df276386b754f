//! Post-copy moves (`openmosix migrate --postcopy`, docs/migration.md "Post-copy"):
//! the source dumps all but the private memory (criu's lazy pages) and keeps the tree
//! frozen; that small image goes to the target, whose page pump starts `criu
//! lazy-pages`; the target restores, the source commits, the target runs the process;
//! its pages follow as it touches them, then all the others. The freeze is the
//! non-memory state only.
//!
//! The hazard: if the page stream fails after the target ran, the pages it never got
//! would read as zeros there. The target's pump then kills its copy, the source is told
//! (`finish` with `copy_lost`) and lets the original run on, and the result says what
//! was lost in one sentence.

use std::time::Instant;

use tokio::task::JoinHandle;

use super::pages::PageStream;
use super::{
    DumpInfo, Migrated, Mover, Progress, Restored, STEP_TIMEOUT, cannot, failed, say, transfer,
};
use crate::ClientError;
use crate::transport::Aux;
use openmosix_hpc::model::ProcInfo;
use openmosix_hpc::protocol::Request;

type Pages = JoinHandle<Result<u64, ClientError>>;

impl Mover<'_> {
    /// Moves the process post-copy; `start` is when the whole move began.
    pub(super) async fn post_copy(
        &self,
        p: &ProcInfo,
        src_aux: &Aux,
        dst_aux: &Aux,
        start: Instant,
    ) -> Result<Migrated, ClientError> {
        for (conn, node) in [(self.src, self.from), (self.dst, self.to)] {
            if !conn.hello().postcopy {
                return Err(cannot(format!(
                    "node {node} cannot take part in a post-copy move (its agent or criu lacks lazy pages)"
                )));
            }
        }
        if !self.disk_less() {
            return Err(cannot(
                "post-copy needs page streams, which an agent here is too old for".into(),
            ));
        }
        let (image, stream) = self.open_pages(src_aux, dst_aux, p.rss).await?;
        let (route, relayed_because) = (stream.route, stream.relayed_because.clone());
        say(self.progress, Progress::Freeze);
        let freeze = Instant::now();
        let dumped = self
            .src
            .request_within::<DumpInfo>(
                Request::Dump {
                    pid: self.pid,
                    image: Some(image),
                    to: Some(self.to),
                    pages: true,
                    lazy: true,
                },
                STEP_TIMEOUT,
            )
            .await;
        let dump = match dumped {
            Ok(d) => d,
            Err(e) => {
                // A failed dump resumed the tree on the source already.
                stream.abort().await;
                return Err(e);
            }
        };
        let (restored, pages) = self
            .restore_lazy(p, &dump, src_aux, dst_aux, stream)
            .await?;
        let new_pid = restored.pid;
        let handover = Instant::now();
        if let Err(e) = self.hand_over(&dump.image, new_pid).await {
            pages.abort();
            return Err(e);
        }
        let handover_ms = u64::try_from(handover.elapsed().as_millis()).unwrap_or(u64::MAX);
        let freeze_ms = u64::try_from(freeze.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The process runs on the target; its private memory follows.
        let carried = match tokio::time::timeout(STEP_TIMEOUT, pages).await {
            Ok(Ok(Ok(n))) => Ok(n),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(e)) => Err(format!("the page stream task failed: {e}")),
            Err(_) => Err(format!(
                "the pages did not all come within {STEP_TIMEOUT:?}"
            )),
        };
        let carried = match carried {
            Ok(n) => n,
            Err(why) => return Err(self.take_back(dump.image, new_pid, why).await),
        };
        self.remove_original(dump.image, new_pid).await?;
        Ok(Migrated {
            from: self.from,
            to: self.to,
            old_pid: self.pid,
            new_pid,
            freeze_ms,
            total_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            handover_ms,
            bytes: dump.bytes + carried,
            mode: "postcopy".into(),
            route,
            relayed_because,
            target_images: restored.images,
            rounds: 0,
            home: (p.home, p.home_pid),
        })
    }

    /// Sends the image (all but the private memory), starts the lazy pages on the
    /// target and restores there, stopped: the new pid, and the page stream carrying
    /// the pages from now on. Any failure makes the source resume the original.
    async fn restore_lazy(
        &self,
        p: &ProcInfo,
        dump: &DumpInfo,
        src_aux: &Aux,
        dst_aux: &Aux,
        mut stream: PageStream,
    ) -> Result<(Restored, Pages), ClientError> {
        let image = &dump.image;
        let sent = async {
            let size = self.size_hint(dump.bytes);
            transfer(
                src_aux,
                dst_aux,
                image,
                dump.bytes,
                None,
                size,
                self.progress,
            )
            .await?;
            stream.start_lazy().await.map_err(failed)
        }
        .await;
        if let Err(e) = sent {
            // Closing the pumps ends the source's criu, which leaves the tree to resume.
            stream.abort().await;
            return Err(self.call_off(image, e, false).await);
        }
        let (progress, total) = (self.progress.cloned(), p.rss);
        let pages = tokio::spawn(async move { stream.run(total, progress).await?.keep().await });
        say(self.progress, Progress::Restore);
        let restored = self
            .dst
            .request_within::<Restored>(self.restore_request(p, image, true, true), STEP_TIMEOUT)
            .await;
        match restored {
            Ok(r) => Ok((r, pages)),
            Err(e) => {
                pages.abort();
                let _ = pages.await;
                Err(self.call_off(image, e, true).await)
            }
        }
    }

    /// The move failed with `e` before the commit: the source resumes the original,
    /// the target (when it may hold a copy) discards it.
    async fn call_off(&self, image: &str, e: ClientError, discard: bool) -> ClientError {
        say(self.progress, Progress::Resuming);
        let resume = Request::Resume {
            image: image.to_owned(),
        };
        if let Err(r) = self.src.request::<serde_json::Value>(resume).await {
            return ClientError::Protocol(format!(
                "{e}; and resuming it on node {} failed too: {r} (it is stopped there until an agent of node {} settles the move, which the next connection to it does)",
                self.from, self.from
            ));
        }
        if discard {
            let discard = Request::Discard {
                image: image.to_owned(),
            };
            let _ = self.dst.request::<serde_json::Value>(discard).await;
        }
        e
    }

    /// The page stream broke (`why`) after the target ran: its pump killed the copy
    /// there; the source lets the original run on. The error says what was lost.
    async fn take_back(&self, image: String, new_pid: i32, why: String) -> ClientError {
        let (from, to) = (self.from, self.to);
        say(self.progress, Progress::Resuming);
        // The pump kills the copy itself; this is for a pump that was killed first.
        let kill = Request::Signal {
            pid: new_pid,
            signal: openmosix_hpc::model::Signal::Kill,
        };
        let _ = self.dst.request::<serde_json::Value>(kill).await;
        let finish = Request::Finish {
            image,
            pid: self.pid,
            to,
            new_pid,
            auto: self.options.auto,
            copy_lost: true,
        };
        match self
            .src
            .request_within::<serde_json::Value>(finish, STEP_TIMEOUT)
            .await
        {
            Ok(_) => failed(format!(
                "the post-copy page stream broke after the process had run on node {to} ({why}); its copy there was killed, and what it did there is lost"
            )),
            Err(e) => ClientError::Protocol(format!(
                "the post-copy page stream broke after process {} had run on node {to} ({why}), its copy there was killed, and node {from} could not let the original run on: {e}",
                self.pid
            )),
        }
    }
}
