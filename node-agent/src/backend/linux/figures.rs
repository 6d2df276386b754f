//! The node's figures the linux backend measures itself: its speed (calibrated once),
//! the openMosix load and the CPU utilisation.
//!
//! The openMosix load is recomputed every decay interval as
//! `load = load * d + running * 100 * (1 - d)` with `d = slow_decay / 1000`, where
//! `running` counts the runnable processes this node's /proc shows (its own PID
//! namespace on the testbed), so one process that always wants a CPU tends to 100.

use std::time::{Duration, Instant};

use super::LinuxBackend;
use crate::backend::Result;
use openmosix_hpc::model::{NodeInfo, NodeStatus};

/// A 1 GHz Pentium III's score on [`calibrate`]'s loop, which sets the scale of speed
/// 1000. An estimate: what matters is that speeds of nodes compare.
const PIII_STEPS_PER_SEC: f64 = 150_000_000.0;

/// Measures this machine's speed relative to a PIII/1GHz (= 1000) with a ~50 ms
/// integer loop on one core.
pub fn calibrate() -> u32 {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut steps: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(50) {
        for _ in 0..10_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x ^= x >> 17;
        }
        steps += 10_000;
        std::hint::black_box(x);
    }
    let per_sec = steps as f64 / start.elapsed().as_secs_f64();
    let speed = (per_sec / PIII_STEPS_PER_SEC * 1000.0).round() as u32;
    speed.clamp(1, 1_000_000)
}

impl LinuxBackend {
    /// Runnable processes in this node's /proc, not counting the agent itself: as the
    /// last listing counted them when it is less than a second old (a subscription with
    /// the list reads them every second anyway), else read now.
    pub(super) fn running(&self) -> u32 {
        if let Some((at, n)) = self.listed
            && at.elapsed() < Duration::from_secs(1)
        {
            return n;
        }
        let Ok(pids) = self.procfs.pids() else {
            return 0;
        };
        let n = pids
            .into_iter()
            .filter(|&p| p != self.self_pid)
            .filter_map(|p| self.procfs.stat_only(p).ok())
            .filter(|s| s.info.state == 'R' && !s.kthread)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Samples the CPU utilisation since the sample before.
    pub(super) fn sample_util(&mut self) {
        if let Ok((busy, total, _)) = self.procfs.cpu_times() {
            let (b0, t0) = self.last_cpu.unwrap_or((0, 0));
            let dt = total.saturating_sub(t0);
            if dt > 0 {
                let u = busy.saturating_sub(b0) as f64 / dt as f64 * 100.0;
                self.util = u.clamp(0.0, 100.0);
            }
            self.last_cpu = Some((busy, total));
        }
    }

    /// One decay interval has passed: the load decays towards the processes running now.
    pub(super) fn decay_load(&mut self) {
        let d = f64::from(self.state.admin.slow_decay.min(999)) / 1000.0;
        self.load = self.load * d + f64::from(self.running()) * 100.0 * (1.0 - d);
        self.sample_util();
    }

    /// The node's figures as they are now.
    pub(super) fn figures(&self) -> Result<NodeInfo> {
        let (tmem, rmem, mem) = self.procfs.meminfo()?;
        let admin = &self.state.admin;
        let status = if admin.off {
            NodeStatus::Off
        } else if admin.block {
            NodeStatus::Blocked
        } else {
            NodeStatus::Up
        };
        Ok(NodeInfo {
            id: self.node_id,
            cpus: self.cpus,
            speed: admin.speed,
            load: (self.load * 10.0).round() / 10.0,
            util: (self.util * 10.0).round() / 10.0,
            mem,
            rmem,
            tmem,
            status,
        })
    }
}
