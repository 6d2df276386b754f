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
        // Resolved against the node by `set_yard`; nothing to apply as typed.
        AdminChange::Yard { .. } => {}
    }
}

/// Makes `yard` (PIII/1GHz units) the node's yardstick: the speed is rescaled so that it
/// stays the same processor measured against the new standard.
pub(super) fn set_yard(admin: &mut AdminState, yard: u32) {
    let speed = u64::from(admin.speed) * u64::from(admin.yard.max(1)) / u64::from(yard.max(1));
    admin.speed = u32::try_from(speed.clamp(1, 1_000_000)).unwrap_or(1_000_000);
    admin.yard = yard;
}

/// `gettune`, `getyard` and `getdecay` of a linux node, in words.
pub(super) fn tune(a: &AdminState) -> TuneInfo {
    TuneInfo {
        tune: "no kernel overhead parameters: the linux backend measures load itself".into(),
        yard: format!(
            "yardstick {} (PIII/1GHz = 1000); this node's speed {} against it",
            a.yard, a.speed
        ),
        decay: format!(
            "interval {} s, slow {}, fast {}",
            a.decay_interval, a.slow_decay, a.fast_decay
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_yardstick_rescales_the_speed() {
        let mut a = AdminState {
            speed: 3000,
            ..AdminState::default()
        };
        set_yard(&mut a, 1500);
        assert_eq!((a.yard, a.speed), (1500, 2000));
        set_yard(&mut a, 3000);
        assert_eq!((a.yard, a.speed), (3000, 1000));
        set_yard(&mut a, 1000);
        assert_eq!((a.yard, a.speed), (1000, 3000));
        assert!(tune(&a).yard.starts_with("yardstick 1000 "));
    }
}
