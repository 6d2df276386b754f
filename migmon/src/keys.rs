//! The monitor without a mouse: Tab, Shift+Tab and the arrow keys move the keyboard focus
//! from square to square (egui's own focus order and directions); with a square focused, a
//! node's number (typed digit by digit) or PageDown/PageUp choose the target penguin, Enter
//! sends the process there, H sends it home and Escape forgets the target. Like the mouse,
//! the keys only record a [`Command`]; the window applies it after drawing.

use egui::{Key, Ui};
use openmosix_hpc::model::NodeId;

use crate::circles::Square;
use crate::monitor::{Command, KeptFocus, MigMon};

/// Digits typed within this many seconds of each other make one node number.
const TYPE_AHEAD_SECS: f64 = 1.0;

/// The line that says which keys do what (shown under the status line).
pub const HELP: &str = "keys: Tab / arrows choose a process · its node's number or \
                        PageDown / PageUp choose the target penguin · Enter sends it there · \
                        H sends it home · Esc forgets the target";

/// The keys typed into a node number, and when the last one was typed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Typed {
    digits: String,
    at: f64,
}

const DIGITS: [(Key, char); 10] = [
    (Key::Num0, '0'),
    (Key::Num1, '1'),
    (Key::Num2, '2'),
    (Key::Num3, '3'),
    (Key::Num4, '4'),
    (Key::Num5, '5'),
    (Key::Num6, '6'),
    (Key::Num7, '7'),
    (Key::Num8, '8'),
    (Key::Num9, '9'),
];

impl MigMon {
    /// The keyboard's part of a frame: `focused` is the square that has the keyboard focus
    /// (if any) and `ids` the penguins in circle order. Returns what the keys asked for.
    pub(crate) fn keys(
        &mut self,
        ui: &Ui,
        focused: Option<&Square>,
        ids: &[NodeId],
    ) -> Option<Command> {
        if ui.input(|i| i.key_pressed(Key::Escape)) {
            self.target = None;
            self.typed = Typed::default();
            self.focus = KeptFocus::default();
        }
        self.target = self.target.filter(|t| ids.contains(t));
        let square = focused?;
        let (digits, next, previous, enter, home) = ui.input(|i| {
            let plain = !i.modifiers.any();
            let digits: String = DIGITS
                .iter()
                .filter(|(k, _)| plain && i.key_pressed(*k))
                .map(|(_, c)| *c)
                .collect();
            (
                digits,
                plain && i.key_pressed(Key::PageDown),
                plain && i.key_pressed(Key::PageUp),
                plain && i.key_pressed(Key::Enter),
                plain && i.key_pressed(Key::H),
            )
        });
        for d in digits.chars() {
            self.type_digit(d, ids);
        }
        if next || previous {
            self.target = Some(step(ids, self.target.unwrap_or(square.at), next));
        }
        if home {
            return Some(Command::Home {
                square: square.clone(),
            });
        }
        if !enter {
            return None;
        }
        match self.target {
            Some(onto) => Some(Command::Send {
                square: square.clone(),
                onto,
            }),
            None => {
                self.status = format!(
                    "pid {}: choose a node first (type its number or press PageDown)",
                    square.pid
                );
                None
            }
        }
    }

    /// Takes one typed digit: with the digits typed just before, the number of a node
    /// becomes the target; a number no node has starts again from this digit.
    fn type_digit(&mut self, d: char, ids: &[NodeId]) {
        if self.time - self.typed.at > TYPE_AHEAD_SECS {
            self.typed.digits.clear();
        }
        self.typed.at = self.time;
        self.typed.digits.push(d);
        let node = |s: &str| s.parse::<NodeId>().ok().filter(|n| ids.contains(n));
        if let Some(n) = node(&self.typed.digits) {
            self.target = Some(n);
        } else {
            self.typed.digits = d.to_string();
            match node(&self.typed.digits) {
                Some(n) => self.target = Some(n),
                None => self.status = format!("there is no node {d}"),
            }
        }
    }
}

/// The penguin after (or before) `from` in `ids`, round the circle.
fn step(ids: &[NodeId], from: NodeId, forward: bool) -> NodeId {
    let Some(i) = ids.iter().position(|&n| n == from) else {
        return ids.first().copied().unwrap_or(from);
    };
    let len = ids.len();
    let j = if forward {
        (i + 1) % len
    } else {
        (i + len - 1) % len
    };
    ids[j]
}

#[cfg(test)]
mod tests {
    use super::step;

    #[test]
    fn page_keys_go_round_the_circle() {
        let ids = [1, 2, 5];
        assert_eq!(step(&ids, 1, true), 2);
        assert_eq!(step(&ids, 5, true), 1);
        assert_eq!(step(&ids, 1, false), 5);
        assert_eq!(step(&ids, 9, true), 1);
    }
}
