//! An error response: its kind and its sentence.

use serde::{Deserialize, Serialize};

/// What kind of failure an error response reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line was not JSON, not UTF-8, or lacked fields.
    BadRequest,
    /// The line was longer than [`MAX_LINE`](super::MAX_LINE).
    TooLarge,
    /// The op is not known to this agent.
    UnknownOp,
    /// An argument is out of range.
    InvalidArgument,
    /// No process with that pid.
    NoSuchProcess,
    /// The agent may not do that.
    PermissionDenied,
    /// The backend cannot do that.
    Unsupported,
    /// Reading or writing the node's files failed.
    Io,
    /// The process may not move (locked, cantmove, mask, target blocked …).
    CannotMigrate,
    /// A migration step failed (criu's log turned into a sentence).
    MigrationFailed,
}

/// An error response's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AgentError {
    /// Category, for programs.
    pub kind: ErrorKind,
    /// One sentence, for people.
    pub message: String,
}

impl AgentError {
    /// Builds an error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AgentError {
            kind,
            message: message.into(),
        }
    }

    /// An error from an I/O failure, with what was being done.
    pub fn io(what: impl std::fmt::Display, err: &std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NoSuchProcess,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::Io,
        };
        AgentError::new(kind, format!("{what}: {err}"))
    }

    /// No such process.
    pub fn no_such_process(pid: i32) -> Self {
        AgentError::new(
            ErrorKind::NoSuchProcess,
            format!("no process {pid} on this node"),
        )
    }
}
