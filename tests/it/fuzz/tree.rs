//! The host readers on generated trees: random bytes, sparse files up to 16 MB, FIFOs,
//! links out of the root, self links, directories in place of files.

use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use phyllome::fixture::presets;
use phyllome::host::{Inventory, SysRoot};
use proptest::prelude::*;

use super::config;

const TREE_CASES: u32 = 48;

/// Where the mutations land: attributes the inventory reads and the links it follows.
const TREE_PATHS: &[&str] = &[
    "sys/bus/pci/devices/0000:0b:00.0/uevent",
    "sys/bus/pci/devices/0000:0b:00.0/reset_method",
    "sys/bus/pci/devices/0000:0b:00.0/class",
    "sys/bus/pci/devices/0000:0b:00.0/vendor",
    "sys/bus/pci/devices/0000:0b:00.0/resource",
    "sys/bus/pci/devices/0000:0b:00.0/driver_override",
    "sys/bus/pci/devices/0000:0b:00.0/power_state",
    "sys/bus/pci/devices/0000:0b:00.0/boot_vga",
    "sys/bus/pci/devices/0000:0b:00.1/uevent",
    "sys/bus/pci/devices/0000:0b:00.1",
    "sys/bus/pci/devices/0000:01:00.0/driver",
    "sys/kernel/iommu_groups/1/devices",
    "sys/kernel/iommu_groups/1",
    "sys/class/vtconsole/vtcon1/bind",
    "sys/class/iommu",
    "sys/module/kvm_intel/parameters/nested",
    "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
    "proc/cmdline",
    "proc/cpuinfo",
    "proc/interrupts",
    "proc/sys/kernel/osrelease",
    "usr/share/misc/pci.ids",
];

/// A secret outside the root: no link may bring it into the inventory.
const SECRET: &str = "intel_iommu=on ESCAPED-SECRET";

#[derive(Debug, Clone)]
enum Plant {
    Bytes(Vec<u8>),
    /// A sparse file of this many bytes (up to 16 MB).
    Huge(u64),
    Fifo,
    /// A link to the secret outside the root, by absolute path.
    LinkOut,
    /// A link climbing out of the root with `..`.
    LinkUp,
    /// A link to itself.
    Loop,
    Dir,
}

fn plant() -> impl Strategy<Value = Plant> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Plant::Bytes),
        1 => (0u64..16 << 20).prop_map(Plant::Huge),
        2 => Just(Plant::Fifo),
        1 => Just(Plant::LinkOut),
        1 => Just(Plant::LinkUp),
        1 => Just(Plant::Loop),
        1 => Just(Plant::Dir),
    ]
}

fn apply(root: &Path, secret: &Path, rel: &str, what: &Plant) -> std::io::Result<()> {
    let at = root.join(rel);
    if let Some(parent) = at.parent() {
        fs::create_dir_all(parent)?;
    }
    if fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir() && !m.file_type().is_symlink()) {
        fs::remove_dir_all(&at)?;
    } else {
        let _ = fs::remove_file(&at);
    }
    match what {
        Plant::Bytes(b) => fs::write(&at, b),
        Plant::Huge(n) => fs::File::create(&at)?.set_len(*n),
        Plant::Fifo => rustix::fs::mknodat(
            rustix::fs::CWD,
            &at,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .map_err(std::io::Error::from),
        Plant::LinkOut => std::os::unix::fs::symlink(secret, &at),
        Plant::LinkUp => std::os::unix::fs::symlink("../../../../../../../../../secret", &at),
        Plant::Loop => std::os::unix::fs::symlink(&at, &at),
        Plant::Dir => fs::create_dir(&at),
    }
}

/// The inventory of the planted tree, on a thread watched for [`TREE_PATIENCE`].
fn collect_within(root: &Path) -> Option<Inventory> {
    let (tx, rx) = mpsc::channel();
    let root = root.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(Inventory::collect(&SysRoot::new(root)));
    });
    rx.recv_timeout(TREE_PATIENCE).ok()
}

const TREE_PATIENCE: Duration = Duration::from_secs(20);

fn check_tree(plants: &[(&'static str, Plant)]) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let secret = tmp.path().join("secret");
    fs::write(&secret, SECRET).expect("secret");
    let root = tmp.path().join("host");
    presets::desktop().write(&root).expect("fixture");
    for (rel, what) in plants {
        // A plant under an earlier one that is no directory is simply not made.
        let _ = apply(&root, &secret, rel, what);
    }
    let inv = collect_within(&root);
    prop_assert!(inv.is_some(), "the inventory hung on {plants:?}");
    let inv = inv.expect("checked");
    let text = serde_json::to_string(&inv).expect("json");
    prop_assert!(!text.contains("ESCAPED-SECRET"), "a link escaped the root");
    for w in &inv.warnings {
        prop_assert!(!w.trim().is_empty(), "an empty warning");
    }
    // Every FIFO the readers met is named in a warning.
    for (rel, what) in plants {
        let at = root.join(rel);
        let is_fifo = fs::symlink_metadata(&at)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()));
        if matches!(what, Plant::Fifo) && is_fifo && fifo_is_read(rel) {
            let name = at.display().to_string();
            prop_assert!(
                inv.warnings.iter().any(|w| w.contains(&name)),
                "no warning for the FIFO {name}: {:#?}",
                inv.warnings
            );
        }
    }
    Ok(())
}

/// FIFOs where the inventory always reads (others may be skipped, a FIFO `driver` link).
fn fifo_is_read(rel: &str) -> bool {
    rel.ends_with("/uevent")
        || rel.ends_with("/reset_method")
        || rel == "proc/cmdline"
        || rel == "proc/interrupts"
}

#[test]
fn the_host_readers_take_any_tree() {
    let mut runner = proptest::test_runner::TestRunner::new(config(TREE_CASES));
    let strategy = prop::collection::vec((prop::sample::select(TREE_PATHS), plant()), 1..6);
    runner
        .run(&strategy, |plants| check_tree(&plants))
        .unwrap_or_else(|e| panic!("{e}"));
}
