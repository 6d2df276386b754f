//! What every window program does at start: take its cluster from `--cluster`, `--map` or
//! `--discover` (else this machine), connect in the background, open its window, and
//! say why in one line when it cannot.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};
use openmosix_client::ClientOptions;
use openmosix_hpc::map::Cluster;

use serde::de::DeserializeOwned;

use crate::LiveCluster;
use crate::desktop::{self, Program};
use crate::remember::{self, Remember, Remembering};

/// The cluster options of the window programs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterArgs {
    /// A cluster file (TOML: node ids and ssh destinations; docs/cluster-files.md).
    #[arg(long, value_name = "FILE", env = "OPENMOSIX_CLUSTER")]
    pub cluster: Option<PathBuf>,
    /// An openmosix.map (HOWTO 4.4.2); nodes are reached by ssh at their addresses.
    #[arg(long, value_name = "FILE", conflicts_with = "cluster")]
    pub map: Option<PathBuf>,
    /// Take the nodes from auto-discovery on this interface (docs/discovery.md): nodes
    /// appear and disappear as their `openmosix-agent discover` starts and stops.
    #[arg(long, value_name = "IFACE", conflicts_with_all = ["cluster", "map"])]
    pub discover: Option<String>,
}

impl ClusterArgs {
    /// Whether a cluster is named (else the window shows this machine, or the cluster it
    /// showed last time).
    pub fn is_given(&self) -> bool {
        self.cluster.is_some() || self.map.is_some() || self.discover.is_some()
    }

    /// The cluster named, or this machine alone.
    pub fn load(&self) -> Result<Cluster> {
        if let Some(interface) = &self.discover {
            return Ok(Cluster::discovered(Some(interface)));
        }
        Ok(Cluster::load(self.cluster.as_deref(), self.map.as_deref())?)
    }

    /// Loads the cluster and starts connecting to it in the background.
    pub fn live(&self) -> Result<(Cluster, LiveCluster)> {
        let cluster = self.load()?;
        let source = LiveCluster::start(cluster.clone(), &ClientOptions::for_cluster(&cluster))
            .context("starting the background runtime")?;
        Ok((cluster, source))
    }

    /// What the window shows in its title: the file, or "this machine".
    pub fn name(&self) -> String {
        if let Some(interface) = &self.discover {
            return format!("discovery on {interface}");
        }
        self.cluster
            .as_ref()
            .or(self.map.as_ref())
            .map_or_else(|| "this machine".to_owned(), |p| p.display().to_string())
    }

    /// The same options for another program of the suite (absolute paths).
    pub fn to_args(&self) -> Result<Vec<OsString>> {
        if let Some(interface) = &self.discover {
            return Ok(vec!["--discover".into(), interface.into()]);
        }
        Ok(match (&self.cluster, &self.map) {
            (Some(c), _) => vec!["--cluster".into(), std::path::absolute(c)?.into()],
            (None, Some(m)) => vec!["--map".into(), std::path::absolute(m)?.into()],
            (None, None) => Vec::new(),
        })
    }
}

/// A window program's `main`: runs `run`, and turns its error into one line on stderr,
/// `PROGRAM: why`, and exit status 1.
pub fn main(program: &str, run: impl FnOnce() -> Result<()>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {}", openmosix_hpc::errors::sentence(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Opens a native window of `size` running `app`, until it is closed. `program` names it
/// to the desktop, whatever the title says: its app id (Wayland's app id, X11's
/// `WM_CLASS`) leads the desktop to the program's `.desktop` entry, and the window
/// carries the suite's icon.
pub fn run_window(
    program: Program,
    title: &str,
    size: [f32; 2],
    app: impl eframe::App + 'static,
) -> Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(title)
            .with_inner_size(size)
            .with_app_id(program.id)
            .with_icon(desktop::icon()),
        ..Default::default()
    };
    eframe::run_native(program.name, options, Box::new(|_cc| Ok(Box::new(app))))
        .map_err(|e| anyhow!("{}", window_error(&e.to_string(), has_display())))
}

