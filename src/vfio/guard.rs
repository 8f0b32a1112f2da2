//! Guard rails checked before a plan exists: groups the host cannot lose, displays that
//! must stay, and hosts where VFIO cannot work at all.

use serde::Serialize;

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
    let mut pids: Vec<u32> = open_by(root, std::slice::from_ref(&node))
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    pids.dedup();
    pids
}

/// A process holding a device node of a moving function open: a display server or
/// compositor on its DRM card, PipeWire on its sound card. The host driver cannot let go
/// while they hold it, and an unbind under them can hang in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub pid: u32,
    /// `proc/PID/comm`: what the owner knows the process as.
    pub command: String,
    pub node: String,
}

/// Who holds the DRM (`/dev/dri/card*`, `renderD*`) and sound (`/dev/snd/*C<card>*`) nodes of
/// `devices` open, sorted by pid.
pub fn device_holders(root: &SysRoot, devices: &[PciAddress]) -> Vec<Holder> {
    let mut nodes = Vec::new();
    for d in devices {
        let dev = format!("sys/bus/pci/devices/{d}");
        for name in root.list(format!("{dev}/drm")).unwrap_or_default() {
            if name.starts_with("card") && !name.contains('-') || name.starts_with("renderD") {
                nodes.push(format!("/dev/dri/{name}"));
            }
        }
        for card in root.list(format!("{dev}/sound")).unwrap_or_default() {
            if !card.starts_with("card") {
                continue;
            }
            for name in root.list(format!("{dev}/sound/{card}")).unwrap_or_default() {
                if ["controlC", "pcmC", "hwC", "midiC"]
                    .iter()
                    .any(|p| name.starts_with(p))
                {
                    nodes.push(format!("/dev/snd/{name}"));
                }
            }
        }
    }
    open_by(root, &nodes)
        .into_iter()
        .map(|(pid, node)| Holder {
            pid,
            command: root
                .read(format!("proc/{pid}/comm"))
                .unwrap_or_else(|_| "?".into()),
            node,
        })
        .collect()
}

/// `(pid, node)` for every open descriptor of a process that names one of `nodes`.
fn open_by(root: &SysRoot, nodes: &[String]) -> Vec<(u32, String)> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(u32, String)> = Vec::new();
    for pid in root
        .list("proc")
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        let fd_dir = root.lexical(format!("proc/{pid}/fd"));
        for fd in crate::host::sysroot::list_dir(&fd_dir).unwrap_or_default() {
            // Read, never followed: these are the kernel's magic links.
            let Ok(target) = std::fs::read_link(fd_dir.join(fd)) else {
                continue;
            };
            if let Some(node) = nodes.iter().find(|n| target == std::path::Path::new(n)) {
                if !out.iter().any(|(p, n)| *p == pid && n == node) {
                    out.push((pid, node.clone()));
                }
            }
        }
    }
    out.sort();
    out
}

/// The owner must say go on when processes hold the moving devices' nodes: named in the
/// reason, added to a console confirmation when there is one already.
pub fn holders_confirmation(
    target: PciAddress,
    holders: &[Holder],
    console: Option<Confirmation>,
) -> Option<Confirmation> {
    if holders.is_empty() {
        return console;
    }
    let who = holders
        .iter()
        .map(|h| format!("{} (pid {}) holds {}", h.command, h.pid, h.node))
        .collect::<Vec<_>>()
        .join(", ");
    let why =
        format!("{who}; unbinding the driver under them can hang: close them first, or go on");
    Some(match console {
        Some(c) => Confirmation {
            reason: format!("{}; also, {why}", c.reason),
            phrase: c.phrase,
        },
        None => Confirmation {
            reason: why,
            phrase: format!("unbind {target} in use"),
        },
    })
}
