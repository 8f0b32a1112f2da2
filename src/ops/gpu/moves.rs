//! Detach and reattach: the plan of a group's move, the refusals that come before it, and
//! running it with each step reported.

use crate::host::{Inventory, PciAddress, SysRoot};
use crate::ops::host::Host;
use crate::ops::HostPaths;
use crate::vfio::{self, Plan, ReleaseOptions, StepEvent};
use crate::vmm::managed::Records;

use super::state::{live_records, state_of, DeviceState};
use super::GpuError;

/// The plan that binds `address`'s whole IOMMU group to vfio-pci.
pub fn detach_plan(paths: &HostPaths, host: &Host, address: PciAddress) -> Result<Plan, GpuError> {
    Ok(vfio::plan(
        &host.root,
        &host.inventory,
        address,
        &paths.plan_options(),
    )?)
}

/// The plan that gives `address`'s group back to its host drivers. Without a record of
/// where they came from, probing finds each device its host driver.
pub fn reattach_plan(
    paths: &HostPaths,
    host: &Host,
    address: PciAddress,
) -> Result<Plan, GpuError> {
    let opts = ReleaseOptions {
        plan: paths.plan_options(),
        ..ReleaseOptions::default()
    };
    Ok(vfio::release_plan(
        &host.root,
        &host.inventory,
        address,
        &opts,
    )?)
}

/// A device a running VM holds is never moved under it.
pub fn refuse_in_use(paths: &HostPaths, inv: &Inventory, plan: &Plan) -> Result<(), GpuError> {
    let records = live_records(paths);
    for d in &plan.devices {
        if let DeviceState::InUse { vm } = state_of(inv, &records, None, &d.address) {
            return Err(GpuError::InUse {
                address: d.address,
                vm,
            });
        }
    }
    Ok(())
}

/// Confirms a plan that takes the host console: `typed` is what the owner typed (or the
/// phrase itself for `--yes`); `None` means nobody could be asked, which refuses.
pub fn confirm(plan: &mut Plan, typed: Option<&str>) -> Result<(), GpuError> {
    let Some(c) = plan.needs_confirmation.clone() else {
        return Ok(());
    };
    let Some(typed) = typed else {
        return Err(GpuError::NeedsYes {
            address: plan.target,
            reason: c.reason,
        });
    };
    plan.confirm(typed)
        .map_err(|_| GpuError::Declined { phrase: c.phrase })
}

/// Applies a confirmed plan under `root`, each step's event going to `on_step`; a failed
/// step's rollback is in the error ([`vfio::ApplyError::failure`]).
pub fn apply(
    paths: &HostPaths,
    plan: &Plan,
    root: &SysRoot,
    on_step: &mut dyn FnMut(&StepEvent),
) -> Result<(), GpuError> {
    let writer = crate::vmm::device_ops::writer_for(root, paths.simulate)?;
    vfio::apply(plan, writer.as_ref(), root, on_step)?;
    Ok(())
}

/// A successful reattach settles a release that failed earlier for these devices.
pub fn forget_failed_release(paths: &HostPaths, plan: &Plan) {
    let Ok(run_root) = paths.run_root() else {
        return;
    };
    let records = Records::new(&run_root);
    for mut rec in records.all() {
        let before = rec.devices.len();
        rec.devices
            .retain(|a| !plan.devices.iter().any(|d| d.address == *a));
        if rec.devices.len() == before {
            continue;
        }
        if rec.devices.is_empty() {
            records.remove(&rec.vm);
        } else {
            let _ = records.write(&rec);
        }
        records.log(&rec.vm, "devices reattached by hand");
    }
}
