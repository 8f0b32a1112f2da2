//! Writes a fixture host tree, to try the console and `phyllome host` on hardware you do not
//! have: `cargo run --example fixture_tree -- desktop /tmp/desktop` then
//! `phyllome --host-root /tmp/desktop`.
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

use phyllome::fixture::presets;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(name), Some(dir)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: fixture_tree laptop|desktop|two-gpus|two-nodes|no-iommu|no-kvm|server-bmc|scale DIR"
        );
        std::process::exit(2);
    };
    let spec = match name.as_str() {
        "laptop" => presets::laptop(),
        "desktop" => presets::desktop(),
        "two-gpus" => presets::two_gpus_shared_group(),
        "two-nodes" => presets::two_nodes(),
        "no-iommu" => presets::no_iommu(),
        "no-kvm" => presets::no_kvm(),
        "server-bmc" => presets::server_bmc(),
        "scale" => presets::scale(2000),
        other => {
            eprintln!("unknown preset {other:?}");
            std::process::exit(2);
        }
    };
    if let Err(e) = spec.write(std::path::Path::new(&dir)) {
        eprintln!("cannot write {dir}: {e}");
        std::process::exit(1);
    }
}
