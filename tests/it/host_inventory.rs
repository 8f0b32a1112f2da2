//! The inventory read from fixture host trees laid out like the kernel's sysfs.

use crate::support;

use std::collections::BTreeSet;

use phyllome::fixture::{presets, HostSpec};
use phyllome::host::{CheckStatus, GpuRole, Inventory, PciAddress, SysRoot, Verdict};

fn collect(spec: &HostSpec) -> (tempfile::TempDir, Inventory) {
    let dir = tempfile::tempdir().unwrap();
    spec.write(dir.path()).unwrap();
    let inv = Inventory::collect(&SysRoot::new(dir.path()));
    (dir, inv)
}

fn a(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn check(inv: &Inventory, id: &str) -> CheckStatus {
    inv.checks.iter().find(|c| c.id == id).unwrap().status
}

#[test]
fn desktop_gpu_takes_its_hdmi_audio_and_warns_about_the_console() {
    let (_dir, inv) = collect(&presets::desktop());
    assert_eq!(inv.gpus.len(), 1);
    let gpu = &inv.gpus[0];
    assert_eq!(gpu.address, a("0000:0b:00.0"));
    assert_eq!(gpu.iommu_group, Some(14));
    assert!(gpu.boot_vga && gpu.shows_host_console);
    assert_eq!(gpu.companions, [a("0000:0b:00.1")]);
    assert_eq!(gpu.passthrough.verdict, Verdict::Warn);
    assert!(gpu.passthrough.reasons[0].contains("shows the host console"));
    assert!(gpu
        .passthrough
        .reasons
        .iter()
        .any(|r| r.contains("0000:0b:00.1 goes with it")));
    assert_eq!(gpu.drm_nodes, ["card0", "renderD128"]);
    assert_eq!(gpu.outputs.iter().filter(|o| o.connected).count(), 1);
    assert_eq!(
        gpu.name,
        "Advanced Micro Devices, Inc. [AMD/ATI] Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]"
    );
    let audio = inv.device(&a("0000:0b:00.1")).unwrap();
    assert_eq!(audio.driver.as_deref(), Some("snd_hda_intel"));
    assert_eq!(audio.class_name, "audio device");
    let gpu_dev = inv.device(&gpu.address).unwrap();
    assert!(gpu_dev.rom);
    assert_eq!(
        gpu_dev.reset_methods.as_deref(),
        Some(&["flr".to_string(), "bus".to_string()][..])
    );
    assert_eq!(gpu_dev.bars.iter().map(|b| b.size).max(), Some(256 << 20));
    assert_eq!(check(&inv, "iommu_enabled"), CheckStatus::Pass);
    assert_eq!(check(&inv, "hugepages"), CheckStatus::Pass);
    assert_eq!(inv.iommu.firmware_table.as_deref(), Some("IVRS"));
    assert!(inv.iommu.passthrough_mode);
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
}

#[test]
fn laptop_dgpu_is_ready_and_igpu_holds_the_console() {
    let (_dir, inv) = collect(&presets::laptop());
    let igpu = inv
        .gpus
        .iter()
        .find(|g| g.address == a("0000:00:02.0"))
        .unwrap();
    let dgpu = inv
        .gpus
        .iter()
        .find(|g| g.address == a("0000:01:00.0"))
        .unwrap();
    assert!(igpu.shows_host_console);
    assert_eq!(igpu.passthrough.verdict, Verdict::Warn);
    assert!(!dgpu.shows_host_console);
    // The root port shares the group but bridges stay behind.
    assert!(dgpu.companions.is_empty());
    assert_eq!(
        dgpu.passthrough.verdict,
        Verdict::Ready,
        "{:?}",
        dgpu.passthrough
    );
    assert!(dgpu
        .passthrough
        .reasons
        .iter()
        .any(|r| r.contains("D3cold")));
    assert_eq!(dgpu.drm_nodes, Vec::<String>::new());
}

#[test]
fn two_gpus_in_one_group_must_go_together() {
    let (_dir, inv) = collect(&presets::two_gpus_shared_group());
    let first = inv
        .gpus
        .iter()
        .find(|g| g.address == a("0000:01:00.0"))
        .unwrap();
    assert_eq!(first.iommu_group, Some(1));
    assert_eq!(
        first.companions,
        [a("0000:01:00.1"), a("0000:02:00.0"), a("0000:02:00.1")]
    );
    assert_eq!(first.passthrough.verdict, Verdict::Warn);
    assert!(first.passthrough.reasons[0].starts_with(
        "group 1 also holds 0000:02:00.0 (NVIDIA Corporation GA106 [GeForce RTX 3060"
    ));
    assert!(
        first.passthrough.reasons[0].contains("with 0000:02:00.1: both must go to the same guest")
    );
}

#[test]
fn iommu_off_blocks_every_gpu_with_the_fix() {
    let (_dir, inv) = collect(&presets::no_iommu());
    assert!(!inv.iommu.enabled);
    assert!(
        inv.iommu.reason.contains("intel_iommu=on missing"),
        "{}",
        inv.iommu.reason
    );
    assert!(inv.iommu_groups.is_empty());
    for g in &inv.gpus {
        assert_eq!(g.passthrough.verdict, Verdict::Blocked);
        assert!(g.passthrough.reasons[0].contains("add intel_iommu=on to the kernel command line"));
        assert_eq!(g.iommu_group, None);
    }
    assert_eq!(check(&inv, "iommu_enabled"), CheckStatus::Fail);
    assert_eq!(check(&inv, "iommu_firmware"), CheckStatus::Pass);
    assert_eq!(check(&inv, "gpu_passthrough"), CheckStatus::Fail);
}

#[test]
fn no_kvm_fails_the_checks_and_blocks() {
    let (_dir, inv) = collect(&presets::no_kvm());
    assert!(!inv.kvm.device_present);
    assert_eq!(check(&inv, "kvm"), CheckStatus::Fail);
    assert_eq!(check(&inv, "cpu_virtualization"), CheckStatus::Fail);
    assert_eq!(check(&inv, "vfio_pci"), CheckStatus::Warn);
    assert_eq!(inv.gpus[0].passthrough.verdict, Verdict::Blocked);
    assert!(inv.gpus[0]
        .passthrough
        .reasons
        .iter()
        .any(|r| r.contains("/dev/kvm missing")));
}

#[test]
fn bmc_display_is_management_not_a_target() {
    let (_dir, inv) = collect(&presets::server_bmc());
    assert_eq!(inv.gpus.len(), 1);
    let bmc = &inv.gpus[0];
    assert_eq!(bmc.role, GpuRole::Management);
    assert_eq!(bmc.passthrough.verdict, Verdict::Blocked);
    // The AST bridge is a PCI bridge: not a companion.
    assert!(bmc.companions.is_empty());
    assert_eq!(check(&inv, "gpu_passthrough"), CheckStatus::Fail);
}

#[test]
fn a_gpu_sharing_a_group_with_the_root_disk_is_blocked() {
    let mut spec = presets::two_gpus_shared_group();
    let nvme = spec
        .devices
        .iter_mut()
        .find(|d| d.address == a("0000:03:00.0"))
        .unwrap();
    nvme.group = Some(1);
    let (_dir, inv) = collect(&spec);
    let gpu = inv
        .gpus
        .iter()
        .find(|g| g.address == a("0000:02:00.0"))
        .unwrap();
    assert_eq!(gpu.passthrough.verdict, Verdict::Blocked);
    assert!(
        gpu.passthrough.reasons[0].contains("root disk controller (/ on nvme0n1p2)"),
        "{:?}",
        gpu.passthrough.reasons
    );
}

#[test]
fn the_default_route_nic_is_critical() {
    let mut spec = presets::desktop();
    let nic = spec
        .devices
        .iter_mut()
        .find(|d| d.address == a("0000:06:00.0"))
        .unwrap();
    nic.group = Some(14);
    let (_dir, inv) = collect(&spec);
    let gpu = &inv.gpus[0];
    assert_eq!(gpu.passthrough.verdict, Verdict::Blocked);
    assert!(gpu.passthrough.reasons[0].contains("network card of the default route (enp3s0)"));
}

#[test]
fn no_reset_method_warns() {
    let mut spec = presets::laptop();
    let dgpu = spec
        .devices
        .iter_mut()
        .find(|d| d.address == a("0000:01:00.0"))
        .unwrap();
    dgpu.reset_method = Some(String::new());
    let (_dir, inv) = collect(&spec);
    let gpu = inv
        .gpus
        .iter()
        .find(|g| g.address == a("0000:01:00.0"))
        .unwrap();
    assert_eq!(gpu.passthrough.verdict, Verdict::Warn);
    assert!(gpu
        .passthrough
        .reasons
        .iter()
        .any(|r| r.starts_with("no reset method")));
}

#[test]
fn groups_match_the_devices_iommu_group_links() {
    for spec in [
        presets::laptop(),
        presets::desktop(),
        presets::two_gpus_shared_group(),
        presets::server_bmc(),
    ] {
        let (dir, inv) = collect(&spec);
        let reported: BTreeSet<(u32, PciAddress)> = inv
            .pci_devices
            .iter()
            .filter_map(|d| Some((d.iommu_group?, d.address)))
            .collect();
        // What each function's own `iommu_group` link says, read here independently.
        let devices = dir.path().join("sys/bus/pci/devices");
        let linked: BTreeSet<(u32, PciAddress)> = std::fs::read_dir(&devices)
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let target = std::fs::read_link(e.path().join("iommu_group")).ok()?;
                let group = target.file_name()?.to_str()?.parse().ok()?;
                Some((group, e.file_name().to_str()?.parse().ok()?))
            })
            .collect();
        assert_eq!(reported, linked);
        assert_eq!(linked.len(), spec.devices.len());
        let listed: BTreeSet<(u32, PciAddress)> = inv
            .iommu_groups
            .iter()
            .flat_map(|g| g.devices.iter().map(move |d| (g.id, *d)))
            .collect();
        assert_eq!(listed, linked);
    }
}

