//! The admin switches of a linux node: kept in the agent's state file, where the
//! kernel backend writes /proc/hpc/admin.

use openmosix_hpc::model::{AdminChange, AdminState};
use openmosix_hpc::protocol::TuneInfo;

/// Applies one admin change (already validated) to the switches.
pub(super) fn apply(admin: &mut AdminState, change: &AdminChange) {
    match *change {
        AdminChange::Switch { switch, on } => switch.set(admin, on),
        AdminChange::Speed { speed } => admin.speed = speed,
        AdminChange::Decay {
            interval,
            slow,
            fast,
        } => {
            admin.decay_interval = interval;
            if let Some(s) = slow {
                admin.slow_decay = s;
            }
            if let Some(f) = fast {
                admin.fast_decay = f;
            }
        }
        AdminChange::Off { off } => admin.off = off,
    }
}

/// `gettune`, `getyard` and `getdecay` of a linux node, in words.
pub(super) fn tune(a: &AdminState) -> TuneInfo {
    TuneInfo {
        tune: "no kernel overhead parameters: the linux backend measures load itself".into(),
        yard: format!("speed {} (PIII/1GHz = 1000)", a.speed),
        decay: format!(
            "interval {} s, slow {}, fast {}",
            a.decay_interval, a.slow_decay, a.fast_decay
        ),
    }
}
