//! Drawing `openmosix mon`: a snapshot of the cluster and the view state become lines —
//! title, cluster totals, one bar per node (or the total of nodes up), footer. The same
//! lines go to the terminal and, as plain text, to stdout with `--once`.

use openmosix_client::summary::{self, human_bytes};
use openmosix_client::{LinkState, NodeView};
use openmosix_hpc::model::NodeInfo;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::mon::{Figure, Mon};

/// Lines above the node rows (title, totals) and below them (footer).
pub const CHROME: usize = 3;
/// Columns of the text right of a bar.
const LABEL: usize = 24;

/// One frame: `rows` node rows at most (`None`: every node, for `--once`).
pub fn frame(mon: &Mon, nodes: &[NodeView], width: u16, rows: Option<usize>) -> Vec<Line<'static>> {
    let mut lines = vec![title(mon), totals(nodes)];
    let bar = usize::from(width)
        .saturating_sub(4 + 1 + 2 + 1 + LABEL)
        .max(10);
    let shown = if mon.total {
        total_rows(nodes, bar)
    } else {
        let scale = Scale::of(nodes);
        let (from, to) = match rows {
            Some(r) => (mon.top.min(nodes.len()), (mon.top + r).min(nodes.len())),
            None => (0, nodes.len()),
        };
        let mut body: Vec<Line<'static>> = nodes[from..to]
            .iter()
            .map(|n| node_row(n, mon.figure, &scale, bar))
            .collect();
        let footer = if nodes.len() > to - from {
            format!(
                "nodes {}-{} of {} · ↑ ↓ PgUp PgDn scroll · q quits",
                from + 1,
                to,
                nodes.len()
            )
        } else {
            format!("{} nodes · q quits", nodes.len())
        };
        body.push(Line::styled(footer, Style::new().fg(Color::DarkGray)));
        body
    };
    lines.extend(shown);
    lines
}

/// A frame as plain text, one line each, trailing blanks trimmed.
pub fn plain(lines: &[Line<'_>]) -> String {
    let mut out = String::new();
    for line in lines {
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

fn title(mon: &Mon) -> Line<'static> {
    let what = if mon.total {
        "total of nodes up"
    } else {
        mon.figure.name()
    };
    Line::from(vec![
        Span::styled(
            format!("openmosix mon · {what}"),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            "   keys: l s m u c t ↑ ↓ q",
            Style::new().fg(Color::DarkGray),
        ),
    ])
}

fn totals(nodes: &[NodeView]) -> Line<'static> {
    let s = summary::summarize(nodes);
    Line::from(format!(
        "{} of {} nodes up · efficiency {:.0} % · load {:.0} % · mem {}/{}",
        s.up,
        s.nodes,
        s.efficiency,
        s.load_percent,
        human_bytes(s.mem_used),
        human_bytes(s.mem_total),
    ))
}

/// The largest speed and CPU count of the nodes, against which those bars are drawn.
struct Scale {
    speed: u32,
    cpus: u32,
}

impl Scale {
    fn of(nodes: &[NodeView]) -> Scale {
        let infos = || nodes.iter().filter_map(|n| n.info.as_ref());
        Scale {
            speed: infos().map(|i| i.speed).max().unwrap_or(0).max(1),
            cpus: infos().map(|i| i.cpus).max().unwrap_or(0).max(1),
        }
    }
}

/// The share of the bar to fill and the text beside it.
fn figure(info: &NodeInfo, figure: Figure, scale: &Scale) -> (f64, String) {
    match figure {
        Figure::Load => (
            f64::from(summary::load_percent(info)) / 100.0,
            format!("{:.0}", info.load),
        ),
        Figure::Speed => (
            f64::from(info.speed) / f64::from(scale.speed),
            info.speed.to_string(),
        ),
        Figure::Memory => (
            f64::from(summary::mem_used_fraction(info)),
            format!(
                "{} / {}",
                human_bytes(info.tmem.saturating_sub(info.mem)),
                human_bytes(info.tmem)
            ),
        ),
        Figure::Util => (info.util / 100.0, format!("{:.0} %", info.util)),
        Figure::Cpus => (
            f64::from(info.cpus) / f64::from(scale.cpus),
            info.cpus.to_string(),
        ),
    }
}

fn node_row(node: &NodeView, which: Figure, scale: &Scale, bar: usize) -> Line<'static> {
    let id = Span::raw(format!("{:>4} ", node.id));
    match (node.state, &node.info) {
        (LinkState::Up, Some(info)) => {
            let (share, label) = figure(info, which, scale);
            let filled = ((share.clamp(0.0, 1.0) * bar as f64).round() as usize).min(bar);
            Line::from(vec![
                id,
                Span::raw("["),
                Span::styled("|".repeat(filled), Style::new().fg(bar_color(share))),
                Span::raw(" ".repeat(bar - filled)),
                Span::raw("] "),
                Span::raw(label),
            ])
        }
        (state, _) => {
            let word = match state {
                LinkState::Connecting => "connecting".to_owned(),
                _ => match &node.reason {
                    Some(r) => format!("DOWN: {r}"),
                    None => "DOWN".to_owned(),
                },
            };
            // Down rows take the label's columns too: the reason is what matters.
            let width = bar + 3 + LABEL;
            let text: String = format!("[ {word} ").chars().take(width - 1).collect();
            let text = format!("{text:<w$}]", w = width - 1);
            let style = match state {
                LinkState::Connecting => Style::new().fg(Color::Yellow),
                _ => Style::new().fg(Color::Red).add_modifier(Modifier::REVERSED),
            };
            Line::from(vec![id, Span::styled(text, style)])
        }
    }
}

