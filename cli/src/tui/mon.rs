//! The state of `openmosix mon` apart from drawing: the figure shown, the total view,
//! the scroll position, and what each key does to them.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The figure the bars show (mosmon's keys: `l`, `s`, `m`, `u`; `c` for CPUs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// openMosix load per CPU.
    Load,
    /// Speed, relative to the fastest node.
    Speed,
    /// Used memory of the node's total.
    Memory,
    /// CPU utilisation.
    Util,
    /// Number of CPUs, relative to the node with most.
    Cpus,
}

impl Figure {
    /// The figure's name in the title line.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Load => "load",
            Figure::Speed => "speed",
            Figure::Memory => "memory (used/total)",
            Figure::Util => "utilization",
            Figure::Cpus => "CPUs",
        }
    }
}

/// What the loop does after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Leave the monitor.
    Quit,
    /// The view changed: draw again.
    Redraw,
    /// Nothing changed.
    Same,
}

/// The monitor's view state.
#[derive(Debug, Clone)]
pub struct Mon {
    /// The figure the bars show.
    pub figure: Figure,
    /// `t`: show the total of nodes up instead of one bar per node.
    pub total: bool,
    /// The first node row shown (scrolling a large cluster).
    pub top: usize,
    /// How many node rows fit on the screen (set when drawing).
    pub page: usize,
}

impl Default for Mon {
    fn default() -> Self {
        Mon {
            figure: Figure::Load,
            total: false,
            top: 0,
            page: 1,
        }
    }
}

impl Mon {
    /// Applies one key; `nodes` is the number of nodes in the cluster.
    pub fn key(&mut self, key: KeyEvent, nodes: usize) -> Flow {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let before = (self.figure, self.total, self.top);
        match key.code {
            KeyCode::Char('c') if ctrl => return Flow::Quit,
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => return Flow::Quit,
            KeyCode::Char('l') => self.show(Figure::Load),
            KeyCode::Char('s') => self.show(Figure::Speed),
            KeyCode::Char('m') => self.show(Figure::Memory),
            KeyCode::Char('u') => self.show(Figure::Util),
            KeyCode::Char('c') => self.show(Figure::Cpus),
            KeyCode::Char('t') => self.total = !self.total,
            KeyCode::Up => self.top = self.top.saturating_sub(1),
            KeyCode::Down => self.top += 1,
            KeyCode::PageUp => self.top = self.top.saturating_sub(self.page.max(1)),
            KeyCode::PageDown => self.top += self.page.max(1),
            KeyCode::Home => self.top = 0,
            KeyCode::End => self.top = nodes,
            _ => {}
        }
        self.clamp(nodes);
        if before == (self.figure, self.total, self.top) {
            Flow::Same
        } else {
            Flow::Redraw
        }
    }

    fn show(&mut self, figure: Figure) {
        self.figure = figure;
        self.total = false;
    }

    /// Keeps the scroll position within the cluster: the last page ends at the last node.
    pub fn clamp(&mut self, nodes: usize) {
        self.top = self.top.min(nodes.saturating_sub(self.page.max(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(mon: &mut Mon, code: KeyCode, nodes: usize) -> Flow {
        mon.key(KeyEvent::new(code, KeyModifiers::NONE), nodes)
    }

    #[test]
    fn keys_switch_figures_and_scroll_within_the_cluster() {
        let mut mon = Mon {
            page: 20,
            ..Mon::default()
        };
        assert_eq!(press(&mut mon, KeyCode::Char('m'), 256), Flow::Redraw);
        assert_eq!(mon.figure, Figure::Memory);
        assert_eq!(press(&mut mon, KeyCode::Char('m'), 256), Flow::Same);
        press(&mut mon, KeyCode::Char('t'), 256);
        assert!(mon.total);
        press(&mut mon, KeyCode::Char('u'), 256);
        assert!(!mon.total, "a figure key leaves the total view");
        press(&mut mon, KeyCode::PageDown, 256);
        assert_eq!(mon.top, 20);
        press(&mut mon, KeyCode::End, 256);
        assert_eq!(mon.top, 236, "the last page ends at the last node");
        press(&mut mon, KeyCode::Down, 256);
        assert_eq!(mon.top, 236);
        press(&mut mon, KeyCode::Up, 256);
        assert_eq!(mon.top, 235);
        assert_eq!(press(&mut mon, KeyCode::Up, 3), Flow::Redraw);
        assert_eq!(mon.top, 0, "a cluster that fits does not scroll");
        assert_eq!(press(&mut mon, KeyCode::Char('q'), 3), Flow::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(mon.key(ctrl_c, 3), Flow::Quit);
    }
}
