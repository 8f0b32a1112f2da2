//! Inventory of the 2,000-device fixture tree: prints median, min and max of full
//! `Inventory::collect` runs. Run with `cargo bench --bench inventory`.
// A benchmark prints its figures and stops at the first failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::string_slice,
    clippy::exit
)]

use std::time::{Duration, Instant};

use phyllome::fixture::presets;
use phyllome::host::{Inventory, SysRoot};

const RUNS: usize = 30;
const TARGET_MS: f64 = 20.0;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    presets::scale(2000)
        .write(dir.path())
        .expect("write fixture tree");
    let root = SysRoot::new(dir.path());
    // One warm-up so that every run reads from the page cache, as a running host does.
    let devices = Inventory::collect(&root).pci_devices.len();
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let inv = Inventory::collect(&root);
            let elapsed = start.elapsed();
            assert_eq!(inv.pci_devices.len(), devices);
            elapsed
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "inventory of {devices} PCI functions ({RUNS} runs): median {:.2} ms, min {:.2} ms, max {:.2} ms (target under {TARGET_MS} ms)",
        ms(times[RUNS / 2]),
        ms(times[0]),
        ms(times[RUNS - 1])
    );
}
