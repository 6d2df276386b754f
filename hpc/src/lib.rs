//! What both sides of openMosixview speak: the words of /proc/hpc and of the files and
//! datagrams around it. No SSH, no egui, and no runtime of its own (the discovery
//! listener runs on its caller's tokio runtime).
//!
//! - [`model`]: the /proc/hpc vocabulary (nodes, admin switches, processes).
//! - [`protocol`]: the JSON-lines protocol between client and agent; [`delta`]: process
//!   lists sent as what changed.
//! - [`map`]: openmosix.map files and cluster files.
//! - [`discovery`]: auto-discovery by UDP multicast (omdiscd, HOWTO chapter 5): the
//!   datagram, the set of nodes heard, the map file and the listener.
//! - [`files`]: state folders (0700 at every start) and files created `O_EXCL|O_NOFOLLOW`.
//! - [`bytes`]: text that may not be UTF-8; [`clock`]: wall-clock time;
//!   [`logging`]: the programs' log set-up; [`errors`]: errors as one sentence.

pub mod bytes;
pub mod clock;
pub mod delta;
pub mod discovery;
pub mod errors;
pub mod files;
pub mod handoff;
pub mod logging;
pub mod map;
pub mod memory_images;
pub mod model;
pub mod protocol;
