//! The terminal side: raw mode and the alternate screen (restored on every exit — `q`,
//! Ctrl-C, SIGTERM, SIGHUP, and a panic through ratatui's hook), keys read on a thread of
//! their own, and a loop that draws only when the cluster's figures changed or a key or a
//! resize arrived.

use anyhow::{Context as _, Result};
use openmosix_client::ClusterHandle;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::crossterm::terminal;
use ratatui::widgets::Paragraph;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::bars;
use super::mon::{Flow, Mon};

/// The terminal in raw mode on the alternate screen; dropping it gives the shell's
/// screen back.
pub(super) struct Screen(pub(super) Option<DefaultTerminal>);

impl Screen {
    pub(super) fn open() -> Result<Screen> {
        match ratatui::try_init() {
            Ok(term) => Ok(Screen(Some(term))),
            Err(e) => {
                // Raw mode may be on although the alternate screen could not be entered.
                if terminal::is_raw_mode_enabled().unwrap_or(false) {
                    let _ = terminal::disable_raw_mode();
                }
                Err(e).context("this command needs a terminal (use --once)")
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // The terminal shows the cursor again when dropped; then leave raw mode and the
        // alternate screen.
        drop(self.0.take());
        ratatui::restore();
    }
}

/// Reads the terminal's events on a thread (crossterm's reads block) into a channel.
pub(super) fn events() -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs the monitor until `q`, Ctrl-C or a signal.
pub async fn run_mon(handle: &ClusterHandle) -> Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut changes = handle.changes();
    let mut screen = Screen::open()?;
    let mut keys = events();
    let mut mon = Mon::default();
    let mut dirty = true;
    loop {
        if dirty {
            draw(&mut screen, &mut mon, handle)?;
            dirty = false;
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                dirty = true;
            }
            ev = keys.recv() => match ev {
                Some(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    match mon.key(key, handle.nodes().len()) {
                        Flow::Quit => break,
                        Flow::Redraw => dirty = true,
                        Flow::Same => {}
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

fn draw(screen: &mut Screen, mon: &mut Mon, handle: &ClusterHandle) -> Result<()> {
    let Some(term) = screen.0.as_mut() else {
        return Ok(());
    };
    let nodes = handle.nodes();
    term.draw(|f| {
        let area = f.area();
        mon.page = usize::from(area.height).saturating_sub(bars::CHROME).max(1);
        mon.clamp(nodes.len());
        let lines = bars::frame(mon, &nodes, area.width, Some(mon.page));
        f.render_widget(Paragraph::new(lines), area);
    })?;
    Ok(())
}
