//! The GPU operations on fixture trees: their typed refusals and the states they leave.

use std::fs;
use std::path::Path;

use crate::fixture::presets;
use crate::host::PciAddress;
use crate::ops::{HostPaths, PathsError};
use crate::vmm::device_ops::SimulateError;
use crate::vmm::managed::{DeviceRecord, Holding, Records};

use super::*;

const GPU: &str = "0000:0b:00.0";
const AUDIO: &str = "0000:0b:00.1";
const NIC: &str = "0000:06:00.0";

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

/// A desktop fixture with its state and run directories, simulated unless told otherwise.
struct Host {
    _dir: tempfile::TempDir,
    paths: HostPaths,
}

impl Host {
    fn desktop() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("host");
        presets::desktop().write(&root).unwrap();
        let mut paths = HostPaths::new(&root);
        paths.state_dir = Some(dir.path().join("state"));
        paths.run_dir = Some(dir.path().join("run"));
        paths.simulate = true;
        Host { _dir: dir, paths }
    }

    fn define(&self, name: &str, extra: &str) {
        let dir = self.paths.state_dir.as_ref().unwrap().join("vms");
        fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "{extra}\n[cpus]\nboot = 2\n\n[memory]\nsize = \"512M\"\n\n[boot]\nkernel = \"/boot/vmlinuz\"\n"
        );
        fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    }

    fn state(&self, address: &str) -> DeviceState {
        states(&self.paths).unwrap()[&addr(address)].clone()
    }

    fn driver(&self, address: &str) -> Option<String> {
        let link = self
            .paths
            .host_root
            .join("sys/bus/pci/devices")
            .join(address)
            .join("driver");
        fs::read_link(link)
            .ok()
            .and_then(|t| Some(t.file_name()?.to_string_lossy().into_owned()))
    }

    /// Plans and runs a detach of `address`, the console question answered.
    fn detach(&self, address: &str) -> Result<(), GpuError> {
        let host = crate::ops::host::read(&self.paths)?;
        let mut plan = detach_plan(&self.paths, &host, addr(address))?;
        let phrase = plan.needs_confirmation.clone().map(|c| c.phrase);
        confirm(&mut plan, phrase.as_deref())?;
        apply(&self.paths, &plan, &host.root, &mut |_| {})
    }
}

#[test]
fn devices_start_on_their_host_drivers_and_a_detach_moves_the_whole_group() {
    let host = Host::desktop();
    let amdgpu = DeviceState::HostDriver {
        driver: Some("amdgpu".into()),
    };
    assert_eq!(host.state(GPU), amdgpu);
    assert_eq!(host.state(GPU).words(), "host driver (amdgpu)");
    host.detach(GPU).unwrap();
    assert_eq!(host.state(GPU), DeviceState::VfioPci);
    assert_eq!(host.state(AUDIO), DeviceState::VfioPci);
    assert_eq!(
        host.state(NIC),
        DeviceState::HostDriver {
            driver: Some("igb".into())
        }
    );
}

#[test]
fn a_failed_release_on_record_is_the_devices_state() {
    let host = Host::desktop();
    let records = Records::new(&host.paths.run_root().unwrap());
    records
        .write(&DeviceRecord {
            vm: "win".into(),
            devices: vec![addr(GPU)],
            came_from: Vec::new(),
            state: Holding::ReleaseFailed,
            since: 0,
            supervisor_pid: None,
            problems: vec!["unbind failed".into()],
        })
        .unwrap();
    assert_eq!(
        host.state(GPU),
        DeviceState::ReleaseFailed {
            vm: "win".into(),
            problems: vec!["unbind failed".into()],
        }
    );
    // A reattach settles it.
    let h = crate::ops::host::read(&host.paths).unwrap();
    let plan = detach_plan(&host.paths, &h, addr(GPU)).unwrap();
    forget_failed_release(&host.paths, &plan);
    assert!(matches!(host.state(GPU), DeviceState::HostDriver { .. }));
}

#[test]
fn assigning_to_an_unknown_vm_is_refused() {
    let host = Host::desktop();
    host.define("win", "");
    let e = prepare(&host.paths, GPU, "nope").unwrap_err();
    assert!(matches!(&e, GpuError::UnknownVm(n) if n == "nope"), "{e:?}");
}

