//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fake_systemd;
pub mod qemu;
pub mod vmm;
