//! Assign and unassign: the group's endpoints go into (or out of) the VM's definition,
//! comments kept; when the VM runs they move at once (see [`super::hotplug`]).

use toml_edit::{ArrayOfTables, Item};

use crate::host::{Inventory, PciAddress};
use crate::ops::vm::{is_live, run_state};
use crate::ops::HostPaths;
use crate::vfio;
use crate::vm::doc::{vfio_table, DocError};
use crate::vm::spec::Vfio;
use crate::vm::StoreError;

use super::{device_address, device_id, group_endpoints, hotplug, join, GpuError};

/// A checked assignment, ready to confirm: the plan of the group that moves, whether the
/// VM runs (so the group moves now) and the endpoints not yet in its definition.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub vm: String,
    pub plan: vfio::Plan,
    pub running: bool,
    pub new: Vec<PciAddress>,
}

/// Everything an assignment checks before asking: the device, the VM, the guard rails
/// (through the plan), another VM holding the group, and the VM's run state.
pub fn prepare(paths: &HostPaths, address: &str, vm: &str) -> Result<Prepared, GpuError> {
    let host = crate::ops::host::read(paths)?;
    let address = device_address(&host.inventory, address)?;
    let store = paths.store()?;
    if !store.exists(vm) {
        return Err(GpuError::UnknownVm(vm.to_string()));
    }
    // The plan checks the guard rails (root disk, default-route NIC, serial UART) and says
    // which endpoints move with the device.
    let plan = super::detach_plan(paths, &host, address)?;
    let group: Vec<PciAddress> = plan.devices.iter().map(|d| d.address).collect();
    for entry in store.list()? {
        let Ok(spec) = entry.spec else { continue };
        if spec.name == vm {
            continue;
        }
        if let Some(a) = group
            .iter()
            .find(|a| spec.vfio.iter().any(|v| v.address == **a))
        {
            return Err(GpuError::TakenBy {
                address: *a,
                vm: spec.name,
            });
        }
    }
    let state = run_state(paths, vm)?;
    let running = is_live(state).ok_or_else(|| GpuError::Busy {
        vm: vm.to_string(),
        state: state.to_string(),
    })?;
    let spec = store.get(vm)?;
    let new: Vec<PciAddress> = group
        .iter()
        .copied()
        .filter(|a| !spec.vfio.iter().any(|v| v.address == *a))
        .collect();
    Ok(Prepared {
        vm: vm.to_string(),
        plan,
        running,
        new,
    })
}

/// Records the confirmed assignment in the VM's definition and, when the VM runs, detaches
/// the group (through `detach`) and hot-plugs it. Progress lines go to `out`.
pub fn finish(
    paths: &HostPaths,
    p: &Prepared,
    out: &mut dyn FnMut(&str),
    detach: hotplug::Detach<'_>,
) -> Result<(), GpuError> {
    let (vm, plan) = (&p.vm, &p.plan);
    if p.new.is_empty() {
        out(&format!(
            "{} (IOMMU group {}) is already assigned to VM {vm}\n",
            plan.target, plan.group
        ));
        return Ok(());
    }
    paths
        .store()?
        .edit(vm, |doc| add_entries(doc, &p.new))
        .map_err(|source| GpuError::Record {
            vm: vm.clone(),
            source,
        })?;
    out(&format!(
        "VM {vm} now passes through IOMMU group {}: {}\n",
        plan.group,
        join(&p.new)
    ));
    if p.running {
        hotplug::hot_plug(paths, vm, plan, &p.new, out, detach)?;
    } else {
        out(&format!("They move to vfio-pci when VM {vm} starts.\n"));
    }
    Ok(())
}

fn add_entries(doc: &mut toml_edit::DocumentMut, new: &[PciAddress]) -> Result<(), DocError> {
    if !doc.contains_key("vfio") {
        doc.insert("vfio", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let Some(list) = doc.get_mut("vfio").and_then(Item::as_array_of_tables_mut) else {
        return Err(DocError::NotATable("vfio".into(), "vfio".into()));
    };
    for a in new {
        list.push(vfio_table(&Vfio {
            address: *a,
            id: Some(device_id(a)),
        }));
    }
    Ok(())
}

/// Which VM has `address` (or another endpoint of its group), and those entries.
pub fn holder(
    paths: &HostPaths,
    inv: &Inventory,
    address: PciAddress,
) -> Result<Option<(String, Vec<Vfio>)>, GpuError> {
    let group = group_endpoints(inv, address).unwrap_or_else(|_| vec![address]);
    for entry in paths.store()?.list()? {
        let Ok(spec) = entry.spec else { continue };
        let mine: Vec<Vfio> = spec
            .vfio
            .iter()
            .filter(|v| v.address == address || group.contains(&v.address))
            .cloned()
            .collect();
        if !mine.is_empty() {
            return Ok(Some((spec.name.clone(), mine)));
        }
    }
    Ok(None)
}

/// What `unassign` did: the VM the devices left, and whether it ran (they were unplugged).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unassigned {
    pub vm: String,
    pub devices: Vec<PciAddress>,
    pub running: bool,
}

/// Removes `address`'s group from the VM that has it; when the VM runs, unplugs and
/// releases it first. Progress lines go to `out`.
pub fn unassign(
    paths: &HostPaths,
    address: &str,
    out: &mut dyn FnMut(&str),
) -> Result<Unassigned, GpuError> {
    let host = crate::ops::host::read(paths)?;
    let address = device_address(&host.inventory, address)?;
    let store = paths.store()?;
    let Some((vm, entries)) = holder(paths, &host.inventory, address)? else {
        return Err(GpuError::NotAssigned(address));
    };
    let state = run_state(paths, &vm)?;
    let running = is_live(state);
    match running {
        Some(true) => hotplug::unplug(paths, &vm, &entries, out)?,
        Some(false) => {}
        None => {
            return Err(GpuError::Busy {
                vm,
                state: state.to_string(),
            })
        }
    }
    let gone: Vec<PciAddress> = entries.iter().map(|v| v.address).collect();
    let edited = store.edit(&vm, |doc| {
        if let Some(list) = doc.get_mut("vfio").and_then(Item::as_array_of_tables_mut) {
            list.retain(|t| {
                let a = t.get("address").and_then(|v| v.as_str());
                !a.and_then(|a| a.parse::<PciAddress>().ok())
                    .is_some_and(|a| gone.contains(&a))
            });
            if list.is_empty() {
                doc.remove("vfio");
            }
        }
        Ok(())
    });
    match edited {
        Ok(_) => {}
        Err(StoreError::NotFound(_)) => return Err(GpuError::UnknownVm(vm)),
        Err(source) => return Err(GpuError::Change { vm, source }),
    }
    out(&format!(
        "VM {vm} no longer passes through {}\n",
        join(&gone)
    ));
    Ok(Unassigned {
        vm,
        devices: gone,
        running: running == Some(true),
    })
}
