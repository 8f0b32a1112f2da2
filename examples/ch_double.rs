//! A Cloud Hypervisor test double for the integration tests and for trying the console
//! without KVM: `cargo run --example ch_double -- --api-socket path=/tmp/ch.sock`, or
//! `phyllome --ch-bin target/debug/examples/ch_double`. See `tests/it/support/vmm/ch_double.rs`.
// A development tool run from tests and demos: it prints, and stops at the first failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::string_slice,
    clippy::exit
)]

#[path = "../tests/it/support/vmm/ch_double.rs"]
mod ch_double;

fn main() -> std::process::ExitCode {
    ch_double::main()
}
