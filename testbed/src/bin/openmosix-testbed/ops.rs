//! The testbed commands, by purpose: building it (`up`), removing it (`down`), and what
//! is done to a running one (`status`, `sshd stop|start`, `exec`).

mod control;
mod down;
mod network;
mod node;
mod up;

pub use control::{exec, sshd_start, sshd_stop, status};
pub use down::{down_all, down_one};
pub use up::{start_discovery, up};
