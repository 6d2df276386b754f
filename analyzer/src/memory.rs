//! The memory overview (HOWTO 10.7.3): mem, rmem and tmem of every node, in MiB.
//!
//! mem is the free memory as openMosix sees it, rmem the free memory as Linux sees it,
//! tmem the node's total memory (a step line from its static data).

use egui_plot::PlotPoint;
use openmosix_store::query::NodeStatic;
use openmosix_store::{Bucket, Time};

use crate::lines::{MIB, Series, minmax_lines};

/// mem and rmem as min/max lines, tmem as steps over `from..=to`.
pub(crate) fn memory_series(
    buckets: &[Bucket],
    statics: &[NodeStatic],
    from: Time,
    to: Time,
    bucket: Time,
) -> Series {
    let main = minmax_lines(buckets, bucket, |b| {
        (b.min_mem as f64 / MIB, b.max_mem as f64 / MIB)
    });
    let second = minmax_lines(buckets, bucket, |b| {
        (b.min_rmem as f64 / MIB, b.max_rmem as f64 / MIB)
    });
    Series {
        main,
        second,
        third: vec![tmem_steps(statics, from, to)],
        ..Series::default()
    }
}

/// A step line of tmem over `from..=to` (empty without static data).
pub(crate) fn tmem_steps(statics: &[NodeStatic], from: Time, to: Time) -> Vec<PlotPoint> {
    let mut out = Vec::new();
    for (i, s) in statics.iter().enumerate() {
        let start = s.time.max(from) as f64;
        let end = statics.get(i + 1).map_or(to, |n| n.time.min(to)) as f64;
        let y = s.tmem as f64 / MIB;
        out.push(PlotPoint::new(start, y));
        out.push(PlotPoint::new(end.max(start), y));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(time: Time, tmem_mib: u64) -> NodeStatic {
        NodeStatic {
            time,
            cpus: 1,
            speed: 1000,
            tmem: tmem_mib << 20,
            status: "up".into(),
        }
    }

    #[test]
    fn tmem_is_a_step_line() {
        let p = tmem_steps(&[st(0, 1024), st(50, 2048)], 10, 100);
        let xy: Vec<(f64, f64)> = p.iter().map(|p| (p.x, p.y)).collect();
        assert_eq!(
            xy,
            vec![
                (10.0, 1024.0),
                (50.0, 1024.0),
                (50.0, 2048.0),
                (100.0, 2048.0)
            ]
        );
    }
}
