//! Moves that have ended but that the nodes' process lists may not show yet. The lists come
//! from the agents' watched lists, up to a second old: right after a move the source's list
//! can still hold the original and the target's lack the copy, and the window would draw
//! two squares for one process (or none). Until both lists agree with the move, they are
//! corrected here.

use openmosix_hpc::model::{NodeId, ProcInfo};

/// Lists from either node after which a move is taken as settled whatever they say (the
/// agents watch at 1 Hz: a few seconds).
const LISTS_AT_MOST: u8 = 6;

/// One ended move whose nodes' lists have not both caught up.
#[derive(Debug, Clone)]
pub(crate) struct Settling {
    from: NodeId,
    old_pid: i32,
    to: NodeId,
    /// The process as it runs on `to`.
    moved: ProcInfo,
    from_caught_up: bool,
    to_caught_up: bool,
    lists_left: u8,
}

impl Settling {
    pub(crate) fn new(from: NodeId, old_pid: i32, to: NodeId, moved: ProcInfo) -> Settling {
        Settling {
            from,
            old_pid,
            to,
            moved,
            from_caught_up: false,
            to_caught_up: false,
            lists_left: LISTS_AT_MOST,
        }
    }
}

/// Corrects `list`, just come from `node`, by the moves still settling, and forgets the
/// moves both of whose nodes' lists now show them.
pub(crate) fn correct(settling: &mut Vec<Settling>, node: NodeId, list: &mut Vec<ProcInfo>) {
    for s in settling.iter_mut() {
        if node == s.from {
            let before = list.len();
            list.retain(|p| p.pid != s.old_pid);
            s.from_caught_up = list.len() == before;
            s.lists_left = s.lists_left.saturating_sub(1);
        }
        if node == s.to {
            // A list from just after the restore has the copy, but not yet as a guest
            // from its home (the agent records that a moment later).
            s.to_caught_up = list
                .iter()
                .any(|p| p.pid == s.moved.pid && p.home == s.moved.home);
            if !s.to_caught_up {
                list.retain(|p| p.pid != s.moved.pid);
                list.push(s.moved.clone());
            }
            s.lists_left = s.lists_left.saturating_sub(1);
        }
    }
    settling.retain(|s| !(s.from_caught_up && s.to_caught_up) && s.lists_left > 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(pid: i32, home: NodeId, at: NodeId) -> ProcInfo {
        ProcInfo {
            pid,
            home,
            home_pid: if home == at { 0 } else { 400 },
            where_: at,
            ..ProcInfo::default()
        }
    }

    #[test]
    fn stale_lists_are_corrected_until_both_nodes_show_the_move() {
        let mut settling = vec![Settling::new(2, 400, 3, proc(77, 2, 3))];
        // Node 2's list from before the move still has the original.
        let mut two = vec![proc(1, 2, 2), proc(400, 2, 2)];
        correct(&mut settling, 2, &mut two);
        assert_eq!(two.iter().map(|p| p.pid).collect::<Vec<_>>(), [1]);
        // Node 3's list from before the move lacks the copy.
        let mut three = vec![proc(5, 3, 3)];
        correct(&mut settling, 3, &mut three);
        assert!(three.iter().any(|p| p.pid == 77 && p.home == 2));
        // One from just after the restore has it, but not yet as node 2's guest.
        let mut three = vec![proc(5, 3, 3), proc(77, 3, 3)];
        correct(&mut settling, 3, &mut three);
        assert_eq!(three.iter().filter(|p| p.pid == 77).count(), 1);
        assert!(three.iter().any(|p| p.pid == 77 && p.home == 2));
        assert_eq!(settling.len(), 1);
        // Both lists catch up: the move is settled and no longer touches lists.
        correct(&mut settling, 2, &mut vec![proc(1, 2, 2)]);
        correct(&mut settling, 3, &mut vec![proc(5, 3, 3), proc(77, 2, 3)]);
        assert!(settling.is_empty());
        let mut later = vec![proc(400, 2, 2)];
        correct(&mut settling, 2, &mut later);
        assert_eq!(later.len(), 1, "a settled move leaves a reused pid alone");
    }

    #[test]
    fn a_move_the_lists_never_show_is_dropped_after_a_few_lists() {
        let mut settling = vec![Settling::new(2, 400, 3, proc(77, 2, 3))];
        for _ in 0..LISTS_AT_MOST {
            correct(&mut settling, 2, &mut vec![proc(400, 2, 2)]);
        }
        assert!(settling.is_empty());
    }
}
