//! Plans and their guard rails on fixture trees: what is refused, what needs a typed
//! confirmation, and the dry run as people and scripts see it.

use crate::support;

use std::os::unix::fs::symlink;

use phyllome::fixture::{presets, FixtureDevice, FixtureProcess, HostSpec};
use phyllome::host::{Inventory, PciAddress, SysRoot};
use phyllome::vfio::{self, PlanError, PlanOptions};

fn addr(s: &str) -> PciAddress {
    s.parse().expect("address")
}

fn plan_on(spec: &HostSpec, address: &str) -> (tempfile::TempDir, Result<vfio::Plan, PlanError>) {
    let dir = tempfile::tempdir().expect("tempdir");
    spec.write(dir.path()).expect("fixture");
    let root = SysRoot::new(dir.path());
    let inv = Inventory::collect(&root);
    let plan = vfio::plan(&root, &inv, addr(address), &PlanOptions::default());
    (dir, plan)
}

#[test]
fn desktop_dry_run_text_and_json() {
    let (_dir, plan) = plan_on(&presets::desktop(), "0000:0b:00.0");
    let plan = plan.expect("plan");
    support::snap("vfio_plan_desktop", &plan);
    let json = serde_json::to_string_pretty(&plan.to_json()).unwrap();
    support::snap("vfio_plan_desktop_json", json);
}

#[test]
fn root_disk_in_the_group_is_refused() {
    let mut spec = presets::desktop();
    let nvme = spec
        .devices
        .iter_mut()
        .find(|d| d.address == addr("0000:01:00.0"))
        .unwrap();
    nvme.group = Some(14);
    let (_dir, plan) = plan_on(&spec, "0000:0b:00.0");
    let err = plan.unwrap_err();
    assert!(matches!(err, PlanError::Critical { device, .. } if device == addr("0000:01:00.0")));
    assert_eq!(
        err.to_string(),
        "IOMMU group 14 holds 0000:01:00.0, the host's root disk controller (/ on nvme0n1p2): \
         giving the group away would cut the host off"
    );
}

#[test]
fn default_route_nic_in_the_group_is_refused() {
    let mut spec = presets::desktop();
    let nic = spec
        .devices
        .iter_mut()
        .find(|d| d.address == addr("0000:06:00.0"))
        .unwrap();
    nic.group = Some(14);
    let (_dir, plan) = plan_on(&spec, "0000:0b:00.1");
    let err = plan.unwrap_err().to_string();
    assert!(
        err.contains("network card of the default route (enp3s0)"),
        "{err}"
    );
}

#[test]
fn serial_console_uart_in_the_group_is_refused() {
    let mut spec = presets::desktop();
    spec.devices.push(
        FixtureDevice::new("0000:0b:00.2", 0x070002, 0x1c00, 0x3253)
            .driver("serial")
            .group(14),
    );
    spec.cmdline.push_str(" console=ttyS4,115200n8");
    let dir = tempfile::tempdir().unwrap();
    spec.write(dir.path()).unwrap();
    std::fs::create_dir_all(dir.path().join("sys/class/tty/ttyS4")).unwrap();
    symlink(
        "../../../bus/pci/devices/0000:0b:00.2",
        dir.path().join("sys/class/tty/ttyS4/device"),
    )
    .unwrap();
    let root = SysRoot::new(dir.path());
    let err = vfio::plan(
        &root,
        &Inventory::collect(&root),
        addr("0000:0b:00.0"),
        &PlanOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("serial console UART (ttyS4)"), "{err}");
}

#[test]
fn bmc_display_is_refused() {
    let (_dir, plan) = plan_on(&presets::server_bmc(), "0000:04:00.0");
    let err = plan.unwrap_err();
    assert!(matches!(err, PlanError::Management { .. }), "{err}");
    assert!(err.to_string().contains("management (BMC) display"));
}

#[test]
fn console_gpu_needs_a_typed_confirmation() {
    let (_dir, plan) = plan_on(&presets::desktop(), "0000:0b:00.1");
    let mut plan = plan.unwrap();
    let c = plan.needs_confirmation.clone().expect("confirmation");
    assert!(c.reason.contains("shows the host console"), "{}", c.reason);
    assert_eq!(c.phrase, "take the console from 0000:0b:00.0");
    assert!(!plan.is_confirmed());
    assert!(matches!(
        plan.confirm("yes"),
        Err(PlanError::WrongPhrase { .. })
    ));
    plan.confirm(&c.phrase).unwrap();
    assert!(plan.is_confirmed());
}

