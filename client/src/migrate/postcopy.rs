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

use std::time::{Duration, Instant};

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

/// How long a failed linked post-copy waits for a restore still under way on the
/// target, to discard what it restored.
const LATE_RESTORE: Duration = Duration::from_secs(5);

/// How long the target may take to confirm that a copy with missing pages is killed.
const CONFIRM: Duration = Duration::from_secs(10);

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
            if !conn.readiness().await?.postcopy {
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
                    image: Some(image.clone()),
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
                let linked = stream.image_on_link;
                stream.abort().await;
                if linked {
                    // Its image may have reached the target on the link: dropped there.
                    let discard = Request::Discard { image };
                    let _ = self.dst.request::<serde_json::Value>(discard).await;
                }
                return Err(e);
            }
        };
        let dump_ms = u64::try_from(freeze.elapsed().as_millis()).unwrap_or(u64::MAX);
        let image_via = if stream.image_on_link {
            "link"
        } else {
            "client"
        };
        let (restored, pages) = if stream.image_on_link {
            self.restore_linked(p, &dump, stream).await?
        } else {
            self.restore_lazy(p, &dump, src_aux, dst_aux, stream)
                .await?
        };
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
            Ok(n) => {
                self.remove_original(dump.image, new_pid).await?;
                n
            }
            Err(why) if self.copy_killed(new_pid).await => {
                return Err(self.take_back(dump.image, new_pid, why).await);
            }
            Err(why) => {
                // The target cannot be reached to make sure its copy is gone: resuming
                // the original could run it twice. The source decides by the stream.
                self.decide_by_stream(dump.image, new_pid, why).await?;
                0
            }
        };
        Ok(Migrated {
            from: self.from,
            to: self.to,
            old_pid: self.pid,
            new_pid,
            freeze_ms,
            total_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            handover_ms,
            dump_ms,
            image_via: Some(image_via.into()),
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

    /// [`Mover::restore_lazy`] with the image on the direct link: the source's pump
    /// sends it as soon as the dump has written it, the target's pump starts the lazy
    /// pages when it is in, and the restore — sent at once — waits for them there.
    async fn restore_linked(
        &self,
        p: &ProcInfo,
        dump: &DumpInfo,
        mut stream: PageStream,
    ) -> Result<(Restored, Pages), ClientError> {
        let image = &dump.image;
        say(self.progress, Progress::Restore);
        let restore = self
            .dst
            .request_within::<Restored>(self.restore_request(p, image, true, true), STEP_TIMEOUT);
        tokio::pin!(restore);
        // Whether the restore's answer is still to come (a finished future is never
        // polled again).
        let mut pending = true;
        let outcome = {
            // One read of the pump's word, kept across both waits (a line read that
            // was dropped half-way would lose its bytes).
            let ready = stream.start_lazy();
            tokio::pin!(ready);
            tokio::select! {
                biased;
                said = &mut ready => match said {
                    Ok(()) => {
                        pending = false;
                        restore.as_mut().await
                    }
                    Err(e) => Err(failed(e)),
                },
                restored = &mut restore => {
                    pending = false;
                    match restored {
                        // Restored, but the pump's word failed: what it holds goes.
                        Ok(r) => ready.await.map(|()| r).map_err(failed),
                        Err(e) => Err(e),
                    }
                }
            }
        };
        match outcome {
            Ok(r) => {
                let (progress, total) = (self.progress.cloned(), p.rss);
                let pages =
                    tokio::spawn(async move { stream.run(total, progress).await?.keep().await });
                Ok((r, pages))
            }
            Err(e) => {
                // Closing the pumps ends the source's criu, which leaves the tree to
                // resume, and the target's lazy pages, whose guard kills any copy.
                stream.abort().await;
                let e = self.call_off(image, e, true).await;
                // A restore still under way there ends soon (its image is gone); a copy
                // it held is discarded too.
                let late = pending
                    && matches!(tokio::time::timeout(LATE_RESTORE, restore).await, Ok(Ok(_)));
                if late {
                    let discard = Request::Discard {
                        image: image.clone(),
                    };
                    let _ = self.dst.request::<serde_json::Value>(discard).await;
                }
                Err(e)
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

    /// After a broken page stream: whether the target's copy is surely gone. The pump
    /// kills it itself; this kills it too, for a pump that was killed first. `false`:
    /// the target did not answer, so its copy may run on.
    async fn copy_killed(&self, new_pid: i32) -> bool {
        let kill = Request::Signal {
            pid: new_pid,
            signal: openmosix_hpc::model::Signal::Kill,
        };
        let answer = self
            .dst
            .request_within::<serde_json::Value>(kill, CONFIRM)
            .await;
        // An agent's refusal ("no process …") is an answer too: the copy is gone.
        matches!(answer, Ok(_) | Err(ClientError::Agent(_)))
    }

    /// The page stream failed as heard here (`why`) and the target cannot be reached:
    /// the source decides by its own end of the stream, as it does with no client —
    /// whole (the copy has every page and runs on: the original is removed) or cut
    /// (the target's guard kills the copy: the original runs on).
    async fn decide_by_stream(
        &self,
        image: String,
        new_pid: i32,
        why: String,
    ) -> Result<(), ClientError> {
        let (from, to) = (self.from, self.to);
        match self.finish(image, new_pid, false).await {
            Ok(_) => Ok(()),
            Err(ClientError::Agent(a)) => Err(failed(format!(
                "node {to} could not be heard at the end of the post-copy page stream ({why}), and node {from}'s end of the stream says it broke: {}",
                a.message
            ))),
            Err(e) => Err(ClientError::Protocol(format!(
                "node {to} could not be heard at the end of the post-copy page stream ({why}), and node {from} could not be asked how the stream ended: {e}; node {from} decides by the stream when this connection ends (whole: the copy on node {to} runs; cut: the original runs on)"
            ))),
        }
    }

    /// The page stream broke (`why`) after the target ran: its pump killed the copy
    /// there; the source lets the original run on. The error says what was lost.
    async fn take_back(&self, image: String, new_pid: i32, why: String) -> ClientError {
        let (from, to) = (self.from, self.to);
        say(self.progress, Progress::Resuming);
        match self.finish(image, new_pid, true).await {
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
