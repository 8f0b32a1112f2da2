//! `phyllome disk`: images made here with the host's own tools (`sfdisk`, `mkfs.ext4`,
//! `mkfs.vfat`, `qemu-img`), inspected by phyllome and checked against what `blkid -p`,
//! `sfdisk --json` and `qemu-img info` say about the same bytes. `bad_input` feeds it broken
//! images; `formats` covers qcow2 and other superblocks; `mount` mounts, checks and refuses
//! while something holds the image (as root); `console` is the VM detail's Disks section.
//!
//! A missing tool prints SKIPPED with the package that brings it; under CI (which installs
//! them: fdisk, e2fsprogs, dosfstools, qemu-utils) that is a failure.

mod bad_input;
mod console;
mod formats;
// Shared with the disk_inspect benchmark, which includes the file.
#[path = "disk_images.rs"]
mod images;
mod mount;

pub use images::{
    blank, ext4_at, gpt_image, overlay_of, partition, qcow2_of, sfdisk_ranges, sh, vfat_at, MIB,
};

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::cli::Cli;

/// Whether every tool is installed; says SKIPPED (a failure under CI) when one is not.
pub fn have(test: &str, tools: &[(&str, &str)]) -> bool {
    for (tool, package) in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            skip(
                test,
                &format!("{tool} is not installed (apt-get install {package})"),
            );
            return false;
        }
    }
    true
}

pub fn skip(test: &str, why: &str) {
    let msg = format!("SKIPPED: {test}: {why}");
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n\n").as_bytes(),
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{msg} — CI installs it, so this is an error here"
    );
}

