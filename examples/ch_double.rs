//! A Cloud Hypervisor test double for the integration tests and for trying the console
//! without KVM: `cargo run --example ch_double -- --api-socket path=/tmp/ch.sock`, or
//! `phyllome --ch-bin target/debug/examples/ch_double`. See `tests/it/support/vmm/ch_double.rs`.

#[path = "../tests/it/support/vmm/ch_double.rs"]
mod ch_double;

fn main() -> std::process::ExitCode {
    ch_double::main()
}
