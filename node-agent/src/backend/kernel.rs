//! The openMosix-kernel backend (being written).
