//! The state of `openmosix top` apart from drawing and I/O: every node's latest process
//! list with the CPU share computed between two lists, the sort key, the filter, the
//! selected process, the prompt being typed, the status line, and what each key does.

use std::collections::BTreeMap;
use std::time::Instant;

use openmosix_client::migrate::Target;
use openmosix_hpc::model::{NodeId, ProcInfo, Signal};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Clock ticks per second of /proc's utime (USER_HZ, 100 on every Linux architecture
/// the suite runs on).
const TICKS: f64 = 100.0;

/// The order of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// CPU share, busiest first.
    Cpu,
    /// Resident memory, largest first.
    Memory,
    /// Process id.
    Pid,
    /// Node, then process id.
    Node,
}

impl Sort {
    /// The key's name in the title line.
    pub fn name(self) -> &'static str {
        match self {
            Sort::Cpu => "cpu",
            Sort::Memory => "memory",
            Sort::Pid => "pid",
            Sort::Node => "node",
        }
    }
}

/// What the keys type into, when not commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// `/`: the filter's text.
    Filter(String),
    /// `s`: the next key picks the signal.
    Signal,
    /// `r`: the nice value.
    Renice(String),
    /// `g`: the target of a migration (node id, `home`, `best`).
    Migrate(String),
}

/// A process of a node, as shown.
#[derive(Debug, Clone)]
pub struct Row {
    /// The node it was listed on.
    pub node: NodeId,
    /// What the agent said of it.
    pub p: ProcInfo,
    /// Its CPU share (user time) since the node's previous list, in percent of one CPU;
    /// `None` on the first list.
    pub cpu: Option<f64>,
}

/// One node's latest list.
#[derive(Debug, Clone, Default)]
pub struct NodeList {
    /// Its processes.
    pub rows: Vec<Row>,
    /// When it was read.
    pub at: Option<Instant>,
    /// Why the last request failed, if it did.
    pub error: Option<String>,
}

/// An action on the selected process, for the loop to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Send a signal.
    Signal(NodeId, i32, Signal),
    /// Set the nice value.
    Renice(NodeId, i32, i32),
    /// Migrate.
    Migrate(NodeId, i32, Target),
    /// Lock (true) or unlock.
    Lock(NodeId, i32, bool),
}

/// What the loop does after a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Flow {
    /// Leave.
    Quit,
    /// The view changed: draw again.
    Redraw,
    /// Nothing changed.
    Same,
    /// Carry out an action (and draw again).
    Act(Command),
}

/// The status line: a sentence, and whether it is a refusal or failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// The sentence.
    pub text: String,
    /// Drawn in red.
    pub error: bool,
}

/// The view state of `openmosix top`.
#[derive(Debug, Clone)]
pub struct Top {
    /// Row order.
    pub sort: Sort,
    /// Only processes whose command or pid contains this.
    pub filter: String,
    /// The prompt being typed, if any.
    pub prompt: Option<Prompt>,
    /// The selected process (node, pid); it stays selected across refreshes.
    pub selected: Option<(NodeId, i32)>,
    /// The first row shown.
    pub top: usize,
    /// How many rows fit (set when drawing).
    pub page: usize,
    /// The last action's sentence.
    pub status: Status,
    /// Every node's list.
    pub lists: BTreeMap<NodeId, NodeList>,
}

impl Default for Top {
    fn default() -> Self {
        Top {
            sort: Sort::Cpu,
            filter: String::new(),
            prompt: None,
            selected: None,
            top: 0,
            page: 1,
            status: Status::default(),
            lists: BTreeMap::new(),
        }
    }
}

/// The command line of a process as shown: its arguments, else its name.
pub fn command_of(p: &ProcInfo) -> String {
    let cmd = p.cmdline.to_string();
    if cmd.trim().is_empty() {
        format!("[{}]", p.comm)
    } else {
        cmd
    }
}

impl Top {
    /// Takes a node's new list (`at`: when it arrived), computing each process's CPU
    /// share against the previous list.
    pub fn take_list(&mut self, node: NodeId, result: Result<Vec<ProcInfo>, String>, at: Instant) {
        let entry = self.lists.entry(node).or_default();
        let procs = match result {
            Ok(p) => p,
            Err(e) => {
                entry.error = Some(e);
                return;
            }
        };
        let before: BTreeMap<i32, u64> = entry.rows.iter().map(|r| (r.p.pid, r.p.utime)).collect();
        let secs = entry
            .at
            .map(|t| at.saturating_duration_since(t).as_secs_f64())
            .filter(|s| *s > 0.05);
        entry.rows = procs
            .into_iter()
            .map(|p| {
                let cpu = secs
                    .zip(before.get(&p.pid))
                    .map(|(s, &u)| p.utime.saturating_sub(u) as f64 / TICKS / s * 100.0);
                Row { node, p, cpu }
            })
            .collect();
        entry.at = Some(at);
        entry.error = None;
    }

