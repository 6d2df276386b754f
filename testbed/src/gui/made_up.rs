//! A made-up cluster as a window shows it on a working day, for layout tests and
//! screenshots without a network: four nodes (one down, one busy and blocked), a few
//! processes each, one of them a guest from another node.

use openmosix_client::{LinkState, NodeView};
use openmosix_gui::{Action, Outcome, StaticSource, Ticket};
use openmosix_hpc::model::{NodeId, NodeStatus, ProcInfo};

use crate::fixtures::{node_info, node_view, proc_info};

/// Node 1 idle, node 2 busy (load 75 on 2 CPUs, speed 2500, blocked, a quarter of its
/// memory free), node 3 down (connection refused), node 4 lightly loaded.
pub fn nodes() -> Vec<NodeView> {
    let mut busy = node_info(2);
    busy.load = 75.0;
    busy.util = 98.0;
    busy.speed = 2500;
    busy.status = NodeStatus::Blocked;
    busy.mem = 512 << 20;
    let mut light = node_info(4);
    light.load = 20.0;
    light.util = 30.0;
    vec![
        NodeView {
            info: Some(node_info(1)),
            ..node_view(1)
        },
        NodeView {
            info: Some(busy),
            ..node_view(2)
        },
        NodeView {
            state: LinkState::Down,
            reason: Some("connection refused".into()),
            ..node_view(3)
        },
        NodeView {
            info: Some(light),
            ..node_view(4)
        },
    ]
}

/// The source of [`nodes`].
pub fn source() -> StaticSource {
    StaticSource {
        nodes: nodes(),
        ..StaticSource::default()
    }
}

fn proc(node: NodeId, pid: i32, ppid: i32, uid: u32, cmd: &str) -> ProcInfo {
    ProcInfo {
        ppid,
        uid,
        utime: 18_100,
        vsize: 363_315_200,
        rss: 17_930_000,
        ..proc_info(pid, node, cmd)
    }
}

/// What runs where: init and a shell with a build on node 1, a raytracer's guests on
/// node 2 (one from node 1), a daemon on node 4; node 3 is down.
pub fn procs() -> Vec<(NodeId, Vec<ProcInfo>)> {
    let mut guest = proc(
        2,
        50,
        1,
        1000,
        "/usr/local/povray/bin/x-pvmpov +I scene.pov",
    );
    guest.home = 1;
    guest.home_pid = 1809;
    guest.nmigs = 1;
    guest.state = 'R';
    let mut locked = proc(1, 300, 1, 0, "/usr/sbin/lockd --hold");
    locked.cantmove = "it holds a file lock".into();
    vec![
        (
            1,
            vec![
                proc(1, 1, 0, 0, "/sbin/init"),
                proc(1, 100, 1, 1000, "-bash"),
                proc(1, 200, 100, 1000, "make -j4 world"),
                locked,
            ],
        ),
        (
            2,
            vec![
                guest,
                proc(
                    2,
                    51,
                    1,
                    1000,
                    "/usr/local/povray/bin/x-pvmpov +I scene.pov",
                ),
                proc(2, 70, 1, 0, "/usr/sbin/sshd -D"),
            ],
        ),
        (4, vec![proc(4, 80, 1, 0, "/usr/sbin/cron -f")]),
    ]
}

/// The answers to the process-list requests `source` recorded after the first `from`
/// actions (a [`StaticSource`]'s ticket is the action's place, from 1), from [`procs`].
pub fn answer_procs(source: &StaticSource, from: usize) -> Vec<(Ticket, Outcome)> {
    let actions = source
        .actions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let all = procs();
    actions
        .into_iter()
        .enumerate()
        .skip(from)
        .filter_map(|(i, action)| {
            let Action::Procs { node } = action else {
                return None;
            };
            let list = all
                .iter()
                .find(|(n, _)| *n == node)
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            Some((
                (i + 1) as Ticket,
                Outcome::Procs {
                    node,
                    result: Ok(list),
                },
            ))
        })
        .collect()
}
