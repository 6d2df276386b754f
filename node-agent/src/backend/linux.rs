//! The Linux backend (being written).