#[test]
fn scale_tree_reads_every_device() {
    let (_dir, inv) = collect(&presets::scale(2000));
    let endpoints = inv
        .pci_devices
        .iter()
        .filter(|d| !d.class.is_bridge())
        .count();
    assert_eq!(endpoints, 2000);
    assert_eq!(inv.gpus.len(), 25);
    assert!(inv.gpus.iter().all(|g| g.companions.len() == 7));
}

#[test]
fn missing_and_garbage_files_give_unknown_and_warnings_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    presets::desktop().write(dir.path()).unwrap();
    let gpu = dir.path().join("sys/bus/pci/devices/0000:0b:00.0");
    std::fs::write(gpu.join("class"), "not hex\n").unwrap();
    std::fs::write(gpu.join("uevent"), "PCI_CLASS=zz\n\u{0}").unwrap();
    std::fs::remove_file(gpu.join("power_state")).unwrap();
    std::fs::write(gpu.join("resource"), "\u{0}\u{1} junk\n0x10").unwrap();
    std::fs::write(dir.path().join("proc/cmdline"), vec![0xffu8; 10]).unwrap();
    let devices = dir.path().join("sys/bus/pci/devices");
    std::os::unix::fs::symlink("loop", devices.join("0000:0c:00.4")).unwrap();
    std::os::unix::fs::symlink("0000:0c:00.4", devices.join("loop")).unwrap();
    std::os::unix::fs::symlink("/", devices.join("0000:0c:00.5")).unwrap();
    let inv = Inventory::collect(&SysRoot::new(dir.path()));
    let d = inv.device(&a("0000:0b:00.0")).unwrap();
    assert_eq!(d.class_name, "device");
    assert!(d.bars.is_empty());
    assert!(
        inv.warnings
            .iter()
            .any(|w| w.contains("is not a hex number")),
        "{:?}",
        inv.warnings
    );
    assert!(
        inv.warnings.iter().any(|w| w.contains("loop")),
        "{:?}",
        inv.warnings
    );
    assert!(inv
        .warnings
        .iter()
        .any(|w| w.contains("\"loop\" is not a PCI address")));
    // The GPU was demoted by its garbled class; nothing else is lost.
    assert!(inv.gpus.is_empty());
    assert_eq!(inv.pci_devices.len(), presets::desktop().devices.len() + 1);
}

