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

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 200;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn run(cmd: &str, args: &[&str]) {
    let ok = Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!("disk_inspect: `{cmd}` failed or is missing; install fdisk, e2fsprogs, dosfstools, qemu-utils");
        std::process::exit(0);
    }
}

fn image(dir: &Path) -> std::path::PathBuf {
    let img = dir.join("gpt.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(96 << 20)
        .unwrap();
    let mut sf = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(&img)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(sf.stdin.as_mut().unwrap(), b"label: gpt\n,33M,U\n,,L\n").unwrap();
    assert!(sf.wait().unwrap().success());
    let i = img.to_str().unwrap();
    run(
        "mkfs.vfat",
        &["-F", "32", "-n", "EFI", "--offset", "2048", i, "33792"],
    );
    run(
        "mkfs.ext4",
        &["-q", "-F", "-E", "offset=35651584", i, "61440k"],
    );
    img
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
    let dir = tempfile::tempdir().unwrap();
    let raw = image(dir.path());
    let q = dir.path().join("gpt.qcow2");
    run(
        "qemu-img",
        &[
            "convert",
            "-O",
            "qcow2",
            raw.to_str().unwrap(),
            q.to_str().unwrap(),
        ],
    );
    let over = dir.path().join("over.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "gpt.qcow2",
            "-F",
            "qcow2",
            over.to_str().unwrap(),
        ],
    );
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
