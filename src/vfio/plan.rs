//! Plans: every step of moving an IOMMU group to vfio-pci, worked out and checked before
//! anything is touched, so it can be shown as a dry run and undone step by step.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::host::{critical, Inventory, PciAddress, PciDevice, SysRoot};

use super::guard;
use super::reset::ResetMarks;
use super::state::{self, VFIO_PCI};
use super::step::{Action, Step, Undo};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("No PCI device {0} on this host")]
    UnknownDevice(PciAddress),
    #[error("IOMMU is off: {reason}")]
    IommuOff { reason: String },
    #[error("{0} is in no IOMMU group, so it cannot be isolated for a guest")]
    NoGroup(PciAddress),
    #[error("The vfio-pci driver is not loaded: run `modprobe vfio-pci` first")]
    NoVfioPci,
    #[error(
        "IOMMU group {group} holds {device}, the host's {role}: giving the group away would cut the host off"
    )]
    Critical {
        group: u32,
        device: PciAddress,
        role: String,
    },
    #[error("{device} ({name}) is the board's management (BMC) display: it stays with the host")]
    Management { device: PciAddress, name: String },
    #[error("IOMMU group {group} is open by process {pids:?} (a running VM?): stop it first")]
    GroupInUse { group: u32, pids: Vec<u32> },
    #[error("No device of IOMMU group {group} is on vfio-pci: nothing to release")]
    NothingToRelease { group: u32 },
    #[error("The typed confirmation does not match: type {expected:?}")]
    WrongPhrase { expected: String },
    #[error("Cannot read the reset records")]
    Reset(#[source] super::reset::ResetError),
}

/// Asked of the owner before a plan may run: they type `phrase` back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Confirmation {
    pub reason: String,
    pub phrase: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Host drivers → vfio-pci.
    Detach,
    /// vfio-pci → host drivers.
    Release,
}

/// A device the plan moves, as it is before the plan runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedDevice {
    pub address: PciAddress,
    pub name: String,
    pub driver: Option<String>,
    pub driver_override: Option<String>,
    /// Where it should end: `vfio-pci`, or the host driver on release (`None` when unknown
    /// or none).
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// phyllome's state directory: cards marked "needs host reboot" there get a warning.
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub operation: Operation,
    /// The device asked for; the plan moves its whole group.
    pub target: PciAddress,
    pub group: u32,
    pub devices: Vec<PlannedDevice>,
    pub steps: Vec<Step>,
    pub warnings: Vec<String>,
    /// Processes holding the moving devices' DRM or sound nodes open (detach only).
    pub holders: Vec<guard::Holder>,
    /// Set when the owner must type a phrase first (see [`Plan::confirm`]).
    pub needs_confirmation: Option<Confirmation>,
    #[serde(skip)]
    pub(crate) confirmed: bool,
}

impl Plan {
    /// Records the owner's typed answer; [`super::apply`] refuses an unconfirmed plan
    /// that needs one.
    pub fn confirm(&mut self, typed: &str) -> Result<(), PlanError> {
        match &self.needs_confirmation {
            Some(c) if c.phrase != typed.trim() => Err(PlanError::WrongPhrase {
                expected: c.phrase.clone(),
            }),
            _ => {
                self.confirmed = true;
                Ok(())
            }
        }
    }

    pub fn is_confirmed(&self) -> bool {
        self.needs_confirmation.is_none() || self.confirmed
    }

