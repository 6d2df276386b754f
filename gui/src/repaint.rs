//! Coalesced repaints: the workstation stays idle however many nodes report.
//!
//! Every node reports about once a second, so a cluster of N nodes changes N times a
//! second; a repaint per change cost a 20-node window more than half a core (software
//! rendering under Xvfb, docs/benchmarks.md). Changes only mark the window dirty
//! ([`Dirty::mark`]); one task per source wakes the window at once for the first change
//! after a quiet spell, then at most once every [`REPAINT_EVERY`] while changes keep
//! coming, and always once more after the last change of a burst, so nothing is left
//! unshown. Input does not pass through here: egui repaints on input at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// The shortest time between two repaints that changes of the source ask for: a lamp or a
/// bar shows a change within this long.
pub const REPAINT_EVERY: Duration = Duration::from_millis(500);

/// How a change asks egui for a frame: `request_repaint_after` this long, not
/// `request_repaint`, which draws two frames ("to give some things time to settle", egui's
/// `request_repaint_after`): new figures need one, and every frame is drawn in software
/// under Xvfb.
pub const ONE_FRAME: Duration = Duration::from_millis(1);

/// The window has something new to show; cheap to mark from any thread or task, any
/// number of times.
#[derive(Debug, Clone, Default)]
pub struct Dirty(Arc<Notify>);

impl Dirty {
    /// Something changed: the window will be woken (at once, or within `every` of the
    /// last wake).
    pub fn mark(&self) {
        // One stored permit at most: many marks between two wakes are one wake.
        self.0.notify_one();
    }
}

/// Starts, on `runtime`, the task that wakes the window (`wake`, e.g. egui's
/// `request_repaint`) for the changes marked on the returned [`Dirty`]: at once after a
/// quiet spell, at most once every `every` while they keep coming. It runs until the
/// runtime shuts down.
pub fn spawn_waker(
    runtime: &tokio::runtime::Handle,
    every: Duration,
    wake: impl Fn() + Send + 'static,
) -> Dirty {
    let dirty = Dirty::default();
    let notify = Arc::clone(&dirty.0);
    runtime.spawn(async move {
        loop {
            notify.notified().await;
            wake();
            // Marks in the meantime leave one permit: the next wake comes right after.
            tokio::time::sleep(every).await;
        }
    });
    dirty
}

/// Marks `dirty` for every change `changes` announces, until its sender is gone.
pub fn spawn_forwarder(
    runtime: &tokio::runtime::Handle,
    mut changes: tokio::sync::watch::Receiver<u64>,
    dirty: Dirty,
) {
    runtime.spawn(async move {
        while changes.changed().await.is_ok() {
            dirty.mark();
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;

    /// A waker over a real watch channel (as the cluster handle's) that records when it
    /// woke.
    fn counting(
        every: Duration,
    ) -> (
        tokio::sync::watch::Sender<u64>,
        Arc<Mutex<Vec<Instant>>>,
        tokio::runtime::Runtime,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let wakes: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let recorded = Arc::clone(&wakes);
        let dirty = spawn_waker(runtime.handle(), every, move || {
            recorded.lock().expect("wakes").push(Instant::now());
        });
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        spawn_forwarder(runtime.handle(), rx, dirty);
        (tx, wakes, runtime)
    }

    #[test]
    fn many_node_updates_wake_the_window_a_few_times_a_second_and_the_last_one_is_shown() {
        let every = Duration::from_millis(100);
        let (tx, wakes, _runtime) = counting(every);
        // 20 nodes reporting 50 times a second each for 2 s: 2000 changes.
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(2) {
            for _ in 0..20 {
                sent += 1;
                tx.send_replace(sent);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let last_change = Instant::now();
        std::thread::sleep(every * 4);
        let wakes = wakes.lock().expect("wakes").clone();
        let span = last_change - start;
        let most = (span.as_millis() / every.as_millis()) as usize + 2;
        assert!(
            wakes.len() <= most,
            "{} wakes for {sent} changes in {span:?}: more than one every {every:?}",
            wakes.len()
        );
        assert!(wakes.len() >= 5, "only {} wakes in {span:?}", wakes.len());
        assert!(
            wakes.windows(2).all(|w| w[1] - w[0] >= every),
            "two wakes closer than {every:?}: {wakes:?}"
        );
        assert!(
            wakes.last().is_some_and(|w| *w >= last_change),
            "the last change was never shown"
        );
    }

    #[test]
    fn a_change_after_a_quiet_spell_wakes_the_window_at_once() {
        let every = Duration::from_secs(2);
        let (tx, wakes, _runtime) = counting(every);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            wakes.lock().expect("wakes").is_empty(),
            "woke with no change"
        );
        let changed = Instant::now();
        tx.send_replace(1);
        let deadline = changed + Duration::from_secs(1);
        while wakes.lock().expect("wakes").is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let wakes = wakes.lock().expect("wakes").clone();
        assert_eq!(wakes.len(), 1, "one change, {} wakes", wakes.len());
        assert!(
            wakes[0] - changed < Duration::from_secs(1),
            "the change waited {:?} for its repaint",
            wakes[0] - changed
        );
    }
}