    /// Forgets the lists of nodes no longer shown.
    pub fn keep_nodes(&mut self, nodes: &[NodeId]) {
        self.lists.retain(|id, _| nodes.contains(id));
    }

    /// The rows shown, filtered and sorted.
    pub fn rows(&self) -> Vec<&Row> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&Row> = self
            .lists
            .values()
            .flat_map(|l| l.rows.iter())
            .filter(|r| {
                needle.is_empty()
                    || r.p.pid.to_string().contains(&needle)
                    || command_of(&r.p).to_lowercase().contains(&needle)
            })
            .collect();
        let key = |r: &&Row| (r.node, r.p.pid);
        match self.sort {
            Sort::Cpu => rows.sort_by(|a, b| {
                let (x, y) = (a.cpu.unwrap_or(0.0), b.cpu.unwrap_or(0.0));
                y.total_cmp(&x).then(key(a).cmp(&key(b)))
            }),
            Sort::Memory => rows.sort_by(|a, b| b.p.rss.cmp(&a.p.rss).then(key(a).cmp(&key(b)))),
            Sort::Pid => rows.sort_by_key(|r| (r.p.pid, r.node)),
            Sort::Node => rows.sort_by_key(key),
        }
        rows
    }

    /// The selected row's index among `rows`, selecting the first row when none is.
    pub fn cursor(&mut self, rows: &[&Row]) -> Option<usize> {
        let at = self
            .selected
            .and_then(|s| rows.iter().position(|r| (r.node, r.p.pid) == s));
        let at = at.or(if rows.is_empty() { None } else { Some(0) });
        self.selected = at.map(|i| (rows[i].node, rows[i].p.pid));
        at
    }

    /// Keeps the selected row on the page.
    pub fn scroll_to(&mut self, cursor: Option<usize>, rows: usize) {
        let page = self.page.max(1);
        if let Some(c) = cursor {
            if c < self.top {
                self.top = c;
            } else if c >= self.top + page {
                self.top = c + 1 - page;
            }
        }
        self.top = self.top.min(rows.saturating_sub(page));
    }

    /// Says `text` in the status line.
    pub fn say(&mut self, text: impl Into<String>, error: bool) {
        self.status = Status {
            text: text.into(),
            error,
        };
    }

    /// Applies one key.
    pub fn key(&mut self, key: KeyEvent) -> Flow {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return Flow::Quit;
        }
        if let Some(prompt) = self.prompt.take() {
            return self.prompt_key(prompt, key.code);
        }
        let rows = self.rows();
        let len = rows.len();
        let cursor = {
            let sel = self
                .selected
                .and_then(|s| rows.iter().position(|r| (r.node, r.p.pid) == s));
            sel.unwrap_or(0)
        };
        let chosen = rows.get(cursor).map(|r| (r.node, r.p.pid, r.p.lock));
        drop(rows);
        let page = self.page.max(1);
        let move_to = |to: usize| -> Option<usize> { (len > 0).then(|| to.min(len - 1)) };
        let target = match key.code {
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => return Flow::Quit,
            KeyCode::Char('c') => return self.sort_by(Sort::Cpu),
            KeyCode::Char('m') => return self.sort_by(Sort::Memory),
            KeyCode::Char('p') => return self.sort_by(Sort::Pid),
            KeyCode::Char('n') => return self.sort_by(Sort::Node),
            KeyCode::Char('/') => {
                self.prompt = Some(Prompt::Filter(self.filter.clone()));
                return Flow::Redraw;
            }
            KeyCode::Up => move_to(cursor.saturating_sub(1)),
            KeyCode::Down => move_to(cursor + 1),
            KeyCode::PageUp => move_to(cursor.saturating_sub(page)),
            KeyCode::PageDown => move_to(cursor + page),
            KeyCode::Home => move_to(0),
            KeyCode::End => move_to(len.saturating_sub(1)),
            code => return self.action_key(code, chosen),
        };
        let rows = self.rows();
        let before = self.selected;
        self.selected = target.map(|i| (rows[i].node, rows[i].p.pid));
        if before == self.selected {
            Flow::Same
        } else {
            Flow::Redraw
        }
    }

    fn sort_by(&mut self, sort: Sort) -> Flow {
        if self.sort == sort {
            return Flow::Same;
        }
        self.sort = sort;
        Flow::Redraw
    }

    /// The keys that act on the selected process.
    fn action_key(&mut self, code: KeyCode, chosen: Option<(NodeId, i32, bool)>) -> Flow {
        let acts = matches!(code, KeyCode::Char('s' | 'r' | 'g' | 'h' | 'b' | 'l'));
        if !acts {
            return Flow::Same;
        }
        let Some((node, pid, locked)) = chosen else {
            self.say("no process selected", true);
            return Flow::Redraw;
        };
        self.selected = Some((node, pid));
        match code {
            KeyCode::Char('s') => self.prompt = Some(Prompt::Signal),
            KeyCode::Char('r') => self.prompt = Some(Prompt::Renice(String::new())),
            KeyCode::Char('g') => self.prompt = Some(Prompt::Migrate(String::new())),
            KeyCode::Char('h' | 'b') => {
                let to = if code == KeyCode::Char('h') {
                    Target::Home
                } else {
                    Target::Best
                };
                return Flow::Act(Command::Migrate(node, pid, to));
            }
            _ => return Flow::Act(Command::Lock(node, pid, !locked)),
        }
        Flow::Redraw
    }

    /// A key while a prompt is open; Esc closes it, Enter carries it out.
    fn prompt_key(&mut self, prompt: Prompt, code: KeyCode) -> Flow {
        if code == KeyCode::Esc {
            return Flow::Redraw;
        }
        if let Prompt::Signal = prompt {
            let signal = match code {
                KeyCode::Char('s') => Signal::Stop,
                KeyCode::Char('c') => Signal::Cont,
                KeyCode::Char('t') => Signal::Term,
                KeyCode::Char('k') => Signal::Kill,
                _ => {
                    self.say("no signal sent (s STOP, c CONT, t TERM, k KILL)", true);
                    return Flow::Redraw;
                }
            };
            return match self.selected {
                Some((node, pid)) => Flow::Act(Command::Signal(node, pid, signal)),
                None => Flow::Redraw,
            };
        }
        let (mut text, wrap): (String, fn(String) -> Prompt) = match prompt {
            Prompt::Filter(t) => (t, Prompt::Filter),
            Prompt::Renice(t) => (t, Prompt::Renice),
            Prompt::Migrate(t) => (t, Prompt::Migrate),
            Prompt::Signal => return Flow::Redraw,
        };
        match code {
            KeyCode::Enter => {
                let done = wrap(std::mem::take(&mut text));
                return self.enter(done);
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) if text.chars().count() < 40 => text.push(c),
            _ => {}
        }
        self.prompt = Some(wrap(text));
        Flow::Redraw
    }

    /// Enter in a prompt.
    fn enter(&mut self, prompt: Prompt) -> Flow {
        let Some((node, pid)) = self.selected else {
            if let Prompt::Filter(text) = prompt {
                self.filter = text.trim().to_owned();
                self.top = 0;
            }
            return Flow::Redraw;
        };
        match prompt {
            Prompt::Filter(text) => {
                self.filter = text.trim().to_owned();
                self.top = 0;
                Flow::Redraw
            }
            Prompt::Renice(text) => match text.trim().parse::<i32>() {
                Ok(n) if (-20..=19).contains(&n) => Flow::Act(Command::Renice(node, pid, n)),
                _ => {
                    self.say(
                        format!("{:?} is not a nice value (-20 to 19)", text.trim()),
                        true,
                    );
                    Flow::Redraw
                }
            },
            Prompt::Migrate(text) => {
                let word = match text.trim() {
                    "h" => "home",
                    "b" => "best",
                    other => other,
                };
                match word.parse::<Target>() {
                    Ok(Target::Node(to)) if to == node => {
                        self.say(format!("process {pid} already runs on node {node}"), true);
                        Flow::Redraw
                    }
                    Ok(to) => Flow::Act(Command::Migrate(node, pid, to)),
                    Err(e) => {
                        self.say(e, true);
                        Flow::Redraw
                    }
                }
            }
            Prompt::Signal => Flow::Redraw,
        }
    }
}

#[cfg(test)]
#[path = "top_tests.rs"]
mod tests;