/// `blkid -p` on `size` bytes at `offset`: its KEY=value pairs.
pub fn blkid(path: &Path, offset: u64, size: u64) -> Vec<(String, String)> {
    let out = sh(
        "blkid",
        &[
            "-p",
            "-o",
            "export",
            "-O",
            &offset.to_string(),
            "-S",
            &size.to_string(),
            path.to_str().unwrap(),
        ],
    );
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Every partition's filesystem as phyllome reads it, checked against `blkid -p`'s TYPE,
/// LABEL, UUID and VERSION for the same bytes.
pub fn agrees_with_blkid(image: &Path, ins: &Value) {
    for p in ins["partitions"].as_array().unwrap() {
        let (start, size) = (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap());
        if p["container"] == true {
            continue;
        }
        let theirs = blkid(image, start, size);
        let ours = &p["filesystem"];
        assert_eq!(ours["type"].as_str(), get(&theirs, "TYPE"), "partition {p}");
        assert_eq!(
            ours["label"].as_str(),
            get(&theirs, "LABEL"),
            "partition {p}"
        );
        assert_eq!(ours["uuid"].as_str(), get(&theirs, "UUID"), "partition {p}");
        assert_eq!(
            ours["version"].as_str(),
            get(&theirs, "VERSION"),
            "partition {p}"
        );
    }
}

pub fn inspect(cli: &Cli, image: &Path) -> Value {
    let v = cli.json(&["disk", "inspect", image.to_str().unwrap(), "--json"]);
    assert_eq!(v["schema_version"], 1);
    v
}

fn ranges(ins: &Value) -> Vec<(u64, u64)> {
    ins["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap()))
        .collect()
}

#[test]
fn gpt_raw_image_matches_sfdisk_and_blkid() {
    let tools = [
        ("sfdisk", "fdisk"),
        ("mkfs.ext4", "e2fsprogs"),
        ("mkfs.vfat", "dosfstools"),
    ];
    if !have("gpt_raw_image", &tools) {
        return;
    }
    let cli = Cli::new();
    let img = gpt_image(cli.path());
    let ins = inspect(&cli, &img);
    assert_eq!(ins["format"], "raw");
    assert_eq!(ins["virtual_size"], 96 * MIB);
    assert_eq!(ins["backing_file"], Value::Null);
    assert_eq!(ins["partition_table"], "gpt");
    assert_eq!(ins["error"], Value::Null);
    assert_eq!(ranges(&ins), sfdisk_ranges(&img));
    let p = &ins["partitions"];
    assert_eq!(p[0]["type"], "EFI System");
    assert_eq!(p[0]["filesystem"]["type"], "vfat");
    assert_eq!(p[0]["filesystem"]["label"], "EFI");
    assert_eq!(p[1]["type"], "Linux filesystem");
    assert_eq!(p[1]["filesystem"]["type"], "ext4");
    assert_eq!(p[1]["filesystem"]["label"], "root");
    assert_eq!(p[1]["filesystem"]["size"], p[1]["size"]);
    agrees_with_blkid(&img, &ins);
    let text = cli.ok(&["disk", "inspect", img.to_str().unwrap()]);
    assert!(text.contains("table          gpt"), "{text}");
    assert!(
        text.contains("EFI System: vfat (FAT32) label \"EFI\""),
        "{text}"
    );
}

#[test]
fn mbr_with_logical_partitions_matches_sfdisk_and_blkid() {
    let tools = [
        ("sfdisk", "fdisk"),
        ("mkfs.ext4", "e2fsprogs"),
        ("mkfs.vfat", "dosfstools"),
    ];
    if !have("mbr_image", &tools) {
        return;
    }
    let cli = Cli::new();
    let img = cli.path().join("mbr.img");
    blank(&img, 128 * MIB);
    partition(&img, "label: dos\n,34M,c,*\n,20M,83\n,,5\n,20M,83\n,,83\n");
    let r = sfdisk_ranges(&img);
    assert_eq!(r.len(), 5, "{r:?}");
    vfat_at(&img, r[0].0, r[0].1, "BOOT");
    ext4_at(&img, r[1].0, r[1].1, "sys", "x");
    ext4_at(&img, r[3].0, r[3].1, "logical5", "y");
    ext4_at(&img, r[4].0, r[4].1, "logical6", "z");
    let ins = inspect(&cli, &img);
    assert_eq!(ins["partition_table"], "mbr");
    assert_eq!(ranges(&ins), r);
    let p = &ins["partitions"];
    let numbers: Vec<u64> = p
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 5, 6]);
    assert_eq!(p[0]["bootable"], true);
    assert_eq!(p[0]["type_id"], "0x0c");
    assert_eq!(p[2]["container"], true);
    assert_eq!(p[2]["filesystem"], Value::Null);
    assert_eq!(p[3]["filesystem"]["label"], "logical5");
    assert_eq!(p[4]["filesystem"]["label"], "logical6");
    assert_eq!(ins["warnings"], serde_json::json!([]));
    agrees_with_blkid(&img, &ins);
}

#[test]
fn a_filesystem_on_the_whole_disk_has_no_table() {
    let tools = [
        ("mkfs.ext4", "e2fsprogs"),
        ("mkfs.vfat", "dosfstools"),
        ("blkid", "util-linux"),
    ];
    if !have("whole_disk", &tools) {
        return;
    }
    let cli = Cli::new();
    for (name, kind) in [("whole-fat.img", "vfat"), ("whole-ext.img", "ext4")] {
        let img = cli.path().join(name);
        blank(&img, 40 * MIB);
        match kind {
            "vfat" => vfat_at(&img, 0, 40 * MIB, "WHOLE"),
            _ => ext4_at(&img, 0, 40 * MIB, "WHOLE", "w"),
        }
        let ins = inspect(&cli, &img);
        assert_eq!(ins["partition_table"], "none", "{name}");
        assert_eq!(ins["partitions"], serde_json::json!([]), "{name}");
        let fs = &ins["filesystem"];
        assert_eq!(fs["type"], kind, "{name}");
        assert_eq!(fs["label"], "WHOLE", "{name}");
        let theirs = blkid(&img, 0, 40 * MIB);
        assert_eq!(fs["uuid"].as_str(), get(&theirs, "UUID"), "{name}");
    }
}
