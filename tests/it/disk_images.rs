//! Disk images made with the host's own tools (`sfdisk`, `mkfs.ext4`, `mkfs.vfat`,
//! `qemu-img`), for the `disks` tests and the `disk_inspect` benchmark (which includes this
//! file by path). A tool that fails panics with its stderr.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub const MIB: u64 = 1 << 20;

pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A sparse raw file of `size` bytes.
pub fn blank(path: &Path, size: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
}

/// `sfdisk` with a script: `label: gpt` or `label: dos`, then one line per partition.
pub fn partition(path: &Path, script: &str) {
    let mut child = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "sfdisk {script}");
}

/// An ext4 filesystem of `size` bytes at `offset`, holding `note.txt`, labelled `label`.
pub fn ext4_at(path: &Path, offset: u64, size: u64, label: &str, note: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("note.txt"), note).unwrap();
    sh(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-L",
            label,
            "-d",
            dir.path().to_str().unwrap(),
            "-E",
            &format!("offset={offset}"),
            path.to_str().unwrap(),
            &format!("{}k", size / 1024),
        ],
    );
}

/// A FAT32 filesystem of `size` bytes at `offset`.
pub fn vfat_at(path: &Path, offset: u64, size: u64, label: &str) {
    sh(
        "mkfs.vfat",
        &[
            "-F",
            "32",
            "-n",
            label,
            "--offset",
            &(offset / 512).to_string(),
            path.to_str().unwrap(),
            &(size / 1024).to_string(),
        ],
    );
}

/// `sfdisk --json`'s partitions as (start, size) in bytes.
pub fn sfdisk_ranges(image: &Path) -> Vec<(u64, u64)> {
    let v: Value =
        serde_json::from_str(&sh("sfdisk", &["--json", image.to_str().unwrap()])).unwrap();
    v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_u64().unwrap() * 512,
                p["size"].as_u64().unwrap() * 512,
            )
        })
        .collect()
}

/// 96 MiB, GPT: an EFI System partition (FAT32, 33 MiB, the smallest FAT32 mkfs.vfat
/// makes) and a Linux one (ext4 with `note.txt`).
pub fn gpt_image(dir: &Path) -> PathBuf {
    let img = dir.join("gpt.img");
    blank(&img, 96 * MIB);
    partition(&img, "label: gpt\n,33M,U\n,,L\n");
    let r = sfdisk_ranges(&img);
    vfat_at(&img, r[0].0, r[0].1, "EFI");
    ext4_at(&img, r[1].0, r[1].1, "root", "hello from the guest\n");
    img
}

/// `raw` converted to a qcow2 file `name` beside it.
pub fn qcow2_of(raw: &Path, name: &str) -> PathBuf {
    let q = raw.with_file_name(name);
    sh(
        "qemu-img",
        &[
            "convert",
            "-O",
            "qcow2",
            raw.to_str().unwrap(),
            q.to_str().unwrap(),
        ],
    );
    q
}

/// A qcow2 overlay `name` beside `backing` (a qcow2, named relative to it): every cluster
/// comes from the backing file.
pub fn overlay_of(backing: &Path, name: &str) -> PathBuf {
    let over = backing.with_file_name(name);
    let backing_name = backing.file_name().unwrap().to_str().unwrap();
    sh(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            backing_name,
            "-F",
            "qcow2",
            over.to_str().unwrap(),
        ],
    );
    over
}