#[test]
fn an_empty_root_is_all_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let inv = Inventory::collect(&SysRoot::new(dir.path()));
    assert!(inv.pci_devices.is_empty() && inv.gpus.is_empty());
    assert!(!inv.iommu.enabled);
    assert_eq!(check(&inv, "cpu_virtualization"), CheckStatus::Warn);
    assert_eq!(check(&inv, "kvm"), CheckStatus::Fail);
}

#[test]
fn json_keeps_the_contract() {
    let (dir, _) = collect(&presets::desktop());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_phyllome"))
        .args(["host", "--json", "--host-root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "pci_devices",
        "iommu_groups",
        "gpus",
        "iommu",
        "kvm",
        "checks",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    let dev = &v["pci_devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "0000:0b:00.0")
        .unwrap();
    assert_eq!(dev["class"], "030000");
    assert_eq!(dev["vendor_id"], "1002");
    assert_eq!(dev["device_id"], "73bf");
    assert_eq!(dev["driver"], "amdgpu");
    assert_eq!(dev["iommu_group"], 14);
    assert!(dev["vendor_name"].is_string() && dev["device_name"].is_string());
    let bridge = &v["pci_devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "0000:00:00.0")
        .unwrap();
    assert!(bridge["driver"].is_null());
    let group = v["iommu_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == 14)
        .unwrap();
    assert_eq!(
        group["devices"],
        serde_json::json!(["0000:0b:00.0", "0000:0b:00.1"])
    );
    let gpu = &v["gpus"][0];
    assert_eq!(gpu["address"], "0000:0b:00.0");
    assert_eq!(gpu["iommu_group"], 14);
    assert_eq!(gpu["boot_vga"], true);
    assert_eq!(gpu["companions"], serde_json::json!(["0000:0b:00.1"]));
    assert_eq!(gpu["passthrough"]["verdict"], "warn");
    assert!(gpu["passthrough"]["reasons"].as_array().unwrap().len() >= 2);
    assert!(v["iommu"]["enabled"].as_bool().unwrap());
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| ["pass", "warn", "fail"].contains(&c["status"].as_str().unwrap())));
}

#[test]
fn text_output_of_the_two_gpu_host() {
    let (dir, _) = collect(&presets::two_gpus_shared_group());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_phyllome"))
        .args(["host", "--host-root"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    support::snap(
        "host_inventory__host_text_two_gpus",
        String::from_utf8_lossy(&out.stdout),
    );
}

#[test]
fn bad_host_root_is_a_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_phyllome"))
        .args(["host", "--json", "--host-root", "/nonexistent/phyllome"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Host root /nonexistent/phyllome is not a directory"),
        "{err}"
    );
}

#[test]
fn firmware_framebuffer_console_sits_on_the_boot_gpu_only() {
    let mut spec = presets::two_gpus_shared_group();
    spec.console = phyllome::fixture::Console::FirmwareFb;
    let (_dir, inv) = collect(&spec);
    let shown: Vec<PciAddress> = inv
        .gpus
        .iter()
        .filter(|g| g.shows_host_console)
        .map(|g| g.address)
        .collect();
    assert_eq!(shown, [a("0000:00:02.0")]);
}

#[test]
fn cloud_hypervisor_and_firmware_are_found_with_their_version() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    presets::desktop().write(dir.path()).unwrap();
    let bin = dir.path().join("usr/bin/cloud-hypervisor");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, "#!/bin/sh\necho 'cloud-hypervisor v54.0'\n").unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let fw = dir.path().join("usr/share/cloud-hypervisor/CLOUDHV.fd");
    std::fs::create_dir_all(fw.parent().unwrap()).unwrap();
    std::fs::write(&fw, "").unwrap();
    let inv = Inventory::collect(&SysRoot::new(dir.path()));
    let ch = inv.kvm.cloud_hypervisor.as_ref().expect("found");
    assert_eq!(ch.version.as_deref(), Some("v54.0"));
    assert_eq!(inv.kvm.firmware, ["/usr/share/cloud-hypervisor/CLOUDHV.fd"]);
    assert_eq!(check(&inv, "cloud_hypervisor"), CheckStatus::Pass);
    assert_eq!(check(&inv, "guest_firmware"), CheckStatus::Pass);
}

#[test]
fn a_hanging_cloud_hypervisor_does_not_hold_up_the_inventory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    presets::desktop().write(dir.path()).unwrap();
    let bin = dir.path().join("usr/local/bin/cloud-hypervisor");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(&bin, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let inv = Inventory::collect(&SysRoot::new(dir.path()));
    let ch = inv.kvm.cloud_hypervisor.as_ref().expect("found");
    assert_eq!(ch.version, None);
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    const ATTRS: [&str; 10] = [
        "class",
        "vendor",
        "device",
        "uevent",
        "resource",
        "reset_method",
        "power_state",
        "boot_vga",
        "driver_override",
        "numa_node",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any bytes in any attribute of any function: the inventory still lists every
        /// function and never panics.
        #[test]
        fn any_bytes_in_any_attribute(
            device in 0usize..8,
            attr in 0usize..ATTRS.len(),
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let spec = presets::desktop();
            spec.write(dir.path()).unwrap();
            let address = spec.devices[device].address.to_string();
            let path = dir.path().join("sys/bus/pci/devices").join(&address).join(ATTRS[attr]);
            std::fs::write(&path, &bytes).unwrap();
            let inv = Inventory::collect(&SysRoot::new(dir.path()));
            prop_assert_eq!(inv.pci_devices.len(), spec.devices.len());
        }
    }
}
