//! Moving a process between two agents: the orchestration of DESIGN.md section 4.
//!
//! 1. pre-flight on the source (`can_migrate`) and the target (up, not blocked);
//! 2. pre-dump rounds for large processes, then the final dump with the tree stopped;
//! 3. the image streams from source to target over two side channels on the same SSH
//!    masters (through this client; the nodes need no access to each other);
//! 4. restore on the target, left stopped; the source commits (durably); the target
//!    releases the tree; only then the stopped original is removed.
//!
//! At no instant do two copies run (docs/migration.md has the state machine and the
//! faults): any failure before the source commits makes it resume the original and the
//! target discard its stopped copy; after the commit only the target's copy ever runs.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;

use super::ClientError;
use super::conn::AgentConn;
use super::transport::Aux;
use openmosix_hpc::model::{NodeId, NodeInfo, NodeStatus, ProcInfo};
use openmosix_hpc::protocol::{Carried, Request};

mod in_cluster;
mod pages;
mod postcopy;
mod report;
mod settle;
mod transfer;

use pages::PageStream;
pub use pages::Route;
pub use report::{Migrated, Progress};

pub use settle::{Unsettled, settle_handoffs};

pub use in_cluster::{
    Target, best_node, bring_in, expel_in, figures, kernel_moves, migrate_in, resolve, tell_home,
};
use transfer::transfer;

/// P.Haul's rule for pre-dump rounds: at most this many…
pub const MAX_ROUNDS: u32 = 8;
/// …stopping when a round writes at most this many pages…
pub const SMALL_ROUND_PAGES: u64 = 64;
/// …or writes more than 10 % more than the round before (the process dirties faster
/// than we copy).
pub const GROWTH_LIMIT: f64 = 1.10;
/// Processes smaller than this (resident) are dumped at once, without pre-dump.
pub const PREDUMP_MIN_RSS: u64 = 64 * 1024 * 1024;
/// How long a dump or restore may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the page pumps may take to end once the dump has answered.
const PUMPS_END: Duration = Duration::from_secs(30);

/// Migration settings.
#[derive(Debug, Clone, Copy)]
pub struct MigrateOptions {
    /// Allow pre-dump rounds for large processes.
    pub predump: bool,
    /// The move is the load balancer's: both agents log it as automatic.
    pub auto: bool,
    /// Hand over in one phase as agents before the handoff records did (the target
    /// runs the process at once): only to measure what the two phases cost.
    pub one_phase: bool,
    /// Stream the pages while the dump runs (`pages send|receive`), the default;
    /// false dumps to the source's disk first and streams the whole image after (also
    /// taken when pre-dump rounds ran, or when an agent is older).
    pub disk_less: bool,
    /// Never take the direct path between the nodes, always relay through here.
    pub relay: bool,
    /// Post-copy: the process runs on the target once all but its private memory has
    /// moved, and those pages follow as it touches them (criu's lazy pages;
    /// docs/migration.md says what it risks).
    pub postcopy: bool,
    /// Post-copy: send the small image through this client even where the direct page
    /// link could carry it, as before the link did: only to measure what it saves.
    pub image_via_client: bool,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            predump: true,
            auto: false,
            one_phase: false,
            disk_less: true,
            relay: false,
            postcopy: false,
            image_via_client: false,
        }
    }
}

#[derive(Debug, Deserialize)]
struct PredumpInfo {
    image: String,
    round: u32,
    pages: u64,
}

#[derive(Debug, Deserialize)]
struct DumpInfo {
    image: String,
    bytes: u64,
}

#[derive(Debug, Deserialize)]
struct Prepared {
    image: String,
}

#[derive(Debug, Deserialize)]
struct Restored {
    pid: i32,
    /// Where the target kept the image: `memory` or `disk` (older agents: not said).
    #[serde(default)]
    images: Option<String>,
}

fn say(progress: Option<&mpsc::UnboundedSender<Progress>>, p: Progress) {
    if let Some(tx) = progress {
        let _ = tx.send(p);
    }
}

