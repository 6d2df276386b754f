//! `openmosix top` in the terminal: the process lists read once a second over the
//! nodes' live channels (the process box's poll), the actions carried out by the client
//! library on tasks of their own, and a loop that draws when a round of lists is in, a
//! key or a resize arrived, or an action reported — never waiting on a node itself.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use openmosix_client::migrate::{MigrateOptions, Target, migrate_in};
use openmosix_client::{ClusterHandle, LinkState, actions};
use openmosix_hpc::model::{NodeId, ProcInfo};
use openmosix_hpc::protocol::Request;
use ratatui::crossterm::event::{Event, KeyEventKind};
use ratatui::widgets::Paragraph;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};

use super::table;
use super::term::{Screen, events};
use super::top::{Command, Flow, Top};

/// How often the process lists are read (as the process box does).
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// After the first list of a round, how long to wait for the others before drawing.
const GATHER: Duration = Duration::from_millis(200);

/// What the tasks report to the loop.
#[derive(Debug)]
enum Msg {
    /// A node's process list (or why not).
    Procs(NodeId, Result<Vec<ProcInfo>, String>),
    /// A phase of a running migration, in words.
    Progress(String),
    /// An action ended: its sentence, and the process to select afterwards.
    Done(Result<String, String>, Option<(NodeId, i32)>),
}

/// The nodes whose lists are read: `only`, or every node that is up.
pub fn wanted(handle: &ClusterHandle, only: Option<NodeId>) -> Vec<NodeId> {
    match only {
        Some(n) => vec![n],
        None => handle
            .nodes()
            .into_iter()
            .filter(|v| v.state == LinkState::Up)
            .map(|v| v.id)
            .collect(),
    }
}

/// Reads one node's process list.
pub async fn list(handle: &ClusterHandle, node: NodeId) -> Result<Vec<ProcInfo>, String> {
    handle
        .request::<Vec<ProcInfo>>(node, Request::Procs)
        .await
        .map_err(|e| format!("node {node}: {e}"))
}

/// Runs `top` until `q`, Ctrl-C or a signal.
pub async fn run_top(handle: Arc<ClusterHandle>, only: Option<NodeId>) -> Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut screen = Screen::open()?;
    let mut keys = events();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut top = Top::default();
    let mut poll = interval(POLL_EVERY);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pending: BTreeSet<NodeId> = BTreeSet::new();
    let mut dirty = true;
    let mut gather: Option<Instant> = None;
    loop {
        if dirty {
            draw(&mut screen, &mut top, &handle)?;
            dirty = false;
            gather = None;
        }
        tokio::select! {
            _ = poll.tick() => {
                let nodes = wanted(&handle, only);
                top.keep_nodes(&nodes);
                for node in nodes {
                    if pending.insert(node) {
                        let (h, tx) = (Arc::clone(&handle), tx.clone());
                        tokio::spawn(async move {
                            let _ = tx.send(Msg::Procs(node, list(&h, node).await));
                        });
                    }
                }
            }
            Some(msg) = rx.recv() => match msg {
                Msg::Procs(node, result) => {
                    pending.remove(&node);
                    top.take_list(node, result, std::time::Instant::now());
                    if pending.is_empty() {
                        dirty = true;
                    } else if gather.is_none() {
                        gather = Some(Instant::now() + GATHER);
                    }
                }
                Msg::Progress(text) => {
                    top.say(text, false);
                    dirty = true;
                }
                Msg::Done(result, follow) => {
                    match result {
                        Ok(text) => top.say(text, false),
                        Err(text) => top.say(text, true),
                    }
                    if follow.is_some() {
                        top.selected = follow;
                    }
                    // The lists changed: read them again now.
                    poll.reset_immediately();
                    dirty = true;
                }
            },
            () = sleep_until(gather.unwrap_or_else(Instant::now)), if gather.is_some() => {
                dirty = true;
            }
            ev = keys.recv() => match ev {
                Some(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    match top.key(key) {
                        Flow::Quit => break,
                        Flow::Redraw => dirty = true,
                        Flow::Same => {}
                        Flow::Act(command) => {
                            top.say(starting(&command), false);
                            act(Arc::clone(&handle), command, tx.clone());
                            dirty = true;
                        }
                    }
                }
                Some(Event::Resize(..)) => dirty = true,
                Some(_) => {}
                None => break,
            },
            _ = term.recv() => break,
            _ = hup.recv() => break,
            _ = int.recv() => break,
        }
    }
    Ok(())
}

