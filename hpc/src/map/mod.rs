//! openmosix.map files and cluster files: which nodes make up the cluster and how to
//! reach them.
//!
//! - [`parse_map`], [`read_map_file`], [`render_map`] and [`render_showmap`]: the
//!   openMosix map format of HOWTO section 4.4.2 (`NODE_ID ADDRESS [RANGE|ALIAS]`).
//! - [`Cluster`]: the suite's own TOML cluster file, which names each node and says how
//!   to reach it (an SSH destination or `local`).
//!
//! Every error is a [`MapError`] whose message is one line naming the file, the line and
//! what is wrong.

use std::io;
use std::path::{Path, PathBuf};

mod cluster_file;
mod discovery_source;
mod openmosix_map;
mod via;

pub use cluster_file::{Cluster, ClusterNode, DEFAULT_AGENT, Dest, Via};
pub use discovery_source::DiscoverySource;
pub use openmosix_map::{MAP_PATHS, parse_map, read_map_file, render_map, render_showmap};
pub use via::gateway_of;

/// Why a map file or a cluster file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// A line of map text (given without a file name) is wrong.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong, in plain words.
        message: String,
    },
    /// A map file or a cluster file is wrong.
    #[error("{}: {}{message}", path.display(), line_prefix(*line))]
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line number, when the problem is on one line.
        line: Option<usize>,
        /// What is wrong, in plain words.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
}

impl MapError {
    /// The 1-based line number the error is about, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            MapError::Line { line, .. } => Some(*line),
            MapError::File { line, .. } => *line,
            MapError::Io { .. } => None,
        }
    }

    /// Attaches a file name to an error about map text.
    fn in_file(self, path: &Path) -> MapError {
        match self {
            MapError::Line { line, message } => MapError::File {
                path: path.to_path_buf(),
                line: Some(line),
                message,
            },
            other => other,
        }
    }
}

fn line_prefix(line: Option<usize>) -> String {
    line.map(|n| format!("line {n}: ")).unwrap_or_default()
}

fn read_file(path: &Path) -> Result<String, MapError> {
    std::fs::read_to_string(path).map_err(|source| MapError::Io {
        path: path.to_path_buf(),
        source,
    })
}
