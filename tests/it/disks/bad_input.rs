//! Broken and hostile images: never a panic, never a hang, never an allocation sized by the
//! image; a clear error or an inspection that says what is wrong.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{blank, inspect, MIB};
use crate::support::cli::Cli;

/// A qcow2 v3 header with the given fields (big-endian), 64 KiB clusters unless told.
fn qcow2_header(size: u64, cluster_bits: u32, l1_size: u32, l1_offset: u64) -> Vec<u8> {
    let mut h = vec![0u8; 104];
    h[..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    h[20..24].copy_from_slice(&cluster_bits.to_be_bytes());
    h[24..32].copy_from_slice(&size.to_be_bytes());
    h[36..40].copy_from_slice(&l1_size.to_be_bytes());
    h[40..48].copy_from_slice(&l1_offset.to_be_bytes());
    h[96..100].copy_from_slice(&4u32.to_be_bytes());
    h[100..104].copy_from_slice(&104u32.to_be_bytes());
    h
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_directory_is_refused() {
    let cli = Cli::new();
    let out = cli.run(&["disk", "inspect", cli.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a directory, not a disk image"), "{err}");
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let cli = Cli::new();
    let fifo = cli.path().join("pipe");
    super::sh("mkfifo", &[fifo.to_str().unwrap()]);
    let start = Instant::now();
    let mut child = cli
        .cmd(&["disk", "inspect", fifo.to_str().unwrap()])
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("disk inspect waited on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a FIFO, not a disk image"), "{err}");
    for cmd in [vec!["disk", "fsck"], vec!["disk", "mount"]] {
        let mut args = cmd.clone();
        args.push(fifo.to_str().unwrap());
        if cmd[1] == "mount" {
            args.push(cli.path().to_str().unwrap());
        }
        let err = cli.fails(&args);
        assert!(
            err.contains("FIFO") || err.contains("root"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn missing_and_empty_images() {
    let cli = Cli::new();
    let err = cli.fails(&["disk", "inspect", "/nonexistent/disk.img"]);
    assert!(
        err.contains("Cannot open the image /nonexistent/disk.img"),
        "{err}"
    );
    let empty = cli.path().join("empty.img");
    write(&empty, b"");
    let ins = inspect(&cli, &empty);
    assert_eq!(ins["virtual_size"], 0);
    assert_eq!(ins["partition_table"], "none");
    assert_eq!(ins["filesystem"], Value::Null);
}

#[test]
fn a_truncated_gpt_is_reported_not_trusted() {
    let cli = Cli::new();
    if !super::have("truncated_gpt", &[("sfdisk", "fdisk")]) {
        return;
    }
    let img = cli.path().join("t.img");
    blank(&img, 8 * MIB);
    super::partition(&img, "label: gpt\n,2M,L\n,,L\n");
    // Cut inside the entries array: the primary header's entries checksum cannot match, and
    // the backup at the (new) end is gone.
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.set_len(1024 + 512).unwrap();
    let ins = inspect(&cli, &img);
    assert_eq!(ins["partitions"], serde_json::json!([]), "{ins}");
    let warnings = ins["warnings"].to_string();
    assert!(warnings.contains("primary GPT header"), "{warnings}");
    assert!(
        warnings.contains("protective MBR but no valid GPT"),
        "{warnings}"
    );
    // Cut after the entries: the partitions run past the end, and say so.
    blank(&img, 8 * MIB);
    super::partition(&img, "label: gpt\n,2M,L\n,,L\n");
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.set_len(3 * MIB).unwrap();
    let ins = inspect(&cli, &img);
    assert_eq!(ins["partition_table"], "gpt");
    assert!(
        ins["warnings"]
            .to_string()
            .contains("partition 2 runs past the end"),
        "{ins}"
    );
}

#[test]
fn a_gpt_claiming_four_billion_entries_is_refused() {
    let cli = Cli::new();
    let img = cli.path().join("huge-gpt.img");
    let mut b = vec![0u8; 64 * 1024];
    b[446 + 4] = 0xEE;
    b[510] = 0x55;
    b[511] = 0xAA;
    let h = &mut b[512..1024];
    h[..8].copy_from_slice(b"EFI PART");
    h[12..16].copy_from_slice(&92u32.to_le_bytes());
    h[72..80].copy_from_slice(&2u64.to_le_bytes());
    h[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
    h[84..88].copy_from_slice(&128u32.to_le_bytes());
    let mut copy = h[..92].to_vec();
    copy[16..20].fill(0);
    let crc = crc32(&copy);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    write(&img, &b);
    let ins = inspect(&cli, &img);
    assert_eq!(ins["partitions"], serde_json::json!([]));
    assert!(
        ins["warnings"]
            .to_string()
            .contains("4294967295 partition entries"),
        "{ins}"
    );
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn an_extended_partition_that_links_to_itself_stops() {
    let cli = Cli::new();
    let img = cli.path().join("loop.img");
    let mut b = vec![0u8; 4 * MIB as usize];
    // Entry 1: extended partition at sector 2048.
    let e = &mut b[446..462];
    e[4] = 0x05;
    e[8..12].copy_from_slice(&2048u32.to_le_bytes());
    e[12..16].copy_from_slice(&4096u32.to_le_bytes());
    b[510] = 0x55;
    b[511] = 0xAA;
    // Two EBRs: the first (at the extended partition's start) holds logical partition 5 and
    // links to the second, one sector on; the second holds 6 and links to itself.
    for (k, rel) in [(0usize, 64u32), (1, 256)] {
        let ebr = (2048 + k) * 512;
        let l = &mut b[ebr + 446..ebr + 462];
        l[4] = 0x83;
        l[8..12].copy_from_slice(&rel.to_le_bytes());
        l[12..16].copy_from_slice(&128u32.to_le_bytes());
        let n = &mut b[ebr + 462..ebr + 478];
        n[4] = 0x05;
        n[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[ebr + 510] = 0x55;
        b[ebr + 511] = 0xAA;
    }
    write(&img, &b);
    let ins = inspect(&cli, &img);
    assert_eq!(ins["partition_table"], "mbr");
    let numbers: Vec<u64> = ins["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 5, 6], "{ins}");
    assert!(ins["warnings"].to_string().contains("chain loops"), "{ins}");
}

#[test]
fn qcow2_headers_with_absurd_fields() {
    let cli = Cli::new();
    // A virtual size of 16 EiB and an L1 table past the end of the file.
    let huge = cli.path().join("huge.qcow2");
    let mut b = qcow2_header(u64::MAX, 16, u32::MAX, 1 << 40);
    b.resize(65536, 0);
    write(&huge, &b);
    let ins = inspect(&cli, &huge);
    assert_eq!(ins["format"], "qcow2");
    assert_eq!(ins["virtual_size"], u64::MAX);
    let err = ins["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("is damaged") && err.contains("past the end of the file"),
        "{ins}"
    );
    // Clusters of 2^40 bytes.
    let bits = cli.path().join("bits.qcow2");
    write(&bits, &qcow2_header(MIB, 40, 1, 65536));
    let err = cli.fails(&["disk", "inspect", bits.to_str().unwrap()]);
    assert!(err.contains("cluster bits 40"), "{err}");
    // A backing file name of 4 GiB.
    let name = cli.path().join("name.qcow2");
    let mut b = qcow2_header(MIB, 16, 1, 65536);
    b[8..16].copy_from_slice(&200u64.to_be_bytes());
    b[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    write(&name, &b);
    let err = cli.fails(&["disk", "inspect", name.to_str().unwrap()]);
    assert!(
        err.contains("backing file name of 4294967295 bytes"),
        "{err}"
    );
    // Truncated in the middle of its header.
    let cut = cli.path().join("cut.qcow2");
    write(&cut, &qcow2_header(MIB, 16, 1, 65536)[..40]);
    let ins = inspect(&cli, &cut);
    assert_eq!(ins["format"], "raw", "too short to be qcow2: {ins}");
}

#[test]
fn a_qcow2_that_backs_itself_is_refused() {
    let cli = Cli::new();
    let img = cli.path().join("self.qcow2");
    let mut b = qcow2_header(MIB, 16, 1, 65536);
    let name = b"self.qcow2";
    b.resize(256, 0);
    b[8..16].copy_from_slice(&200u64.to_be_bytes());
    b[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
    b[200..200 + name.len()].copy_from_slice(name);
    write(&img, &b);
    let err = cli.fails(&["disk", "inspect", img.to_str().unwrap()]);
    assert!(
        err.contains("backing chain") && err.contains("a loop?"),
        "{err}"
    );
}

/// Random bytes, and random bytes behind real magic numbers, never panic the reader.
#[test]
fn random_images_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.img");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let magics: [(usize, &[u8]); 6] = [
        (0, b"QFI\xfb"),
        (512, b"EFI PART"),
        (510, b"\x55\xaa"),
        (1080, b"\x53\xef"),
        (0, b"LUKS\xba\xbe"),
        (0x10040, b"_BHRfS_M"),
    ];
    for round in 0..300 {
        let len = (next() % (80 * 1024)) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let (at, magic) = magics[round % magics.len()];
        if at + magic.len() <= b.len() {
            b[at..at + magic.len()].copy_from_slice(magic);
        }
        write(&path, &b);
        // Errors are fine; a panic fails the test.
        let _ = phyllome::disk::inspect(&path);
    }
}