fn draw(screen: &mut Screen, top: &mut Top, handle: &ClusterHandle) -> Result<()> {
    let Some(term) = screen.0.as_mut() else {
        return Ok(());
    };
    let nodes = handle.nodes();
    term.draw(|f| {
        let area = f.area();
        let page = usize::from(area.height)
            .saturating_sub(table::CHROME)
            .max(1);
        let lines = table::frame(top, &nodes, area.width, Some(page));
        f.render_widget(Paragraph::new(lines), area);
    })?;
    Ok(())
}

/// The status line while an action runs.
fn starting(command: &Command) -> String {
    match command {
        Command::Signal(node, pid, s) => {
            format!(
                "sending {} to {pid} on node {node}…",
                format!("{s:?}").to_uppercase()
            )
        }
        Command::Renice(node, pid, n) => format!("renicing {pid} on node {node} to {n}…"),
        Command::Migrate(node, pid, to) => {
            let to = match to {
                Target::Node(n) => format!("node {n}"),
                Target::Home => "its home node".to_owned(),
                Target::Best => "the best node".to_owned(),
            };
            format!("migrating {pid} from node {node} to {to}…")
        }
        Command::Lock(node, pid, lock) => {
            format!(
                "{} {pid} on node {node}…",
                if *lock { "locking" } else { "unlocking" }
            )
        }
    }
}

/// Carries out `command` on a task; its phases and end come back on `tx`.
fn act(handle: Arc<ClusterHandle>, command: Command, tx: mpsc::UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let h = &*handle;
        let (result, follow) = match command {
            Command::Signal(node, pid, s) => (actions::signal(h, node, &[pid], s).await, None),
            Command::Renice(node, pid, n) => (
                actions::renice(h, node, pid, n)
                    .await
                    .map_err(|e| e.to_string()),
                None,
            ),
            Command::Lock(node, pid, lock) => (
                actions::set_lock(h, node, pid, lock)
                    .await
                    .map_err(|e| e.to_string()),
                None,
            ),
            Command::Migrate(node, pid, to) => migrate(h, node, pid, to, &tx).await,
        };
        let _ = tx.send(Msg::Done(result, follow));
    });
}

/// Moves a process, saying each phase; on success the moved process is selected.
async fn migrate(
    handle: &ClusterHandle,
    node: NodeId,
    pid: i32,
    to: Target,
    tx: &mpsc::UnboundedSender<Msg>,
) -> (Result<String, String>, Option<(NodeId, i32)>) {
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let say = tx.clone();
    let forward = tokio::spawn(async move {
        while let Some(p) = prx.recv().await {
            let text = format!(
                "migrating {pid} from node {node}: {}",
                crate::migrate::describe(&p)
            );
            let _ = say.send(Msg::Progress(text));
        }
    });
    let result = migrate_in(handle, node, pid, to, MigrateOptions::default(), Some(&ptx)).await;
    drop(ptx);
    let _ = forward.await;
    match result {
        Ok(m) => (
            Ok(format!(
                "process {pid} moved from node {} to node {} (now pid {}, frozen {} ms)",
                m.from, m.to, m.new_pid, m.freeze_ms
            )),
            Some((m.to, m.new_pid)),
        ),
        Err(e) => (
            Err(format!("process {pid} stays on node {node}: {e}")),
            None,
        ),
    }
}
