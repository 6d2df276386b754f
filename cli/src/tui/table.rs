//! Drawing `openmosix top`: title, column heads, one row per process (the selected one
//! in reverse video), the selected process's details with why it cannot move, the status
//! line (or the prompt being typed) and the keys. The same lines go to the terminal and,
//! as plain text, to stdout with `--once`.

use openmosix_client::{LinkState, NodeView};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::top::{Prompt, Row, Top, command_of};

/// Lines around the process rows: title, heads; details, status, keys.
pub const CHROME: usize = 5;

/// The column heads; a row is laid out the same way by [`row`].
const HEADS: &str = "NODE     PID WHERE HOME NMIGS  CPU%    MEM S COMMAND";

/// The key line.
const KEYS: &str = "c m p n sort · / filter · s signal r renice g/h/b migrate l lock · q";

/// One frame, `width` columns wide: `page` process rows at most (`None`: every row,
/// for `--once`, without the selection, details and keys).
pub fn frame(
    top: &mut Top,
    nodes: &[NodeView],
    width: u16,
    page: Option<usize>,
) -> Vec<Line<'static>> {
    let width = usize::from(width);
    let rows = top.rows();
    let total = rows.len();
    let mut lines = vec![title(top, nodes, total, width)];
    lines.push(Line::styled(
        clip(HEADS, width),
        Style::new().add_modifier(Modifier::BOLD),
    ));
    let Some(page) = page else {
        lines.extend(rows.iter().map(|r| Line::raw(row(r, width))));
        return lines;
    };
    let owned: Vec<Row> = rows.into_iter().cloned().collect();
    let refs: Vec<&Row> = owned.iter().collect();
    let cursor = top.cursor(&refs);
    top.page = page.max(1);
    top.scroll_to(cursor, refs.len());
    let end = (top.top + page).min(refs.len());
    for (i, r) in refs.iter().enumerate().take(end).skip(top.top) {
        let text = format!("{:<width$}", row(r, width));
        if Some(i) == cursor {
            lines.push(Line::styled(
                text,
                Style::new().add_modifier(Modifier::REVERSED),
            ));
        } else {
            lines.push(Line::raw(text));
        }
    }
    for _ in end - top.top.min(end)..page {
        lines.push(Line::raw(""));
    }
    lines.push(details(cursor.map(|c| refs[c]), width));
    lines.push(status(top, width));
    lines.push(Line::styled(
        clip(KEYS, width),
        Style::new().fg(Color::DarkGray),
    ));
    lines
}

/// The first `width` characters of `text`.
fn clip(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}

fn title(top: &Top, nodes: &[NodeView], procs: usize, width: usize) -> Line<'static> {
    let up = nodes.iter().filter(|n| n.state == LinkState::Up).count();
    let mut text = format!(
        "openmosix top · {up} of {} nodes up · {procs} process{} · sort {}",
        nodes.len(),
        if procs == 1 { "" } else { "es" },
        top.sort.name()
    );
    if !top.filter.is_empty() {
        text.push_str(&format!(" · filter {:?}", top.filter));
    }
    let failed: Vec<String> = top
        .lists
        .iter()
        .filter(|(_, l)| l.error.is_some())
        .map(|(id, _)| id.to_string())
        .collect();
    let mut spans = vec![Span::styled(
        clip(&text, width),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if !failed.is_empty() {
        spans.push(Span::styled(
            clip(
                &format!(" · no list from {}", failed.join(" ")),
                width.saturating_sub(text.chars().count()),
            ),
            Style::new().fg(Color::Red),
        ));
    }
    Line::from(spans)
}

/// Memory in at most 6 columns.
fn mem(bytes: u64) -> String {
    const K: f64 = 1024.0;
    let b = bytes as f64;
    if b >= K * K * K {
        format!("{:.1}G", b / (K * K * K))
    } else if b >= K * K {
        format!("{:.1}M", b / (K * K))
    } else {
        format!("{:.0}K", b / K)
    }
}

/// One process, laid out under [`HEADS`], the command cut at `width`.
fn row(r: &Row, width: usize) -> String {
    let p = &r.p;
    let cpu = r.cpu.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
    let text = format!(
        "{:>4} {:>7} {:>5} {:>4} {:>5} {:>5} {:>6} {} {}",
        r.node,
        p.pid,
        p.where_,
        p.home,
        p.nmigs,
        cpu,
        mem(p.rss),
        p.state,
        command_of(p),
    );
    clip(&text, width)
}

/// The selected process: home pid, nice, lock, mask and why it cannot move.
fn details(r: Option<&Row>, width: usize) -> Line<'static> {
    let Some(r) = r else {
        return Line::raw("no process selected");
    };
    let p = &r.p;
    let mask = if p.mask.migfilter {
        format!(
            "{} {:#x}",
            if p.mask.migpolicy == 1 {
                "allow"
            } else {
                "deny"
            },
            p.mask.mignodes
        )
    } else {
        "off".to_owned()
    };
    let head = clip(
        &format!(
            "{} on node {}: home {}/{} nice {} mask {mask}",
            p.pid, r.node, p.home, p.home_pid, p.nice
        ),
        width,
    );
    match p.cannot_move() {
        Some(why) => Line::from(vec![
            Span::raw(head.clone()),
            Span::styled(
                clip(
                    &format!(" · cantmove: {why}"),
                    width.saturating_sub(head.chars().count()),
                ),
                Style::new().fg(Color::Yellow),
            ),
        ]),
        None => Line::raw(clip(&format!("{head} · can move"), width)),
    }
}

/// The prompt being typed, else the last action's sentence.
fn status(top: &Top, width: usize) -> Line<'static> {
    let ask = match &top.prompt {
        Some(Prompt::Filter(t)) => Some(format!("filter (command or pid, Enter): {t}_")),
        Some(Prompt::Signal) => Some("signal: s STOP, c CONT, t TERM, k KILL (Esc: none)".into()),
        Some(Prompt::Renice(t)) => Some(format!("nice value -20..19 (Enter): {t}_")),
        Some(Prompt::Migrate(t)) => Some(format!("migrate to node, home or best (Enter): {t}_")),
        None => None,
    };
    if let Some(ask) = ask {
        return Line::styled(clip(&ask, width), Style::new().fg(Color::Cyan));
    }
    let style = if top.status.error {
        Style::new().fg(Color::Red)
    } else {
        Style::new().fg(Color::Green)
    };
    Line::styled(clip(&top.status.text, width), style)
}

/// A frame as plain text, one line each, trailing blanks trimmed.
pub fn plain(lines: &[Line<'_>]) -> String {
    super::bars::plain(lines)
}
