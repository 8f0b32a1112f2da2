//! The check that says whether the host's VM state (`/var/lib/phyllome`) survives a power off,
//! on fixture hosts whose mount table is the host image's: a live boot with and without the
//! `PHYLLOME-DATA` disk. The same check on the real image booted from its ISO is in
//! `host_image::iso`.

use crate::support;
use crate::support::cli::Cli;
use crate::support::ui::Ui;

use phyllome::fixture::presets;
use phyllome::host::{Inventory, SysRoot};
use phyllome::tui::action::Loaded;
use phyllome::tui::{update, Action, Keymap, State, Theme};

use std::path::Path;

/// `/proc/self/mountinfo` of the host image booted with no disk: the initramfs is the root.
const LIVE: &str = "1 1 0:2 / / rw - rootfs rootfs rw,size=1003584k,nr_inodes=250896\n\
    22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n\
    23 1 0:5 / /dev rw,nosuid shared:8 - devtmpfs devtmpfs rw,size=4096k,mode=755\n\
    25 1 0:23 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755\n";
/// What fstab adds when a filesystem labelled PHYLLOME-DATA is found.
const DATA: &str = "40 1 254:16 / /var/lib/phyllome rw,relatime shared:20 - ext4 /dev/vdb rw\n";

const ID: &str = "vm_state_persistent";

/// A desktop fixture host whose mount table is `mountinfo`.
fn live_host(mountinfo: &str) -> Cli {
    let cli = Cli::new().host(presets::desktop());
    std::fs::write(cli.root().join("proc/self/mountinfo"), mountinfo).unwrap();
    cli
}

fn state_check(v: &serde_json::Value) -> serde_json::Value {
    let checks = v["checks"].as_array().unwrap();
    let found: Vec<_> = checks.iter().filter(|c| c["id"] == ID).collect();
    assert_eq!(found.len(), 1, "{checks:?}");
    found[0].clone()
}

#[test]
fn host_json_warns_when_the_state_is_in_ram_and_passes_on_the_data_disk() {
    let live = live_host(LIVE);
    let c = state_check(&live.json(&["host", "--json"]));
    assert_eq!(c["status"], "warn");
    assert_eq!(c["title"], "VM state kept across reboots");
    assert_eq!(
        c["detail"],
        "/var/lib/phyllome is on rootfs (mounted on /): VM definitions are kept in RAM only and \
         lost at power off"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("mkfs.ext4 -L PHYLLOME-DATA /dev/sdX1) and reboot"),
        "{c}"
    );

    let data = live_host(&format!("{LIVE}{DATA}"));
    let c = state_check(&data.json(&["host", "--json"]));
    assert_eq!(c["status"], "pass");
    assert_eq!(
        c["detail"],
        "/var/lib/phyllome is on ext4 /dev/vdb (mounted on /var/lib/phyllome)"
    );
    assert!(c["fix"].is_null());
}

#[test]
fn the_check_is_about_the_host_not_the_state_dir_of_this_run() {
    // Every Cli run passes --state-dir (a temporary directory of this machine); the check still
    // reads the host's /var/lib/phyllome in the host's mount table, whatever that dir is on.
    let disk = Cli::new().host(presets::desktop());
    let c = state_check(&disk.json(&["host", "--json"]));
    assert_eq!(c["status"], "pass");
    assert_eq!(
        c["detail"],
        "/var/lib/phyllome is on ext4 /dev/nvme0n1p2 (mounted on /)"
    );
    // A host tree with no mount table to read says nothing rather than guess.
    let bare = Cli::new().host(presets::desktop());
    std::fs::remove_file(bare.root().join("proc/self/mountinfo")).unwrap();
    let v = bare.json(&["host", "--json"]);
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["id"] != ID));
}

#[test]
fn host_text_names_the_fix() {
    let out = live_host(LIVE).ok(&["host"]);
    let line = out
        .lines()
        .position(|l| l.contains("VM state kept across reboots"))
        .unwrap_or_else(|| panic!("no state check:\n{out}"));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[line].contains("WARN"), "{}", lines[line]);
    assert!(lines[line].contains("kept in RAM only"), "{}", lines[line]);
    assert!(
        lines[line + 1].contains("fix: label a partition PHYLLOME-DATA"),
        "{}",
        lines[line + 1]
    );
}

fn overview(root: &Path, cols: u16, rows: u16) -> Ui {
    let keymap = Keymap::defaults().unwrap();
    let mut state = State::new(&keymap, Theme::new(false, true), false, cols, rows);
    let loaded = Loaded {
        inventory: Inventory::collect(&SysRoot::new(root)),
        host_name: Some("phyllome".into()),
    };
    update(&mut state, Action::InventoryLoaded(Box::new(loaded)));
    Ui::new(state, keymap)
}

#[test]
fn the_overview_of_a_live_boot_says_so() {
    let live = live_host(LIVE);
    let ui = overview(live.root(), 120, 40);
    let screen = ui.screen();
    assert!(
        screen.contains("VM state kept across reboots: /var/lib/phyllome is on rootfs"),
        "{screen}"
    );
    support::snap("tui_overview_live_boot_120x40", &screen);
    // At 80x24 the checks scroll: the last one is the state's, with its fix.
    let mut ui = overview(live.root(), 80, 24);
    ui.keys("<end>");
    let screen = ui.screen();
    assert!(
        screen.contains("fix: label a partition PHYLLOME-DATA"),
        "{screen}"
    );
    support::snap("tui_overview_live_boot_80x24_end", &screen);

    let data = live_host(&format!("{LIVE}{DATA}"));
    let screen = overview(data.root(), 120, 40).screen();
    assert!(
        screen.contains("VM state kept across reboots: /var/lib/phyllome is on ext4 /dev/vdb"),
        "{screen}"
    );
    assert!(!screen.contains("PHYLLOME-DATA"), "{screen}");
}
