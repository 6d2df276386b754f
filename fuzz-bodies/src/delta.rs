//! The client's reading of a pushed process-list delta (protocol 2): [`apply`] of a peer's
//! delta to the list the client holds.

use openmosix_hpc::bytes::BytesOrText;
use openmosix_hpc::delta::{ProcsDelta, apply, diff};
use openmosix_hpc::model::ProcInfo;

/// The list the client holds: a few processes, ordered by pid, with gaps.
fn held() -> Vec<ProcInfo> {
    [1, 2, 5, 9, 40, 41, 300, 4096]
        .into_iter()
        .map(|pid| ProcInfo {
            pid,
            ppid: 1,
            state: 'S',
            utime: u64::try_from(pid).unwrap_or(0) * 3,
            cmdline: BytesOrText::from(format!("job {pid}").as_str()),
            comm: BytesOrText::from("job"),
            where_: 1,
            home: 1,
            home_pid: pid,
            ..ProcInfo::default()
        })
        .collect()
}

/// A delta from a peer, applied to the held list: refused, it leaves the list as it
/// was; taken, the list stays ordered by pid with each pid once, and the delta the
/// agent would send for that change (`diff`) gives the same list.
pub fn procs_delta(data: &[u8]) {
    let Ok(delta) = serde_json::from_slice::<ProcsDelta>(data) else {
        return;
    };
    let before = held();
    let mut list = before.clone();
    match apply(&mut list, &delta) {
        Err(e) => {
            assert_eq!(list, before, "a refused delta ({e}) changed the list");
            assert!(!e.to_string().is_empty(), "a refusal without a reason");
        }
        Ok(()) => {
            assert!(
                list.windows(2).all(|w| w[0].pid < w[1].pid),
                "the list is not ordered by pid, each once"
            );
            let mut again = before.clone();
            apply(&mut again, &diff(&before, &list)).expect("the agent's own delta applies");
            assert_eq!(again, list, "the agent's delta gives another list");
        }
    }
}
