//! Image formats beyond the plain raw GPT/MBR cases: qcow2 (v2, v3, a backing chain,
//! compressed clusters), swap against `blkid`, LUKS/XFS/btrfs by their magic, and a label
//! that tries to write to the terminal.

use serde_json::Value;

use super::{blank, blkid, ext4_at, get, gpt_image, have, inspect, overlay_of, qcow2_of, sh, MIB};
use crate::support::cli::Cli;

#[test]
fn qcow2_images_and_backing_chains_read_like_their_raw_source() {
    let tools = [
        ("sfdisk", "fdisk"),
        ("mkfs.ext4", "e2fsprogs"),
        ("mkfs.vfat", "dosfstools"),
        ("qemu-img", "qemu-utils"),
    ];
    if !have("qcow2", &tools) {
        return;
    }
    let cli = Cli::new();
    let raw = gpt_image(cli.path());
    let q = qcow2_of(&raw, "gpt.qcow2");
    // An overlay: every cluster comes from the backing file.
    let over = overlay_of(&q, "over.qcow2");
    // Version 2 with small clusters: more L2 tables to walk.
    let v2 = cli.path().join("v2.qcow2");
    sh(
        "qemu-img",
        &[
            "convert",
            "-O",
            "qcow2",
            "-o",
            "compat=0.10,cluster_size=4096",
            raw.to_str().unwrap(),
            v2.to_str().unwrap(),
        ],
    );
    let want = inspect(&cli, &raw);
    for image in [&q, &over, &v2] {
        let ins = inspect(&cli, image);
        let info: Value = serde_json::from_str(&sh(
            "qemu-img",
            &["info", "--output=json", image.to_str().unwrap()],
        ))
        .unwrap();
        assert_eq!(ins["format"], info["format"], "{image:?}");
        assert_eq!(ins["virtual_size"], info["virtual-size"], "{image:?}");
        assert_eq!(
            ins["qcow2"]["cluster_size"], info["cluster-size"],
            "{image:?}"
        );
        assert_eq!(
            ins["backing_file"].as_str(),
            info["backing-filename"].as_str(),
            "{image:?}"
        );
        assert_eq!(ins["error"], Value::Null, "{image:?}");
        assert_eq!(ins["partitions"], want["partitions"], "{image:?}");
        assert_eq!(ins["table_id"], want["table_id"], "{image:?}");
    }
    let ins = inspect(&cli, &over);
    assert_eq!(ins["qcow2"]["backing_format"], "qcow2");
    assert_eq!(inspect(&cli, &v2)["qcow2"]["version"], 2);
}

#[test]
fn compressed_qcow2_clusters_are_named_not_misread() {
    let tools = [("mkfs.ext4", "e2fsprogs"), ("qemu-img", "qemu-utils")];
    if !have("compressed_qcow2", &tools) {
        return;
    }
    let cli = Cli::new();
    let raw = cli.path().join("w.img");
    blank(&raw, 40 * MIB);
    ext4_at(&raw, 0, 40 * MIB, "packed", "p");
    let q = cli.path().join("c.qcow2");
    sh(
        "qemu-img",
        &[
            "convert",
            "-c",
            "-O",
            "qcow2",
            raw.to_str().unwrap(),
            q.to_str().unwrap(),
        ],
    );
    let ins = inspect(&cli, &q);
    assert_eq!(ins["format"], "qcow2");
    assert_eq!(ins["virtual_size"], 40 * MIB);
    assert_eq!(ins["partition_table"], Value::Null);
    let err = ins["error"].as_str().unwrap();
    assert!(
        err.contains("uses compressed clusters, which phyllome cannot read"),
        "{err}"
    );
}

#[test]
fn swap_and_superblocks_known_by_their_magic() {
    if !have("swap", &[("mkswap", "util-linux"), ("blkid", "util-linux")]) {
        return;
    }
    let cli = Cli::new();
    let swap = cli.path().join("swap.img");
    blank(&swap, 16 * MIB);
    sh("mkswap", &["-q", "-L", "swappy", swap.to_str().unwrap()]);
    let ins = inspect(&cli, &swap);
    let fs = &ins["filesystem"];
    assert_eq!(fs["type"], "swap");
    assert_eq!(fs["label"], "swappy");
    assert_eq!(fs["size"], 16 * MIB);
    let theirs = blkid(&swap, 0, 16 * MIB);
    assert_eq!(fs["uuid"].as_str(), get(&theirs, "UUID"));
    // Headers written here (their checksums are not, so blkid would not agree): the magic and
    // the label are what phyllome reads.
    let cases: [(&str, usize, &[u8], usize, &str); 3] = [
        ("crypto_LUKS", 0, b"LUKS\xba\xbe\x00\x02", 24, "vault"),
        ("xfs", 0, b"XFSB", 108, "xfsdata"),
        ("btrfs", 0x10040, b"_BHRfS_M", 0x1012b, "pool"),
    ];
    for (kind, at, magic, label_at, label) in cases {
        let mut b = vec![0u8; 128 * 1024];
        b[at..at + magic.len()].copy_from_slice(magic);
        b[label_at..label_at + label.len()].copy_from_slice(label.as_bytes());
        let img = cli.path().join(format!("{kind}.img"));
        std::fs::write(&img, &b).unwrap();
        let fs = &inspect(&cli, &img)["filesystem"];
        assert_eq!(fs["type"], kind);
        assert_eq!(fs["label"], label, "{kind}");
    }
}

#[test]
fn control_characters_in_a_label_never_reach_the_terminal() {
    if !have("hostile_label", &[("mkfs.ext4", "e2fsprogs")]) {
        return;
    }
    let cli = Cli::new();
    let img = cli.path().join("e.img");
    blank(&img, 8 * MIB);
    ext4_at(&img, 0, 8 * MIB, "ok", "x");
    // The label field (16 bytes at 1024 + 120) set to an OSC 52 clipboard write.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(b"\x1b]52;c;AAAA\x07\x9b", 1024 + 120)
        .unwrap();
    drop(f);
    let text = cli.ok(&["disk", "inspect", img.to_str().unwrap()]);
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(text.contains("label \"?]52;c;AAAA?"), "{text:?}");
}