fn bar_color(share: f64) -> Color {
    if share >= 0.9 {
        Color::Red
    } else if share >= 0.6 {
        Color::Yellow
    } else {
        Color::Green
    }
}

/// `t`: one bar for the nodes up out of all, then the nodes that are not.
fn total_rows(nodes: &[NodeView], bar: usize) -> Vec<Line<'static>> {
    let up = nodes.iter().filter(|n| n.state == LinkState::Up).count();
    let share = if nodes.is_empty() {
        0.0
    } else {
        up as f64 / nodes.len() as f64
    };
    let filled = ((share * bar as f64).round() as usize).min(bar);
    let mut lines = vec![Line::from(vec![
        Span::raw("  up ["),
        Span::styled("|".repeat(filled), Style::new().fg(Color::Green)),
        Span::raw(" ".repeat(bar - filled)),
        Span::raw(format!("] {up} of {} nodes up", nodes.len())),
    ])];
    let down: Vec<String> = nodes
        .iter()
        .filter(|n| n.state != LinkState::Up)
        .map(|n| n.id.to_string())
        .collect();
    if !down.is_empty() {
        lines.push(Line::styled(
            format!("  not up: {}", down.join(" ")),
            Style::new().fg(Color::Red),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmosix_testbed::fixtures::{node_info, node_view};

    fn cluster(n: u32) -> Vec<NodeView> {
        (1..=n)
            .map(|id| {
                let mut v = node_view(id);
                let mut info = node_info(id);
                info.load = f64::from(id % 3) * 100.0;
                v.info = Some(info);
                v
            })
            .collect()
    }

    #[test]
    fn a_page_of_a_large_cluster_with_a_down_node_fits_80_columns() {
        let mut nodes = cluster(256);
        nodes[9].state = LinkState::Down;
        nodes[9].reason = Some("cannot reach node 10".into());
        let mon = Mon {
            top: 5,
            page: 20,
            ..Mon::default()
        };
        let text = plain(&frame(&mon, &nodes, 80, Some(20)));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2 + 20 + 1, "{text}");
        assert!(lines[1].starts_with("255 of 256 nodes up"), "{text}");
        assert!(
            lines[2].starts_with("   6 ["),
            "the page starts at node 6:\n{text}"
        );
        assert_eq!(
            lines[22],
            "nodes 6-25 of 256 · ↑ ↓ PgUp PgDn scroll · q quits"
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{text}");
        let down = lines
            .iter()
            .find(|l| l.starts_with("  10 ["))
            .expect("node 10");
        assert!(down.contains("DOWN: cannot reach node 10"), "{down}");
        // Node 7 carries 100 per 2 CPUs: half its bar; node 6 none; node 8 all of it.
        let fill = |id: u32| {
            let row = lines
                .iter()
                .find(|l| l.starts_with(&format!("{id:>4} [")))
                .unwrap();
            row.matches('|').count()
        };
        assert_eq!((fill(6), fill(7), fill(8)), (0, 24, 48), "{text}");
    }

    #[test]
    fn the_total_view_counts_the_nodes_up() {
        let mut nodes = cluster(3);
        nodes[1].state = LinkState::Down;
        let mon = Mon {
            total: true,
            ..Mon::default()
        };
        let text = plain(&frame(&mon, &nodes, 80, Some(20)));
        assert!(text.contains("] 2 of 3 nodes up"), "{text}");
        assert!(text.contains("not up: 2"), "{text}");
    }
}
