//! Devices into and out of a running VM: detach + `vm.add-device`, `vm.remove-device` +
//! release, with the hold recorded so the VM's stop (or its supervisor) gives them back.

use std::time::Duration;

use crate::host::{PciAddress, SysRoot};
use crate::ops::vm::VmOpsError;
use crate::ops::HostPaths;
use crate::vfio;
use crate::vm::spec::Vfio;
use crate::vmm::client::ChClient;
use crate::vmm::device_ops::CameFrom;
use crate::vmm::managed::{DeviceHost, DeviceRecord, Holding, Records};
use crate::vmm::runtime::now_secs;

use super::{device_id, join, GpuError};

/// Runs a detach plan: the CLI prints each step, the console draws it.
pub type Detach<'a> = &'a mut dyn FnMut(&vfio::Plan, &SysRoot) -> Result<(), GpuError>;

fn tokio() -> Result<tokio::runtime::Runtime, GpuError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| GpuError::Vm(VmOpsError::Runtime(e)))
}

fn device_host(paths: &HostPaths, root: &SysRoot) -> Result<DeviceHost, GpuError> {
    Ok(
        DeviceHost::new(root.root(), &paths.run_root()?, paths.state_dir.clone())
            .simulated(paths.simulate),
    )
}

/// Detach the group (through `detach`), record the hold (so the VM's stop releases it),
/// then `vm.add-device` each endpoint. A refused hot-plug unplugs what went in and releases
/// the group. Progress lines go to `out`.
pub fn hot_plug(
    paths: &HostPaths,
    vm: &str,
    plan: &vfio::Plan,
    new: &[PciAddress],
    out: &mut dyn FnMut(&str),
    detach: Detach<'_>,
) -> Result<(), GpuError> {
    let root = paths.sys_root()?;
    let run_root = paths.run_root()?;
    let rt = run_root.vm(vm)?;
    let records = Records::new(&run_root);
    out(&format!("VM {vm} runs: moving the group to vfio-pci now\n"));
    detach(plan, &root)?;
    let came: Vec<CameFrom> = plan
        .devices
        .iter()
        .map(|d| CameFrom {
            address: d.address,
            driver: d.driver.clone(),
            driver_override: d.driver_override.clone(),
        })
        .collect();
    let mut rec = records.read(vm).unwrap_or(DeviceRecord {
        vm: vm.to_string(),
        devices: Vec::new(),
        came_from: Vec::new(),
        state: Holding::Held,
        since: now_secs(),
        supervisor_pid: None,
        problems: Vec::new(),
    });
    for c in &came {
        if !rec.devices.contains(&c.address) {
            rec.devices.push(c.address);
            rec.came_from.push(c.clone());
        }
    }
    records.write(&rec)?;
    let client = ChClient::new(rt.api_socket.clone(), Duration::from_secs(30));
    let tokio = tokio()?;
    let mut plugged = Vec::new();
    for a in new {
        let path = format!("/sys/bus/pci/devices/{a}/");
        match tokio.block_on(client.add_device(&path, Some(&device_id(a)))) {
            Ok(info) => {
                let at = info
                    .map(|i| format!(" (guest {})", i.bdf))
                    .unwrap_or_default();
                out(&format!("  hot-plugged {a}{at}\n"));
                plugged.push(*a);
            }
            Err(source) => {
                for p in &plugged {
                    let _ = tokio.block_on(client.remove_device(&device_id(p)));
                }
                let released = device_host(paths, &root)?.release(vm, &came);
                rec.devices
                    .retain(|d| !came.iter().any(|b| b.address == *d));
                rec.came_from
                    .retain(|d| !came.iter().any(|b| b.address == d.address));
                if rec.devices.is_empty() {
                    records.remove(vm);
                } else {
                    records.write(&rec)?;
                }
                return Err(GpuError::HotPlug {
                    address: *a,
                    source,
                    released: released.err().map(|e| crate::error::Chain(&e).to_string()),
                });
            }
        }
    }
    Ok(())
}

/// `vm.remove-device` for each entry (by the id the VMM knows it under), then the group goes
/// back to its host drivers.
pub fn unplug(
    paths: &HostPaths,
    vm: &str,
    entries: &[Vfio],
    out: &mut dyn FnMut(&str),
) -> Result<(), GpuError> {
    let run_root = paths.run_root()?;
    let rt = run_root.vm(vm)?;
    let client = ChClient::new(rt.api_socket.clone(), Duration::from_secs(30));
    let tokio = tokio()?;
    let info = tokio.block_on(client.info()).ok();
    for v in entries {
        let path = format!("/sys/bus/pci/devices/{}/", v.address);
        let id = info
            .as_ref()
            .and_then(|i| id_in_config(&i.config, &path))
            .or_else(|| v.id.clone())
            .unwrap_or_else(|| device_id(&v.address));
        tokio
            .block_on(client.remove_device(&id))
            .map_err(|source| GpuError::Unplug {
                id: id.clone(),
                address: v.address,
                source,
            })?;
        out(&format!("  unplugged {} ({id})\n", v.address));
    }
    // The guest acknowledges the unplug asynchronously; the VMM lets go of the device
    // right after. A short pause keeps the release from racing it.
    std::thread::sleep(Duration::from_millis(200));
    let records = Records::new(&run_root);
    let host = device_host(paths, &paths.sys_root()?)?;
    let gone: Vec<PciAddress> = entries.iter().map(|v| v.address).collect();
    let rec = records.read(vm);
    let came: Vec<CameFrom> = match &rec {
        Some(r) => r
            .came_from
            .iter()
            .filter(|c| gone.contains(&c.address))
            .cloned()
            .collect(),
        None => gone
            .iter()
            .map(|a| CameFrom {
                address: *a,
                driver: None,
                driver_override: None,
            })
            .collect(),
    };
    let released = host.release(vm, &came);
    // `release` dropped the whole record on success: keep the VM's other devices in it.
    if let Some(mut r) = rec {
        r.devices.retain(|a| !gone.contains(a));
        r.came_from.retain(|c| !gone.contains(&c.address));
        if !r.devices.is_empty() && released.is_ok() {
            records.write(&r)?;
        }
    }
    released?;
    out(&format!("  {} back on their host drivers\n", join(&gone)));
    Ok(())
}

/// The id of the device whose path is `path` in a `vm.info` config.
fn id_in_config(config: &serde_json::Value, path: &str) -> Option<String> {
    let want = path.trim_end_matches('/');
    config
        .get("devices")?
        .as_array()?
        .iter()
        .find(|d| {
            d.get("path")
                .and_then(|p| p.as_str())
                .is_some_and(|p| p.trim_end_matches('/') == want)
        })?
        .get("id")?
        .as_str()
        .map(str::to_string)
}
