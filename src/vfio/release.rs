//! The way back: every device of the group leaves vfio-pci for its host driver, then the
//! firmware framebuffer and fbcon come back, last, once the GPU driver holds the card.

use crate::host::{Inventory, PciAddress, PciDevice, SysRoot};

use super::apply::{apply, Applied, ApplyError, StepEvent};
use super::guard;
use super::plan::{reset_warnings, unit, Operation, Plan, PlanError, PlanOptions, PlannedDevice};
use super::state::{self, VFIO_PCI};
use super::step::{Action, Step, Undo};
use super::SysWriter;

#[derive(Debug, Clone, Default)]
pub struct ReleaseOptions {
    /// The devices as they were before the detach ([`Applied::devices`]): each goes back to
    /// exactly that driver and override. Without it, probing picks the host driver.
    pub came_from: Vec<PlannedDevice>,
    /// Bring fbcon and the firmware framebuffer back: `None` decides by whether the group
    /// holds the boot GPU.
    pub restore_console: Option<bool>,
    pub plan: PlanOptions,
}

/// Plans returning `address`'s IOMMU group to the host.
pub fn release_plan(
    root: &SysRoot,
    inventory: &Inventory,
    address: PciAddress,
    opts: &ReleaseOptions,
) -> Result<Plan, PlanError> {
    let (group, _, moving) = unit(inventory, address)?;
    let mut steps = Vec::new();
    let mut devices = Vec::new();
    for d in &moving {
        let driver = state::driver_of(root, &d.address);
        let driver_override = state::override_of(root, &d.address);
        let on_vfio = driver.as_deref() == Some(VFIO_PCI);
        if !on_vfio && driver_override.as_deref() != Some(VFIO_PCI) {
            continue;
        }
        let before = opts.came_from.iter().find(|p| p.address == d.address);
        let host_driver = before
            .and_then(|p| p.driver.clone())
            .filter(|drv| drv != VFIO_PCI);
        let host_override = before.and_then(|p| p.driver_override.clone());
        devices.push(PlannedDevice {
            address: d.address,
            name: d.display_name(),
            driver: driver.clone(),
            driver_override: driver_override.clone(),
            target: host_driver.clone(),
        });
        steps.extend(device_steps(
            d,
            &driver,
            &driver_override,
            host_driver,
            host_override,
        ));
    }
    if devices.is_empty() {
        return Err(PlanError::NothingToRelease { group });
    }
    let pids = guard::group_users(root, group);
    if !pids.is_empty() {
        return Err(PlanError::GroupInUse { group, pids });
    }
    let boot_gpu = moving.iter().any(|d| d.boot_vga == Some(true));
    if opts.restore_console.unwrap_or(boot_gpu) {
        steps.extend(console_on_steps(root));
    }
    let addresses: Vec<PciAddress> = devices.iter().map(|d| d.address).collect();
    Ok(Plan {
        operation: Operation::Release,
        target: address,
        group,
        devices,
        steps,
        warnings: reset_warnings(root, &addresses, &opts.plan)?,
        // vfio-pci's own users are refused before (`group_users`); no host node is open.
        holders: Vec::new(),
        needs_confirmation: None,
        confirmed: false,
    })
}

fn device_steps(
    d: &PciDevice,
    driver: &Option<String>,
    driver_override: &Option<String>,
    host_driver: Option<String>,
    host_override: Option<String>,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if driver_override != &host_override {
        steps.push(Step::new(
            Action::SetOverride {
                device: d.address,
                driver: host_override,
            },
            Undo::Run(Action::SetOverride {
                device: d.address,
                driver: driver_override.clone(),
            }),
        ));
    }
    if driver.as_deref() == Some(VFIO_PCI) {
        steps.push(Step::new(
            Action::Unbind {
                device: d.address,
                driver: VFIO_PCI.to_string(),
            },
            Undo::RestoreDriver {
                device: d.address,
                driver: driver.clone(),
                driver_override: driver_override.clone(),
            },
        ));
    }
    steps.push(Step::new(
        Action::Probe { device: d.address },
        Undo::UnbindAny { device: d.address },
    ));
    let (driver, not) = match host_driver {
        Some(h) => (Some(h), None),
        None => (None, Some(VFIO_PCI.to_string())),
    };
    steps.push(Step::new(
        Action::Verify {
            device: d.address,
            driver,
            not,
            vfio_group: None,
        },
        Undo::Nothing,
    ));
    steps
}

/// The firmware framebuffer before fbcon, the reverse of taking them.
fn console_on_steps(root: &SysRoot) -> Vec<Step> {
    let mut steps = Vec::new();
    for (device, driver) in state::platform_framebuffers(root) {
        let want = state::platform_driver_for(&device);
        if driver.is_none() && root.exists(format!("sys/bus/platform/drivers/{want}")) {
            steps.push(Step::new(
                Action::BindFramebuffer {
                    device: device.clone(),
                    driver: want.clone(),
                },
                Undo::Run(Action::UnbindFramebuffer {
                    device,
                    driver: want,
                }),
            ));
        }
    }
    for (vt, bound) in state::framebuffer_consoles(root) {
        if !bound {
            steps.push(Step::new(
                Action::BindConsole {
                    vtconsole: vt.clone(),
                    bind: true,
                },
                Undo::Run(Action::BindConsole {
                    vtconsole: vt,
                    bind: false,
                }),
            ));
        }
    }
    steps
}

/// Runs a release plan; the same engine as [`apply`], with the same rollback.
pub fn release(
    plan: &Plan,
    writer: &dyn SysWriter,
    root: &SysRoot,
    on_step: &mut dyn FnMut(&StepEvent),
) -> Result<Applied, ApplyError> {
    apply(plan, writer, root, on_step)
}