#[test]
fn a_device_another_vm_has_is_refused() {
    let host = Host::desktop();
    host.define("win", &format!("[[vfio]]\naddress = \"{AUDIO}\"\n"));
    host.define("lin", "");
    let e = prepare(&host.paths, GPU, "lin").unwrap_err();
    assert!(
        matches!(&e, GpuError::TakenBy { address, vm } if *address == addr(AUDIO) && vm == "win"),
        "{e:?}"
    );
    // Its holder gets it again without complaint: nothing new to record.
    let p = prepare(&host.paths, GPU, "win").unwrap();
    assert!(!p.running);
    assert_eq!(p.new, vec![addr(GPU)]);
}

#[test]
fn unassigning_a_device_no_vm_has_is_refused() {
    let host = Host::desktop();
    host.define("win", "");
    let mut lines = Vec::new();
    let e = unassign(&host.paths, GPU, &mut |l| lines.push(l.to_string())).unwrap_err();
    assert!(
        matches!(&e, GpuError::NotAssigned(a) if *a == addr(GPU)),
        "{e:?}"
    );
    assert!(lines.is_empty());
}

#[test]
fn assign_then_unassign_a_stopped_vm_edits_only_its_definition() {
    let host = Host::desktop();
    host.define("win", "");
    let mut p = prepare(&host.paths, GPU, "win").unwrap();
    let phrase = p.plan.needs_confirmation.clone().map(|c| c.phrase);
    confirm(&mut p.plan, phrase.as_deref()).unwrap();
    let mut lines = Vec::new();
    finish(
        &host.paths,
        &p,
        &mut |l| lines.push(l.to_string()),
        &mut |_, _| panic!("a stopped VM moves nothing"),
    )
    .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("when VM win starts")),
        "{lines:?}"
    );
    let inv = crate::ops::host::read(&host.paths).unwrap().inventory;
    let (vm, entries) = holder(&host.paths, &inv, addr(AUDIO)).unwrap().unwrap();
    assert_eq!((vm.as_str(), entries.len()), ("win", 2));
    unassign(&host.paths, GPU, &mut |_| {}).unwrap();
    assert!(holder(&host.paths, &inv, addr(GPU)).unwrap().is_none());
    assert_eq!(host.driver(GPU).as_deref(), Some("amdgpu"));
}

#[test]
fn the_console_gpu_without_confirmation_is_refused() {
    let host = Host::desktop();
    let h = crate::ops::host::read(&host.paths).unwrap();
    let mut plan = detach_plan(&host.paths, &h, addr(GPU)).unwrap();
    let e = confirm(&mut plan, None).unwrap_err();
    assert!(
        matches!(&e, GpuError::NeedsYes { address, .. } if *address == addr(GPU)),
        "{e:?}"
    );
    let e = confirm(&mut plan, Some("whatever")).unwrap_err();
    assert!(matches!(e, GpuError::Declined { .. }), "{e:?}");
    assert!(!plan.is_confirmed());
}

#[test]
fn simulating_without_a_fixture_writes_nothing() {
    let host = Host::desktop();
    let marker = host.paths.host_root.join("fixture/native-drivers");
    fs::remove_file(&marker).unwrap();
    let before = host.driver(GPU);
    let e = host.detach(GPU).unwrap_err();
    assert!(
        matches!(e, GpuError::Simulate(SimulateError::NotAFixture { .. })),
        "{e:?}"
    );
    assert_eq!(host.driver(GPU), before);
    let override_file = host
        .paths
        .host_root
        .join("sys/bus/pci/devices")
        .join(GPU)
        .join("driver_override");
    let text = fs::read_to_string(override_file).unwrap_or_default();
    assert!(!text.contains("vfio-pci"), "{text:?}");
}

#[test]
fn without_the_switch_a_fixture_tree_gets_plain_writes() {
    let mut host = Host::desktop();
    host.paths.simulate = false;
    // The files are written, but no kernel acts on them: the check step finds the device
    // still on amdgpu, and the rollback puts everything back.
    let e = host.detach(GPU).unwrap_err();
    assert!(matches!(e, GpuError::Apply(_)), "{e:?}");
    assert_eq!(host.driver(GPU).as_deref(), Some("amdgpu"));
}

#[test]
fn a_host_root_that_is_no_directory_is_a_paths_error() {
    let paths = HostPaths::new(Path::new("/nonexistent/phyllome"));
    let e = states(&paths).unwrap_err();
    assert!(
        matches!(e, GpuError::Paths(PathsError::BadHostRoot(_))),
        "{e:?}"
    );
}