/// Moves `pid` from the node behind `src` to the node behind `dst`.
pub async fn migrate(
    src: &AgentConn,
    dst: &AgentConn,
    pid: i32,
    options: MigrateOptions,
    progress: Option<&mpsc::UnboundedSender<Progress>>,
) -> Result<Migrated, ClientError> {
    let start = Instant::now();
    let mover = Mover {
        src,
        dst,
        pid,
        from: src.hello().node_id,
        to: dst.hello().node_id,
        options,
        progress,
    };
    say(progress, Progress::Checking);
    let (p, src_aux, dst_aux) = mover.preflight().await?;
    if options.postcopy {
        return mover.post_copy(&p, src_aux, dst_aux, start).await;
    }
    let predump = options.predump && src.readiness().await?.predump;
    let (image, rounds) = if predump && p.rss >= PREDUMP_MIN_RSS {
        mover.predump().await?
    } else {
        (None, 0)
    };

    let disk_less = image.is_none() && options.disk_less && mover.disk_less();
    let (image, stream) = if disk_less {
        let (id, stream) = mover.open_pages(src_aux, dst_aux, p.rss).await?;
        (Some(id), Some(stream))
    } else {
        (image, None)
    };
    let (route, relayed_because) = stream.as_ref().map_or((Route::Relayed, None), |s| {
        (s.route, s.relayed_because.clone())
    });

    say(progress, Progress::Freeze);
    let freeze = Instant::now();
    let (dump, pages) = mover.dump(image, stream, p.rss).await?;
    let dump_ms = u64::try_from(freeze.elapsed().as_millis()).unwrap_or(u64::MAX);
    let page_bytes = pages
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .copied()
        .unwrap_or(0);
    let two_phase = !options.one_phase && mover.two_phase();
    let restored = mover
        .restore(&p, &dump, src_aux, dst_aux, two_phase, pages)
        .await?;
    let new_pid = restored.pid;
    let handover = Instant::now();
    if two_phase {
        mover.hand_over(&dump.image, new_pid).await?;
    }
    let handover_ms = if two_phase {
        u64::try_from(handover.elapsed().as_millis()).unwrap_or(u64::MAX)
    } else {
        0
    };
    let freeze_ms = u64::try_from(freeze.elapsed().as_millis()).unwrap_or(u64::MAX);
    mover.remove_original(dump.image, new_pid).await?;
    Ok(Migrated {
        from: mover.from,
        to: mover.to,
        old_pid: pid,
        new_pid,
        freeze_ms,
        total_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        handover_ms,
        dump_ms,
        image_via: None,
        bytes: dump.bytes + page_bytes,
        mode: if disk_less { "disk-less" } else { "disk" }.into(),
        route,
        relayed_because,
        target_images: restored.images,
        rounds,
        home: (p.home, p.home_pid),
    })
}

/// One migration under way: both ends, the process, and where progress goes. Each phase
/// is one method, called in order by [`migrate`].
struct Mover<'a> {
    src: &'a AgentConn,
    dst: &'a AgentConn,
    pid: i32,
    from: NodeId,
    to: NodeId,
    options: MigrateOptions,
    progress: Option<&'a mpsc::UnboundedSender<Progress>>,
}

impl<'a> Mover<'a> {
    /// The source can dump the process and the target take it; the process, and the
    /// side channels of both ends.
    async fn preflight(&self) -> Result<(ProcInfo, &'a Aux, &'a Aux), ClientError> {
        let (src, dst, from, to) = (self.src, self.dst, self.from, self.to);
        let ends: std::collections::BTreeMap<NodeId, &AgentConn> = [(from, src), (to, dst)].into();
        settle::settle_among(&ends).await;
        let p: ProcInfo = src
            .request(Request::CanMigrate { pid: self.pid, to })
            .await?;
        let target: NodeInfo = dst.request(Request::Node).await?;
        match target.status {
            NodeStatus::Blocked => return Err(cannot(format!("node {to} blocks arriving guests"))),
            NodeStatus::Off => return Err(cannot(format!("node {to} is out of the pool"))),
            NodeStatus::Up => {}
        }
        // Agents still running criu's checks answer once they have ended.
        let (dst_ready, src_ready) = tokio::try_join!(dst.readiness(), src.readiness())?;
        if !dst_ready.migration.available {
            return Err(cannot(format!(
                "node {to} cannot restore processes: {}",
                dst_ready.migration.detail
            )));
        }
        if !src_ready.migration.available {
            return Err(cannot(format!(
                "node {from} cannot dump processes: {}",
                src_ready.migration.detail
            )));
        }
        if target.mem < p.rss {
            return Err(cannot(format!(
                "node {to} has {} MiB free, the process needs {} MiB",
                target.mem >> 20,
                p.rss >> 20
            )));
        }
        let (Some(src_aux), Some(dst_aux)) = (src.aux(), dst.aux()) else {
            return Err(cannot("this connection cannot stream images".into()));
        };
        Ok((p, src_aux, dst_aux))
    }

