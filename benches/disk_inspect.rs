//! `disk inspect` in-process: what one inspection costs on a 96 MiB GPT image (EFI vfat +
//! ext4), the same as qcow2, and a qcow2 overlay whose clusters all come from its backing
//! file; plus the holder scan `disk mount`/`disk fsck` run first (every process's open files).
//! The console inspects a stopped VM's disks on each detail refresh (every 2 s), so this is
//! the price of that view.
//!
//! `cargo bench --bench disk_inspect` (needs sfdisk, mkfs.ext4, mkfs.vfat, qemu-img).
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

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// The images the `disks` tests make.
#[path = "../tests/it/disk_images.rs"]
mod images;

const RUNS: usize = 200;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Stops with a note (not a failure) when a tool that makes the images is missing.
fn need_tools() {
    for tool in ["sfdisk", "mkfs.vfat", "mkfs.ext4", "qemu-img"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            println!("disk_inspect: `{tool}` is missing; install fdisk, e2fsprogs, dosfstools, qemu-utils");
            std::process::exit(0);
        }
    }
}

fn time(label: &str, f: impl Fn()) {
    f();
    let v: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    let (min, max) = (*v.iter().min().unwrap(), *v.iter().max().unwrap());
    println!(
        "{label:<44} median {:>8.1?} (min {min:.1?}, max {max:.1?}, {RUNS} runs)",
        median(v)
    );
}

fn main() {
    need_tools();
    let dir = tempfile::tempdir().unwrap();
    let raw = images::gpt_image(dir.path());
    let q = images::qcow2_of(&raw, "gpt.qcow2");
    let over = images::overlay_of(&q, "over.qcow2");
    for (label, path) in [
        ("raw GPT, vfat + ext4", &raw),
        ("qcow2 of it", &q),
        ("qcow2 overlay on it", &over),
    ] {
        let ins = phyllome::disk::inspect(path).unwrap();
        assert_eq!(ins.partitions.len(), 2, "{label}");
        time(&format!("inspect: {label}"), || {
            phyllome::disk::inspect(path).unwrap();
        });
    }
    let procs = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .count();
    let places = phyllome::disk::holders::Places::default();
    time(&format!("holder scan ({procs} processes)"), || {
        assert!(phyllome::disk::holders::scan(&raw, &places).is_empty());
    });
}
