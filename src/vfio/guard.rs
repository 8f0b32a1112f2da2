//! Guard rails checked before a plan exists: groups the host cannot lose, displays that
//! must stay, and hosts where VFIO cannot work at all.

use crate::host::critical::CriticalDevice;
use crate::host::{GpuRole, Inventory, PciAddress, PciDevice, SysRoot};

use super::plan::{Confirmation, PlanError};

/// Refuses the group when it holds something the host cannot live without.
pub fn check_group(
    inventory: &Inventory,
    critical: &[CriticalDevice],
    group: u32,
    members: &[&PciDevice],
) -> Result<(), PlanError> {
    for m in members {
        if let Some(c) = critical.iter().find(|c| c.address == m.address) {
            return Err(PlanError::Critical {
                group,
                device: c.address,
                role: c.role.clone(),
            });
        }
        if let Some(g) = inventory
            .gpus
            .iter()
            .find(|g| g.address == m.address && g.role == GpuRole::Management)
        {
            return Err(PlanError::Management {
                device: g.address,
                name: g.name.clone(),
            });
        }
    }
    Ok(())
}

pub fn check_host(root: &SysRoot, inventory: &Inventory) -> Result<(), PlanError> {
    if !inventory.iommu.enabled {
        return Err(PlanError::IommuOff {
            reason: inventory.iommu.reason.clone(),
        });
    }
    if !root.exists("sys/bus/pci/drivers/vfio-pci") {
        return Err(PlanError::NoVfioPci);
    }
    Ok(())
}

/// Taking the GPU that draws the host console leaves only serial and SSH: ask first.
pub fn console_confirmation(inventory: &Inventory, moving: &[PciAddress]) -> Option<Confirmation> {
    let gpu = inventory
        .gpus
        .iter()
        .find(|g| g.shows_host_console && moving.contains(&g.address))?;
    Some(Confirmation {
        reason: format!(
            "{} ({}) shows the host console: after this the host is reachable only over \
             serial or SSH until the GPU is released",
            gpu.address, gpu.name
        ),
        phrase: format!("take the console from {}", gpu.address),
    })
}

/// Processes holding `/dev/vfio/<group>` open (a running VMM). Unbinding vfio-pci under
/// them blocks in the kernel until they let go, so a release must wait for them.
pub fn group_users(root: &SysRoot, group: u32) -> Vec<u32> {
    let node = format!("/dev/vfio/{group}");
    let mut pids: Vec<u32> = root
        .list("proc")
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter(|pid| {
            let fd_dir = root.lexical(format!("proc/{pid}/fd"));
            crate::host::sysroot::list_dir(&fd_dir)
                .unwrap_or_default()
                .iter()
                .any(|fd| {
                    // Read, never followed: these are the kernel's magic links.
                    std::fs::read_link(fd_dir.join(fd))
                        .is_ok_and(|t| t == std::path::Path::new(&node))
                })
        })
        .collect();
    pids.sort_unstable();
    pids
}