    /// Pre-dump rounds while the process runs: the last round's image and how many
    /// rounds ran. A failed round resumes the process (stopped by the rounds before).
    async fn predump(&self) -> Result<(Option<String>, u32), ClientError> {
        let mut image: Option<String> = None;
        let mut rounds = 0;
        let mut last: Option<u64> = None;
        while rounds < MAX_ROUNDS {
            let asked = Request::Predump {
                pid: self.pid,
                image: image.clone(),
                to: Some(self.to),
            };
            let r: PredumpInfo = match self.src.request_within(asked, STEP_TIMEOUT).await {
                Ok(r) => r,
                Err(e) => {
                    if let Some(i) = image {
                        let _ = self
                            .src
                            .request::<serde_json::Value>(Request::Resume { image: i })
                            .await;
                    }
                    return Err(e);
                }
            };
            rounds = r.round;
            image = Some(r.image);
            say(
                self.progress,
                Progress::PreDump {
                    round: r.round,
                    pages: r.pages,
                },
            );
            let grew = last.is_some_and(|l| r.pages as f64 > l as f64 * GROWTH_LIMIT);
            if r.pages <= SMALL_ROUND_PAGES || grew {
                break;
            }
            last = Some(r.pages);
        }
        Ok((image, rounds))
    }

    /// Whether both agents' page pumps carry a post-copy image on a direct link.
    fn image_link(&self) -> bool {
        self.src.hello().postcopy_image_link && self.dst.hello().postcopy_image_link
    }

    /// Whether both agents take page streams (older ones dump to disk).
    fn disk_less(&self) -> bool {
        let has = |c: &AgentConn, op: &str| c.hello().ops.iter().any(|o| o == op);
        has(self.src, "prepare") && has(self.dst, "prepare")
    }

    /// Prepares the image on the source and opens its page stream to the target. A
    /// stream that cannot open lets the prepared process go.
    async fn open_pages(
        &self,
        src_aux: &Aux,
        dst_aux: &Aux,
        rss: u64,
    ) -> Result<(String, PageStream), ClientError> {
        let prepared: Prepared = self
            .src
            .request(Request::Prepare {
                pid: self.pid,
                to: self.to,
            })
            .await?;
        let image = prepared.image;
        let lazy = self.options.postcopy;
        let size = self.size_hint(rss);
        let direct = !self.options.relay;
        let image_first = lazy && direct && !self.options.image_via_client && self.image_link();
        match PageStream::open(src_aux, dst_aux, &image, direct, lazy, size, image_first).await {
            Ok(stream) => Ok((image, stream)),
            Err(e) => {
                let _ = self
                    .src
                    .request::<serde_json::Value>(Request::Resume { image })
                    .await;
                Err(e)
            }
        }
    }

