//! Reset marks across boots and the boot-time configuration, on fixture trees.

use crate::support;

use std::fs;

use phyllome::fixture::{presets, HostSpec};
use phyllome::host::{Inventory, PciAddress, SysRoot};
use phyllome::vfio::{self, DeviceUse, PlanOptions, ResetMarks};

fn addr(s: &str) -> PciAddress {
    s.parse().expect("address")
}

fn host(spec: &HostSpec) -> (tempfile::TempDir, SysRoot, Inventory) {
    let dir = tempfile::tempdir().expect("tempdir");
    spec.write(dir.path()).expect("fixture");
    let root = SysRoot::new(dir.path());
    let inv = Inventory::collect(&root);
    (dir, root, inv)
}

fn set_boot_id(root: &SysRoot, id: &str) {
    let p = root.root().join("proc/sys/kernel/random");
    fs::create_dir_all(&p).unwrap();
    fs::write(p.join("boot_id"), format!("{id}\n")).unwrap();
}

#[test]
fn a_card_without_reset_needs_a_reboot_until_the_boot_id_changes() {
    let mut spec = presets::desktop();
    spec.devices[4] = spec.devices[4].clone().reset(None);
    let (_dir, root, inv) = host(&spec);
    let state = tempfile::tempdir().unwrap();
    set_boot_id(&root, "aaaa");
    let gpu = inv.device(&addr("0000:0b:00.0")).unwrap();
    let audio = inv.device(&addr("0000:0b:00.1")).unwrap();
    let mut marks = ResetMarks::load(state.path(), &root).unwrap();
    assert!(marks.guest_ran(gpu, "desk").unwrap());
    assert!(
        !marks.guest_ran(audio, "desk").unwrap(),
        "the audio function has FLR"
    );
    assert_eq!(
        DeviceUse::of(gpu, Some(&marks), None),
        DeviceUse::NeedsReboot
    );
    assert_eq!(
        DeviceUse::of(gpu, Some(&marks), Some("desk")).to_string(),
        "in use by VM desk"
    );
    assert_eq!(
        DeviceUse::of(audio, Some(&marks), None).to_string(),
        "host driver snd_hda_intel"
    );

    // Same boot, another process: the mark is still there and the plan warns.
    let marks = ResetMarks::load(state.path(), &root).unwrap();
    assert!(marks.needs_reboot(&gpu.address).is_some());
    let opts = PlanOptions {
        state_dir: Some(state.path().to_path_buf()),
    };
    let plan = vfio::plan(&root, &inv, gpu.address, &opts).unwrap();
    assert_eq!(plan.warnings.len(), 1);
    assert!(
        plan.warnings[0].contains("reboot the host"),
        "{}",
        plan.warnings[0]
    );

    // After a reboot the card is fresh.
    set_boot_id(&root, "bbbb");
    let marks = ResetMarks::load(state.path(), &root).unwrap();
    assert!(marks.marks().is_empty());
    assert_eq!(
        DeviceUse::of(gpu, Some(&marks), None).to_string(),
        "host driver amdgpu"
    );
}

#[test]
fn a_garbled_reset_record_is_an_error_naming_the_file() {
    let (_dir, root, _) = host(&presets::desktop());
    let state = tempfile::tempdir().unwrap();
    fs::write(state.path().join("reset-marks.json"), "{not json").unwrap();
    let err = ResetMarks::load(state.path(), &root).unwrap_err();
    assert!(err
        .to_string()
        .contains("reset-marks.json is not a reset record"));
}

#[test]
fn amd_desktop_boot_config() {
    let (_dir, root, inv) = host(&presets::desktop());
    let cfg = vfio::boot_config(&root, &inv, addr("0000:0b:00.0")).unwrap();
    assert_eq!(
        cfg.kernel_args,
        ["iommu=pt", "vfio-pci.ids=1002:73bf,1002:ab28"]
    );
    let text = cfg.to_string();
    assert!(text.contains("softdep amdgpu pre: vfio-pci"), "{text}");
    assert!(
        text.contains("softdep snd_hda_intel pre: vfio-pci"),
        "{text}"
    );
    assert!(!text.contains("udev"), "{text}");
}

#[test]
fn intel_host_with_duplicate_ids_uses_driver_override() {
    let mut spec = presets::two_gpus_shared_group();
    // A third card like the first, outside the group, stays on the host.
    spec.devices.push(
        phyllome::fixture::FixtureDevice::new("0000:04:00.0", 0x030000, 0x10de, 0x1f08)
            .driver("nouveau")
            .group(5),
    );
    let (_dir, root, inv) = host(&spec);
    let cfg = vfio::boot_config(&root, &inv, addr("0000:01:00.0")).unwrap();
    assert_eq!(cfg.kernel_args, ["intel_iommu=on", "iommu=pt"]);
    let udev = cfg
        .files
        .iter()
        .find(|f| f.path == "/etc/udev/rules.d/60-phyllome-vfio.rules")
        .expect("udev rule");
    assert!(udev.contents.contains(
        "ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"0000:01:00.0\", ATTR{driver_override}=\"vfio-pci\""
    ));
    assert!(cfg.notes.iter().any(|n| n.contains("10de:1f08")));
}

#[test]
fn boot_config_preview_install_undo_and_cmdline_check() {
    let mut spec = presets::two_gpus_shared_group();
    spec.cmdline = "BOOT_IMAGE=/vmlinuz root=/dev/nvme0n1p2".into();
    let (dir, root, inv) = host(&spec);
    fs::create_dir_all(dir.path().join("run")).unwrap();
    fs::write(dir.path().join("run/ostree-booted"), "").unwrap();
    let cfg = vfio::boot_config(&root, &inv, addr("0000:02:00.0")).unwrap();
    support::snap("vfio_boot_config_ostree", &cfg);

    let etc = tempfile::tempdir().unwrap();
    fs::create_dir_all(etc.path().join("etc/modprobe.d")).unwrap();
    fs::write(
        etc.path().join("etc/modprobe.d/phyllome-vfio.conf"),
        "mine\n",
    )
    .unwrap();
    assert!(cfg
        .install(etc.path())
        .unwrap_err()
        .to_string()
        .contains("not written by phyllome"));
    fs::remove_file(etc.path().join("etc/modprobe.d/phyllome-vfio.conf")).unwrap();
    let written = cfg.install(etc.path()).unwrap();
    assert_eq!(written.len(), cfg.files.len());
    assert_eq!(cfg.uninstall(etc.path()).unwrap().len(), cfg.files.len());
    assert!(!etc
        .path()
        .join("etc/modprobe.d/phyllome-vfio.conf")
        .exists());

    assert_eq!(cfg.missing_from_cmdline(&root).len(), cfg.kernel_args.len());
    let all = format!("BOOT_IMAGE=/vmlinuz {}", cfg.kernel_args.join(" "));
    fs::write(dir.path().join("proc/cmdline"), all).unwrap();
    assert!(cfg.missing_from_cmdline(&root).is_empty());
}
