//! The VMMs a test runs: the test double (`double`: finding and spawning `examples/ch_double`),
//! the real Cloud Hypervisor (`backend`), and CH's OpenAPI spec the requests are checked against.
//!
//! `ch_double.rs`, `ch_double_vm.rs` and `ch_double_numa.rs` are the double itself: compiled by
//! `examples/ch_double.rs` (which includes them with `#[path]`), not by the tests.

pub mod backend;
pub mod double;
pub mod openapi;
pub mod real_vms;
