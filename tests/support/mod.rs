//! Helpers shared by integration tests. Each test crate compiles this module on
//! its own and uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod qemu;
