//! `phyllome gpu assign ADDRESS --to VM` and `phyllome gpu unassign ADDRESS`: the group's
//! endpoints go into (or out of) the VM's definition, comments kept; when the VM runs they
//! move at once (see [`super::hotplug`]).

use eyre::WrapErr;
use toml_edit::{ArrayOfTables, Item};

use super::super::GlobalArgs;
use super::{device_address, hotplug, moves, say};
use crate::host::{Inventory, PciAddress};
use crate::vfio;
use crate::vm::doc::{vfio_table, DocError};
use crate::vm::spec::Vfio;
use crate::vm::{Store, StoreError};
use crate::vmm::device_ops;
use crate::vmm::manager::RunState;
use crate::vmm::runtime::{RunRoot, VmRuntime};

#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    #[error("No VM named {0:?}; see `phyllome vm list`")]
    UnknownVm(String),
    #[error("{address} is already given to VM {vm}; run `phyllome gpu unassign {address}` first")]
    TakenBy { address: PciAddress, vm: String },
    #[error("{0} is not assigned to any VM")]
    NotAssigned(PciAddress),
    #[error("VM {vm} is {state}; start or stop it fully, then try again")]
    Busy { vm: String, state: String },
}

fn store(global: &GlobalArgs) -> eyre::Result<Store> {
    Ok(Store::open(Store::default_dir(
        global.state_dir.as_deref(),
    )?)?)
}

/// A device id Cloud Hypervisor accepts and `vm.remove-device` can name later.
pub(super) fn device_id(a: &PciAddress) -> String {
    format!(
        "vfio-{:04x}-{:02x}-{:02x}-{}",
        a.domain, a.bus, a.slot, a.function
    )
}

/// Whether the VM's VMM runs (so devices must move now), asked of the VMM itself.
pub(crate) fn running_state(global: &GlobalArgs, vm: &str) -> eyre::Result<RunState> {
    let m = super::super::vm_run::manager(global)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt
        .block_on(m.info(vm))
        .map(|s| s.state)
        .unwrap_or(RunState::Stopped))
}

pub(super) fn runtime(global: &GlobalArgs, vm: &str) -> eyre::Result<(RunRoot, VmRuntime)> {
    let run_root = RunRoot::resolve(global.run_dir.as_deref())?;
    let rt = run_root.vm(vm)?;
    Ok((run_root, rt))
}

/// A checked assignment, ready to confirm: the plan of the group that moves, whether the
/// VM runs (so the group moves now) and the endpoints not yet in its definition.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub vm: String,
    pub plan: vfio::Plan,
    pub running: bool,
    pub new: Vec<PciAddress>,
}

pub fn assign(global: &GlobalArgs, address: &str, vm: &str, yes: bool) -> eyre::Result<()> {
    let mut prepared = prepare(global, address, vm)?;
    // Asked now even when the VM is stopped: its next start takes the console GPU without
    // asking (maybe at boot, with nobody there).
    moves::confirm(&mut prepared.plan, yes)?;
    let mut out = |s: &str| {
        let _ = say(s);
    };
    finish(global, &prepared, &mut out, &mut |p, root| {
        moves::run(p, root)
    })
}

/// Everything `assign` checks before asking: the device, the VM, the guard rails (through
/// the plan), another VM holding the group, and the VM's run state.
pub(crate) fn prepare(global: &GlobalArgs, address: &str, vm: &str) -> eyre::Result<Prepared> {
    let root = global.sys_root()?;
    let inv = Inventory::collect_with(&root, &global.collect_options());
    let address = device_address(&inv, address)?;
    let store = store(global)?;
    if !store.exists(vm) {
        return Err(AssignError::UnknownVm(vm.to_string()).into());
    }
    // The plan checks the guard rails (root disk, default-route NIC, serial UART) and says
    // which endpoints move with the device.
    let plan = vfio::plan(
        &root,
        &inv,
        address,
        &device_ops::plan_options(global.state_dir.as_deref()),
    )?;
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
            return Err(AssignError::TakenBy {
                address: *a,
                vm: spec.name,
            }
            .into());
        }
    }
    let state = running_state(global, vm)?;
    let running = match state {
        RunState::Running | RunState::Paused => true,
        RunState::Stopped | RunState::Shutdown => false,
        other => {
            return Err(AssignError::Busy {
                vm: vm.to_string(),
                state: other.to_string(),
            }
            .into())
        }
    };
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
/// the group (through `detach`) and hot-plugs it.
pub(crate) fn finish(
    global: &GlobalArgs,
    p: &Prepared,
    out: &mut dyn FnMut(&str),
    detach: hotplug::Detach<'_>,
) -> eyre::Result<()> {
    let (vm, plan) = (&p.vm, &p.plan);
    if p.new.is_empty() {
        out(&format!(
            "{} (IOMMU group {}) is already assigned to VM {vm}\n",
            plan.target, plan.group
        ));
        return Ok(());
    }
    store(global)?
        .edit(vm, |doc| add_entries(doc, &p.new))
        .wrap_err_with(|| format!("Cannot record the devices in VM {vm}"))?;
    out(&format!(
        "VM {vm} now passes through IOMMU group {}: {}\n",
        plan.group,
        join(&p.new)
    ));
    if p.running {
        hotplug::hot_plug(global, vm, plan, &p.new, out, detach)?;
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

pub(super) fn join(a: &[PciAddress]) -> String {
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn unassign(global: &GlobalArgs, address: &str) -> eyre::Result<()> {
    unassign_with(global, address, &mut |s| {
        let _ = say(s);
    })
}

/// Which VM has `address` (or another endpoint of its group), and those entries.
pub(crate) fn holder(
    global: &GlobalArgs,
    inv: &Inventory,
    address: PciAddress,
) -> eyre::Result<Option<(String, Vec<Vfio>)>> {
    let group = super::group_endpoints(inv, address).unwrap_or_else(|_| vec![address]);
    for entry in store(global)?.list()? {
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

/// `unassign` with its progress lines going to `out`.
pub(crate) fn unassign_with(
    global: &GlobalArgs,
    address: &str,
    out: &mut dyn FnMut(&str),
) -> eyre::Result<()> {
    let root = global.sys_root()?;
    let inv = Inventory::collect_with(&root, &global.collect_options());
    let address = device_address(&inv, address)?;
    let store = store(global)?;
    let Some((vm, entries)) = holder(global, &inv, address)? else {
        return Err(AssignError::NotAssigned(address).into());
    };
    let state = running_state(global, &vm)?;
    match state {
        RunState::Running | RunState::Paused => hotplug::unplug(global, &vm, &entries, out)?,
        RunState::Stopped | RunState::Shutdown => {}
        other => {
            return Err(AssignError::Busy {
                vm,
                state: other.to_string(),
            }
            .into())
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
        Err(StoreError::NotFound(_)) => return Err(AssignError::UnknownVm(vm).into()),
        Err(e) => return Err(e).wrap_err_with(|| format!("Cannot change VM {vm}")),
    }
    out(&format!(
        "VM {vm} no longer passes through {}\n",
        join(&gone)
    ));
    Ok(())
}
