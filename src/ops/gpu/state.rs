//! Where each device stands, in the words the console and `gpu list` use everywhere.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::host::{Inventory, PciAddress, SysRoot};
use crate::ops::HostPaths;
use crate::vfio::ResetMarks;
use crate::vmm::managed::{DeviceRecord, Holding, Records};
use crate::vmm::runtime::RunRoot;

use super::GpuError;

/// Where a device stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviceState {
    /// On a host driver (or on none, `driver` empty).
    HostDriver { driver: Option<String> },
    /// On vfio-pci, no VM holds it.
    VfioPci,
    /// On vfio-pci for a VM whose VMM runs.
    InUse { vm: String },
    /// A VM's VMM is gone but the release failed: reattach it by hand.
    ReleaseFailed { vm: String, problems: Vec<String> },
    /// A guest ran on a card without a working reset: the host must reboot before reuse.
    NeedsReboot { reason: String },
}

impl DeviceState {
    pub fn words(&self) -> String {
        match self {
            DeviceState::HostDriver { driver: Some(d) } => format!("host driver ({d})"),
            DeviceState::HostDriver { driver: None } => "no driver".to_string(),
            DeviceState::VfioPci => "vfio-pci".to_string(),
            DeviceState::InUse { vm } => format!("in use by VM {vm}"),
            DeviceState::ReleaseFailed { vm, .. } => format!("release failed (VM {vm})"),
            DeviceState::NeedsReboot { .. } => "needs reboot".to_string(),
        }
    }
}

/// What managed mode recorded, with a hold whose VMM and supervisor are both gone left out
/// (the next `vm list` releases it).
pub fn live_records(paths: &HostPaths) -> Vec<DeviceRecord> {
    let Ok(run_root) = paths.run_root() else {
        return Vec::new();
    };
    Records::new(&run_root)
        .all()
        .into_iter()
        .filter(|r| r.state == Holding::ReleaseFailed || vm_alive(&run_root, r))
        .collect()
}

fn vm_alive(run_root: &RunRoot, rec: &DeviceRecord) -> bool {
    let Ok(rt) = run_root.vm(&rec.vm) else {
        return false;
    };
    let alive = |p: u32| crate::vmm::launch::pid_is_vmm(p, &rt.api_socket);
    rec.supervisor_pid.is_some_and(alive) || rt.read_pid().is_some_and(alive)
}

pub fn state_of(
    inv: &Inventory,
    records: &[DeviceRecord],
    marks: Option<&ResetMarks>,
    address: &PciAddress,
) -> DeviceState {
    let driver = inv.device(address).and_then(|d| d.driver.clone());
    if let Some(mark) = marks.and_then(|m| m.needs_reboot(address)) {
        return DeviceState::NeedsReboot {
            reason: mark.warning(),
        };
    }
    if let Some(rec) = records.iter().find(|r| r.devices.contains(address)) {
        return match rec.state {
            Holding::ReleaseFailed => DeviceState::ReleaseFailed {
                vm: rec.vm.clone(),
                problems: rec.problems.clone(),
            },
            Holding::Held => DeviceState::InUse { vm: rec.vm.clone() },
        };
    }
    match driver.as_deref() {
        Some(crate::vfio::VFIO_PCI) => DeviceState::VfioPci,
        _ => DeviceState::HostDriver { driver },
    }
}

/// The "needs host reboot" marks, when phyllome's state directory has any.
pub fn reset_marks(paths: &HostPaths, root: &SysRoot) -> Option<ResetMarks> {
    ResetMarks::load(paths.plan_options().state_dir.as_deref()?, root).ok()
}

/// The state of every PCI device of the host.
pub fn states(paths: &HostPaths) -> Result<BTreeMap<PciAddress, DeviceState>, GpuError> {
    let host = crate::ops::host::read(paths)?;
    let inv = &host.inventory;
    let records = live_records(paths);
    let marks = reset_marks(paths, &host.root);
    Ok(inv
        .pci_devices
        .iter()
        .map(|d| {
            let s = state_of(inv, &records, marks.as_ref(), &d.address);
            (d.address, s)
        })
        .collect())
}