#[test]
fn hosts_without_iommu_or_groups_are_refused() {
    let (_dir, plan) = plan_on(&presets::no_iommu(), "0000:0b:00.0");
    assert!(matches!(plan.unwrap_err(), PlanError::IommuOff { .. }));
    let (_dir, plan) = plan_on(&presets::desktop(), "0000:0b:00.7");
    assert_eq!(
        plan.unwrap_err().to_string(),
        "No PCI device 0000:0b:00.7 on this host"
    );
    let mut spec = presets::desktop();
    spec.devices
        .push(FixtureDevice::new("0000:0d:00.0", 0x020000, 0x8086, 0x1539).driver("igb"));
    let (_dir, plan) = plan_on(&spec, "0000:0d:00.0");
    assert!(matches!(plan.unwrap_err(), PlanError::NoGroup(_)));
    let mut spec = presets::desktop();
    spec.vfio_loaded = false;
    let (_dir, plan) = plan_on(&spec, "0000:0b:00.0");
    assert!(matches!(plan.unwrap_err(), PlanError::NoVfioPci));
}

#[test]
fn shared_group_moves_every_endpoint_but_no_bridge() {
    let (_dir, plan) = plan_on(&presets::two_gpus_shared_group(), "0000:01:00.0");
    let plan = plan.unwrap();
    let moved: Vec<String> = plan.devices.iter().map(|d| d.address.to_string()).collect();
    assert_eq!(
        moved,
        [
            "0000:01:00.0",
            "0000:01:00.1",
            "0000:02:00.0",
            "0000:02:00.1"
        ]
    );
    assert!(
        plan.needs_confirmation.is_none(),
        "the console is on the iGPU"
    );
}

/// A display server and PipeWire holding the GPU's and its audio's nodes: named in the plan,
/// and the owner must say go on.
fn desktop_in_use() -> HostSpec {
    let mut spec = presets::desktop();
    spec.processes = vec![
        FixtureProcess {
            pid: 812,
            comm: "Xorg".into(),
            opens: vec!["/dev/dri/card0".into(), "/dev/dri/renderD128".into()],
        },
        FixtureProcess {
            pid: 900,
            comm: "pipewire".into(),
            opens: vec!["/dev/null".into(), "/dev/snd/controlC0".into()],
        },
        FixtureProcess {
            pid: 1,
            comm: "systemd".into(),
            opens: vec!["/dev/null".into()],
        },
    ];
    spec
}

#[test]
fn processes_holding_the_gpus_nodes_are_named_and_must_be_confirmed() {
    let mut spec = desktop_in_use();
    spec.console = phyllome::fixture::Console::None;
    let (_dir, plan) = plan_on(&spec, "0000:0b:00.0");
    let mut plan = plan.expect("plan");
    let held: Vec<(u32, &str, &str)> = plan
        .holders
        .iter()
        .map(|h| (h.pid, h.command.as_str(), h.node.as_str()))
        .collect();
    assert_eq!(
        held,
        vec![
            (812, "Xorg", "/dev/dri/card0"),
            (812, "Xorg", "/dev/dri/renderD128"),
            (900, "pipewire", "/dev/snd/controlC0"),
        ]
    );
    let c = plan.needs_confirmation.clone().expect("confirmation asked");
    assert_eq!(c.phrase, "unbind 0000:0b:00.0 in use");
    assert!(
        c.reason.contains("Xorg (pid 812) holds /dev/dri/card0"),
        "{}",
        c.reason
    );
    let text = plan.to_string();
    assert!(
        text.contains("Held open: /dev/snd/controlC0 by pipewire (pid 900)"),
        "{text}"
    );
    assert!(plan.confirm("yes").is_err());
    plan.confirm("unbind 0000:0b:00.0 in use")
        .expect("the phrase");
    assert!(plan.is_confirmed());
}

#[test]
fn holders_of_the_console_gpu_join_its_confirmation() {
    let (_dir, plan) = plan_on(&desktop_in_use(), "0000:0b:00.0");
    let plan = plan.expect("plan");
    let c = plan.needs_confirmation.expect("confirmation asked");
    assert_eq!(c.phrase, "take the console from 0000:0b:00.0");
    assert!(c.reason.contains("shows the host console"), "{}", c.reason);
    assert!(c.reason.contains("pipewire (pid 900)"), "{}", c.reason);
}

#[test]
fn an_idle_gpu_needs_no_confirmation_for_holders() {
    let mut spec = presets::desktop();
    spec.console = phyllome::fixture::Console::None;
    let (_dir, plan) = plan_on(&spec, "0000:0b:00.0");
    let plan = plan.expect("plan");
    assert!(plan.holders.is_empty());
    assert!(plan.needs_confirmation.is_none());
}
