//! GPU moves: hand a GPU (its whole IOMMU group) to vfio-pci and back, give it to a VM or
//! take it away (hot-plugged when the VM runs), its boot-time claim, and where each device
//! stands. Every read and write goes under the host root of [`HostPaths`], through the
//! simulated kernel of a fixture tree when `simulate` is on.

mod assign;
mod boot;
mod hotplug;
mod moves;
mod state;
#[cfg(test)]
mod tests;

pub use assign::{finish, holder, prepare, unassign, Prepared, Unassigned};
pub use boot::{boot_config, Boot};
pub use hotplug::{hot_plug, unplug, Detach};
pub use moves::{apply, confirm, detach_plan, forget_failed_release, reattach_plan, refuse_in_use};
pub use state::{live_records, reset_marks, state_of, states, DeviceState};

use crate::host::pci_address::ParseAddressError;
use crate::host::{Inventory, PciAddress};
use crate::vfio::{ApplyError, PersistError, PlanError};
use crate::vm::StoreError;
use crate::vmm::device_ops::SimulateError;
use crate::vmm::error::VmmError;
use crate::vmm::managed::ManagedError;

use super::vm::VmOpsError;
use super::PathsError;

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("{0}")]
    Paths(#[from] PathsError),
    #[error("{0}")]
    Address(#[from] ParseAddressError),
    #[error("No PCI device {0} on this host; see `phyllome gpu list`")]
    NoDevice(PciAddress),
    #[error("{0} has no IOMMU group: turn the IOMMU on (intel_iommu=on or amd_iommu=on) before passing it through")]
    NoGroup(PciAddress),
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Apply(#[from] ApplyError),
    #[error("{0}")]
    Boot(#[from] PersistError),
    #[error("{0}")]
    Simulate(#[from] SimulateError),
    /// The plan takes the host console and nobody confirmed: refused, nothing changed.
    #[error("Refusing to take {address} without confirmation: {reason}. There is no terminal to type the confirmation on; pass --yes if you can reach this host over serial or SSH")]
    NeedsYes { address: PciAddress, reason: String },
    #[error("Not confirmed: the phrase typed was not {phrase:?}; nothing was changed")]
    Declined { phrase: String },
    #[error("{address} is in use by VM {vm}; stop the VM or run `phyllome gpu unassign {address}` first")]
    InUse { address: PciAddress, vm: String },
    #[error("No VM named {0:?}; see `phyllome vm list`")]
    UnknownVm(String),
    #[error("No VM chosen")]
    NoVm,
    #[error("{address} is already given to VM {vm}; run `phyllome gpu unassign {address}` first")]
    TakenBy { address: PciAddress, vm: String },
    #[error("{0} is not assigned to any VM")]
    NotAssigned(PciAddress),
    #[error("VM {vm} is {state}; start or stop it fully, then try again")]
    Busy { vm: String, state: String },
    #[error("No plan to run")]
    NoPlan,
    #[error("The host changed since the plan was shown: close this and plan again")]
    PlanChanged,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("Cannot record the devices in VM {vm}")]
    Record {
        vm: String,
        #[source]
        source: StoreError,
    },
    #[error("Cannot change VM {vm}")]
    Change {
        vm: String,
        #[source]
        source: StoreError,
    },
    #[error("{0}")]
    Vm(#[from] VmOpsError),
    #[error("{0}")]
    Managed(#[from] ManagedError),
    /// A refused hot-plug: what went in was unplugged and the group released (`released`
    /// says how that went).
    #[error("vm.add-device {address} failed{}", released_note(.released))]
    HotPlug {
        address: PciAddress,
        #[source]
        source: VmmError,
        released: Option<String>,
    },
    #[error("vm.remove-device {id} ({address}) failed")]
    Unplug {
        id: String,
        address: PciAddress,
        #[source]
        source: VmmError,
    },
    #[error("The running kernel lacks {}: install the configuration, run the commands it lists and reboot", .0.join(" "))]
    BootMissing(Vec<String>),
}

/// After a refused hot-plug: `None` when the group went back to its host drivers, else why not.
fn released_note(released: &Option<String>) -> String {
    match released {
        None => {
            "; the group is back on its host drivers and stays in the definition for the next start"
                .into()
        }
        Some(problem) => format!("; and giving the group back failed: {problem}"),
    }
}

impl From<crate::vmm::runtime::RuntimeError> for GpuError {
    fn from(e: crate::vmm::runtime::RuntimeError) -> Self {
        GpuError::Paths(PathsError::RunRoot(e))
    }
}

/// Parses an address and checks the host has it, so typos fail before anything else.
pub fn device_address(inv: &Inventory, text: &str) -> Result<PciAddress, GpuError> {
    let address: PciAddress = text.trim().parse()?;
    if inv.device(&address).is_none() {
        return Err(GpuError::NoDevice(address));
    }
    Ok(address)
}

/// The endpoints of the address's IOMMU group (bridges excepted), the unit that moves.
pub fn group_endpoints(inv: &Inventory, address: PciAddress) -> Result<Vec<PciAddress>, GpuError> {
    let dev = inv.device(&address).ok_or(GpuError::NoDevice(address))?;
    let id = dev.iommu_group.ok_or(GpuError::NoGroup(address))?;
    let mut members: Vec<PciAddress> = inv
        .iommu_groups
        .iter()
        .filter(|g| g.id == id)
        .flat_map(|g| g.devices.iter().copied())
        .filter(|a| inv.device(a).is_none_or(|d| !d.class.is_bridge()))
        .collect();
    members.sort();
    members.dedup();
    Ok(members)
}

/// Addresses as `a, b, c`.
pub fn join(a: &[PciAddress]) -> String {
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A device id Cloud Hypervisor accepts and `vm.remove-device` can name later.
pub fn device_id(a: &PciAddress) -> String {
    format!(
        "vfio-{:04x}-{:02x}-{:02x}-{}",
        a.domain, a.bus, a.slot, a.function
    )
}