    /// The final dump, its pages carried by `stream` when there is one: the dump, and
    /// how the page stream ended (bytes carried). On a failed dump the source has
    /// resumed the tree itself.
    async fn dump(
        &self,
        image: Option<String>,
        stream: Option<PageStream>,
        total: u64,
    ) -> Result<(DumpInfo, Option<Result<u64, String>>), ClientError> {
        let pages = stream.is_some();
        let image_id = image.clone().unwrap_or_default();
        let runner = stream.map(|s| tokio::spawn(s.run(total, self.progress.cloned())));
        let dumped = self
            .src
            .request_within::<DumpInfo>(
                Request::Dump {
                    pid: self.pid,
                    image,
                    to: Some(self.to),
                    pages,
                    lazy: false,
                },
                STEP_TIMEOUT,
            )
            .await;
        let Some(runner) = runner else {
            return dumped.map(|d| (d, None));
        };
        let dump = match dumped {
            Ok(d) => d,
            Err(e) => {
                // The pumps end when the dump's socket closes; do not wait for them. Pages
                // that reached the target go: unsaid `keep` (node to node), or this word.
                runner.abort();
                let discard = Request::Discard {
                    image: image_id.clone(),
                };
                let _ = self.dst.request::<serde_json::Value>(discard).await;
                return Err(e);
            }
        };
        let abort = runner.abort_handle();
        let carried = match tokio::time::timeout(PUMPS_END, runner).await {
            Ok(Ok(Ok(carried))) => carried.keep().await.map_err(|e| e.to_string()),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(e)) => Err(format!("the page stream task failed: {e}")),
            Err(_) => {
                // Killing the task closes the pumps' side channels.
                abort.abort();
                Err(format!(
                    "the page pumps did not end within {PUMPS_END:?} of the dump"
                ))
            }
        };
        Ok((dump, Some(carried)))
    }

    /// The target's `restore` of `image` for process `p` (held with `hold`, lazy pages
    /// with `lazy`), carrying what the source kept for it.
    fn restore_request(&self, p: &ProcInfo, image: &str, hold: bool, lazy: bool) -> Request {
        Request::Restore {
            image: image.to_owned(),
            from: self.from,
            home: p.home,
            home_pid: p.home_pid,
            nmigs: p.nmigs,
            carried: Carried {
                run: p.run.clone(),
                mask: p.mask,
                candidate: p.candidate,
                auto: self.options.auto,
            },
            hold,
            lazy,
        }
    }

    /// What the target is told of an image's size (`bytes`), when it keeps images that
    /// fit in memory (older agents take no `--size`).
    fn size_hint(&self, bytes: u64) -> Option<u64> {
        self.dst.hello().memory_images.then_some(bytes)
    }

    /// Whether both agents speak the two-phase handoff (older ones restore running and
    /// finish without a commit).
    fn two_phase(&self) -> bool {
        let has = |c: &AgentConn, op: &str| c.hello().ops.iter().any(|o| o == op);
        has(self.src, "commit") && has(self.dst, "release")
    }

    /// Streams the dumped image to the target and restores it there (stopped with
    /// `hold`): the new pid. Any failure makes the source resume the original.
    async fn restore(
        &self,
        p: &ProcInfo,
        dump: &DumpInfo,
        src_aux: &Aux,
        dst_aux: &Aux,
        hold: bool,
        pages: Option<Result<u64, String>>,
    ) -> Result<Restored, ClientError> {
        let image = &dump.image;
        let moved = async {
            let onto_pages = match pages {
                Some(Err(e)) => return Err(failed(e)),
                Some(Ok(carried)) => Some(carried),
                None => None,
            };
            transfer(
                src_aux,
                dst_aux,
                image,
                dump.bytes,
                onto_pages,
                self.size_hint(dump.bytes),
                self.progress,
            )
            .await?;
            say(self.progress, Progress::Restore);
            let r: Restored = self
                .dst
                .request_within(self.restore_request(p, image, hold, false), STEP_TIMEOUT)
                .await?;
            Ok::<Restored, ClientError>(r)
        }
        .await;
        let Err(e) = moved else { return moved };
        say(self.progress, Progress::Resuming);
        if let Err(r) = self
            .src
            .request::<serde_json::Value>(Request::Resume {
                image: image.clone(),
            })
            .await
        {
            return Err(ClientError::Protocol(format!(
                "{e}; and resuming it on node {} failed too: {r} (it is stopped there until an agent of node {} settles the move, which the next connection to it does)",
                self.from, self.from
            )));
        }
        if hold {
            // The target may hold a restored copy (an answer lost on the way).
            let discard = Request::Discard {
                image: image.clone(),
            };
            let _ = self.dst.request::<serde_json::Value>(discard).await;
        }
        Err(e)
    }

    /// Both trees are stopped, the target's restored: the source commits, then the
    /// target runs its copy. A commit that fails is checked (a commit whose answer was
    /// lost still counts), and a move that was not committed is called off on both ends.
    async fn hand_over(&self, image: &str, new_pid: i32) -> Result<(), ClientError> {
        let (from, to) = (self.from, self.to);
        let commit = Request::Commit {
            image: image.to_owned(),
            to,
            new_pid,
        };
        if let Err(e) = self
            .src
            .request_within::<serde_json::Value>(commit, STEP_TIMEOUT)
            .await
        {
            self.after_failed_commit(image, e).await?;
        }
        let release = Request::Release {
            image: image.to_owned(),
        };
        self.dst
            .request_within::<serde_json::Value>(release, STEP_TIMEOUT)
            .await
            .map_err(|e| {
                // Post-copy: the copy can only run if its page stream ends whole; the
                // source decides by its end of the stream (docs/migration.md).
                let then = if self.options.postcopy {
                    format!(
                        "it waits stopped there; node {from} decides by its end of the page stream: whole, the copy runs as soon as node {to} answers; cut, the original runs on at node {from}"
                    )
                } else {
                    format!(
                        "it waits stopped there and runs as soon as node {to} answers (node {from} keeps the decision)"
                    )
                };
                failed(format!(
                    "the move of process {} to node {to} is committed, but node {to} did not release it: {e}; {then}",
                    self.pid
                ))
            })?;
        Ok(())
    }

    /// The commit failed with `e`: whether it happened anyway decides. `Ok`: it did (go
    /// on and release); `Err`: it did not, and both ends were called off where they
    /// could be reached.
    async fn after_failed_commit(&self, image: &str, e: ClientError) -> Result<(), ClientError> {
        let (from, to) = (self.from, self.to);
        say(self.progress, Progress::Resuming);
        let resume = Request::Resume {
            image: image.to_owned(),
        };
        match self.src.request::<serde_json::Value>(resume).await {
            Ok(_) => {
                let discard = Request::Discard {
                    image: image.to_owned(),
                };
                let _ = self.dst.request::<serde_json::Value>(discard).await;
                Err(e)
            }
            // Refused: the move is committed, the target's copy is the one.
            Err(ClientError::Agent(a)) if a.message.contains("is committed") => Ok(()),
            Err(r) => Err(failed(format!(
                "{e}; node {from} could not be asked whether the move was committed ({r}): process {} waits stopped on node {from} and on node {to} until node {from} answers, then one copy runs",
                self.pid
            ))),
        }
    }

    /// The process runs on the target: the source removes its stopped original.
    async fn remove_original(&self, image: String, new_pid: i32) -> Result<(), ClientError> {
        let (from, to) = (self.from, self.to);
        self.finish(image, new_pid, false).await.map_err(|e| {
            ClientError::Protocol(format!(
                "the process runs on node {to} as {new_pid}, but its stopped original on node {from} could not be removed: {e}"
            ))
        })?;
        Ok(())
    }

    /// Tells the source how the move ended (`finish`): the copy runs on the target as
    /// `new_pid` (the stopped original goes), or `copy_lost` (the original runs on).
    async fn finish(
        &self,
        image: String,
        new_pid: i32,
        copy_lost: bool,
    ) -> Result<serde_json::Value, ClientError> {
        let finish = Request::Finish {
            image,
            pid: self.pid,
            to: self.to,
            new_pid,
            auto: self.options.auto,
            copy_lost,
        };
        self.src.request_within(finish, STEP_TIMEOUT).await
    }
}

fn cannot(message: String) -> ClientError {
    ClientError::Agent(openmosix_hpc::protocol::AgentError::new(
        openmosix_hpc::protocol::ErrorKind::CannotMigrate,
        message,
    ))
}

fn failed(message: String) -> ClientError {
    ClientError::Agent(openmosix_hpc::protocol::AgentError::new(
        openmosix_hpc::protocol::ErrorKind::MigrationFailed,
        message,
    ))
}