    /// The dry run as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// The devices of `address`'s IOMMU group that move: every endpoint, PCI-PCI bridges
/// excepted (vfio accepts them on pcieport), and other bridge functions only when a
/// driver holds them (an unbound one does not stop the group being viable).
pub(crate) fn unit(
    inventory: &Inventory,
    address: PciAddress,
) -> Result<(u32, Vec<&PciDevice>, Vec<&PciDevice>), PlanError> {
    let dev = inventory
        .device(&address)
        .ok_or(PlanError::UnknownDevice(address))?;
    let group = dev.iommu_group.ok_or(PlanError::NoGroup(address))?;
    let all: Vec<&PciDevice> = inventory
        .iommu_groups
        .iter()
        .find(|g| g.id == group)
        .map(|g| {
            g.devices
                .iter()
                .filter_map(|a| inventory.device(a))
                .collect()
        })
        .unwrap_or_else(|| vec![dev]);
    let moving = all
        .iter()
        .copied()
        .filter(|d| !d.class.is_pci_bridge() && (!d.class.is_bridge() || d.driver.is_some()))
        .collect();
    Ok((group, all, moving))
}

/// Plans moving `address`'s IOMMU group to vfio-pci.
pub fn plan(
    root: &SysRoot,
    inventory: &Inventory,
    address: PciAddress,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    inventory
        .device(&address)
        .ok_or(PlanError::UnknownDevice(address))?;
    guard::check_host(root, inventory)?;
    let (group, all, moving) = unit(inventory, address)?;
    guard::check_group(inventory, &critical::find(root), group, &all)?;
    let addresses: Vec<PciAddress> = moving.iter().map(|d| d.address).collect();
    let console = guard::console_confirmation(inventory, &addresses);
    let takes_console = console.is_some();
    let holders = guard::device_holders(root, &addresses);
    let needs_confirmation = guard::holders_confirmation(address, &holders, console);

    let mut steps = Vec::new();
    if takes_console {
        steps.extend(console_off_steps(root, inventory, &moving));
    }
    let mut devices = Vec::new();
    for d in &moving {
        let driver = state::driver_of(root, &d.address);
        let driver_override = state::override_of(root, &d.address);
        devices.push(PlannedDevice {
            address: d.address,
            name: d.display_name(),
            driver: driver.clone(),
            driver_override: driver_override.clone(),
            target: Some(VFIO_PCI.to_string()),
        });
        if driver.as_deref() == Some(VFIO_PCI) {
            steps.push(verify_vfio(d.address, group));
            continue;
        }
        if driver_override.as_deref() != Some(VFIO_PCI) {
            steps.push(Step::new(
                Action::SetOverride {
                    device: d.address,
                    driver: Some(VFIO_PCI.to_string()),
                },
                Undo::Run(Action::SetOverride {
                    device: d.address,
                    driver: driver_override.clone(),
                }),
            ));
        }
        if let Some(drv) = &driver {
            steps.push(Step::new(
                Action::Unbind {
                    device: d.address,
                    driver: drv.clone(),
                },
                Undo::RestoreDriver {
                    device: d.address,
                    driver: Some(drv.clone()),
                    driver_override: driver_override.clone(),
                },
            ));
        }
        steps.push(Step::new(
            Action::Probe { device: d.address },
            Undo::UnbindAny { device: d.address },
        ));
        steps.push(verify_vfio(d.address, group));
    }
    let warnings = reset_warnings(root, &addresses, opts)?;
    Ok(Plan {
        operation: Operation::Detach,
        target: address,
        group,
        devices,
        steps,
        warnings,
        holders,
        needs_confirmation,
        confirmed: false,
    })
}

fn verify_vfio(device: PciAddress, group: u32) -> Step {
    Step::new(
        Action::Verify {
            device,
            driver: Some(VFIO_PCI.to_string()),
            not: None,
            vfio_group: Some(group),
        },
        Undo::Nothing,
    )
}

/// fbcon first, then the firmware framebuffers on the boot GPU: they hold its memory, and
/// the GPU driver cannot let go while a console draws on it.
fn console_off_steps(root: &SysRoot, inventory: &Inventory, moving: &[&PciDevice]) -> Vec<Step> {
    let mut steps = Vec::new();
    for (vt, bound) in state::framebuffer_consoles(root) {
        if bound {
            steps.push(Step::new(
                Action::BindConsole {
                    vtconsole: vt.clone(),
                    bind: false,
                },
                Undo::Run(Action::BindConsole {
                    vtconsole: vt,
                    bind: true,
                }),
            ));
        }
    }
    let boot_gpu_moves = moving.iter().any(|d| d.boot_vga == Some(true));
    if boot_gpu_moves || inventory.gpus.iter().all(|g| !g.boot_vga) {
        for (device, driver) in state::platform_framebuffers(root) {
            if let Some(driver) = driver {
                steps.push(Step::new(
                    Action::UnbindFramebuffer {
                        device: device.clone(),
                        driver: driver.clone(),
                    },
                    Undo::Run(Action::BindFramebuffer { device, driver }),
                ));
            }
        }
    }
    steps
}

pub(crate) fn reset_warnings(
    root: &SysRoot,
    addresses: &[PciAddress],
    opts: &PlanOptions,
) -> Result<Vec<String>, PlanError> {
    let Some(dir) = &opts.state_dir else {
        return Ok(Vec::new());
    };
    let marks = ResetMarks::load(dir, root).map_err(PlanError::Reset)?;
    Ok(addresses
        .iter()
        .filter_map(|a| marks.needs_reboot(a))
        .map(|m| m.warning())
        .collect())
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.operation {
            Operation::Detach => "Give to guests (vfio-pci)",
            Operation::Release => "Return to the host",
        };
        writeln!(
            f,
            "{verb}: IOMMU group {} of {} ({} device{})",
            self.group,
            self.target,
            self.devices.len(),
            if self.devices.len() == 1 { "" } else { "s" }
        )?;
        let none = |d: &Option<String>| d.clone().unwrap_or_else(|| "no driver".into());
        for d in &self.devices {
            writeln!(
                f,
                "  {}  {}  {} → {}",
                d.address,
                d.name,
                none(&d.driver),
                d.target.clone().unwrap_or_else(|| "host driver".into())
            )?;
        }
        writeln!(f, "Steps:")?;
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(f, "  {:>2}. {}", i + 1, s.description)?;
            if let Some(u) = &s.undo_description {
                writeln!(f, "      undo: {u}")?;
            }
        }
        for w in &self.warnings {
            writeln!(f, "Warning: {w}")?;
        }
        for h in &self.holders {
            writeln!(f, "Held open: {} by {} (pid {})", h.node, h.command, h.pid)?;
        }
        if let Some(c) = &self.needs_confirmation {
            writeln!(f, "Confirm: {}", c.reason)?;
            writeln!(f, "  type: {}", c.phrase)?;
        }
        Ok(())
    }
}