/// `program`'s state file (docs/state.md), as [`remember::open`] finds it; why it could
/// not be read goes to stderr as one line, `PROGRAM: why`, and the program starts with
/// its defaults.
pub fn remembered_state<T: DeserializeOwned + Default>(program: Program) -> remember::Opened<T> {
    let opened = remember::open(program);
    if let Some(problem) = &opened.problem {
        eprintln!("{}: {problem}", program.id);
    }
    opened
}

/// [`run_window`] for an app that remembers: the window opens where and as large as it
/// was (else at `program.size`), the windows inside it and the theme come back, and the state file is
/// kept up to date while it runs.
pub fn run_remembering<A: Remember + 'static>(
    program: Program,
    title: &str,
    mut app: Remembering<A>,
) -> Result<()> {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title(title)
        .with_inner_size(program.size)
        .with_app_id(program.id)
        .with_icon(desktop::icon());
    if let Some(g) = app.window() {
        viewport = viewport
            .with_inner_size([g.width, g.height])
            .with_maximized(g.maximized);
        if let (Some(x), Some(y)) = (g.x, g.y) {
            viewport = viewport.with_position([x, y]);
        }
    }
    let options = eframe::NativeOptions {
        viewport,
        ..Default::default()
    };
    let id = program.id;
    eframe::run_native(
        program.name,
        options,
        Box::new(move |cc| {
            if let Some(problem) = app.restore(&cc.egui_ctx) {
                eprintln!("{id}: {problem}");
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow!("{}", window_error(&e.to_string(), has_display())))
}

/// Whether the environment names a display a window could open on.
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

/// Why no window opened, as one sentence: without a display, says so and what to do;
/// else the cause on its first line, without the source locations (`at …/mod.rs:788:`)
/// the windowing libraries put in their texts.
fn window_error(cause: &str, has_display: bool) -> String {
    if !has_display {
        return "cannot open a window: no display (set DISPLAY or WAYLAND_DISPLAY, \
                or use `openmosix mon` in a terminal)"
            .to_owned();
    }
    let first_line = cause.lines().next().unwrap_or_default();
    format!(
        "cannot open a window: {}",
        without_source_locations(first_line)
    )
}

/// `text` without its ` at PATH.rs:LINE` pieces.
fn without_source_locations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(" at ") {
        let after = &rest[at + 4..];
        let location_end = after.find(".rs:").and_then(|rs| {
            let digits = after[rs + 4..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len() - rs - 4);
            let end = rs + 4 + digits;
            let in_one_word = !after[..rs].contains(' ');
            (digits > 0 && in_one_word).then_some(end)
        });
        match location_end {
            Some(end) => {
                out.push_str(&rest[..at]);
                rest = &after[end..];
                if let Some(cause) = rest.strip_prefix(':') {
                    out.push(':');
                    rest = cause;
                }
            }
            None => {
                out.push_str(&rest[..at + 4]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINIT: &str = "winit EventLoopError: os error at ~/.cargo/registry/src/index/\
        winit-0.30.13/src/platform_impl/linux/mod.rs:765: neither WAYLAND_DISPLAY nor \
        WAYLAND_SOCKET nor DISPLAY is set.";

    #[test]
    fn without_a_display_the_error_says_so_and_what_to_do() {
        let text = window_error(WINIT, false);
        assert_eq!(
            text,
            "cannot open a window: no display (set DISPLAY or WAYLAND_DISPLAY, \
             or use `openmosix mon` in a terminal)"
        );
    }

    #[test]
    fn other_window_errors_lose_their_source_locations_and_backtraces() {
        let cause = format!("{WINIT}\nstack backtrace:\n   0: std::backtrace");
        let text = window_error(&cause, true);
        assert_eq!(
            text,
            "cannot open a window: winit EventLoopError: os error: neither WAYLAND_DISPLAY \
             nor WAYLAND_SOCKET nor DISPLAY is set."
        );
        assert!(!text.contains(".rs:"));
    }

    #[test]
    fn text_without_source_locations_stays_as_it_is() {
        let text = "the driver at hand said no: at least 3.3 needed";
        assert_eq!(without_source_locations(text), text);
    }
}
