//! Support shared by the integration tests; each test binary uses a subset of it.
#![allow(dead_code)]

pub mod testbed;
