//! The two moves managed mode makes, on top of the `vfio` module: bind the groups of some
//! devices to vfio-pci, and give them back. Kept apart so the supervision code reads as
//! "prepare, run, release" and the vfio details stay in one place.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::fixture::kernel::FakeKernel;
use crate::host::{Inventory, PciAddress, SysRoot};
use crate::vfio::{self, PlanOptions, PlannedDevice, ReleaseOptions, RootWriter, SysWriter};

/// Marks a fixture tree built by `fixture` (its fake kernel's driver table).
const FIXTURE_MARKER: &str = "fixture/native-drivers";

/// Why the simulated kernel cannot be used for a host root.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("--simulate writes through the simulated kernel of a fixture tree; {0} is the real host, refusing to write")]
    RealHost(String),
    #[error("--simulate needs a fixture tree made by `fixture_tree`; {root} has no {marker}, refusing to write")]
    NotAFixture { root: String, marker: &'static str },
}

/// The writer for a host root: the kernel's own files, or with `simulate` the fake kernel
/// of a fixture tree (which changes the tree as Linux would), so `--host-root FIXTURE
/// --simulate` behaves end to end. The switch is explicit: a tree that merely looks like a
/// fixture gets plain writes, and the simulator never stands in for the real `/`.
pub fn writer_for(root: &SysRoot, simulate: bool) -> Result<Box<dyn SysWriter>, SimulateError> {
    if !simulate {
        return Ok(Box::new(RootWriter::new(root.clone())));
    }
    let shown = root.root().display().to_string();
    if root.is_host() {
        return Err(SimulateError::RealHost(shown));
    }
    if !root.root().join(FIXTURE_MARKER).is_file() {
        return Err(SimulateError::NotAFixture {
            root: shown,
            marker: FIXTURE_MARKER,
        });
    }
    Ok(Box::new(FakeKernel::new(root.root())))
}

/// Where a device was before managed mode moved it, to put it back exactly there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameFrom {
    #[serde(with = "super::managed::address_text::one")]
    pub address: PciAddress,
    pub driver: Option<String>,
    pub driver_override: Option<String>,
}

impl CameFrom {
    fn planned(&self) -> PlannedDevice {
        PlannedDevice {
            address: self.address,
            name: String::new(),
            driver: self.driver.clone(),
            driver_override: self.driver_override.clone(),
            target: None,
        }
    }
}

/// Plans read the "needs host reboot" marks in phyllome's state directory: `--state-dir`,
/// else the default one (the parent of the VM definitions' directory).
pub fn plan_options(state_dir: Option<&Path>) -> PlanOptions {
    let dir = match state_dir {
        Some(d) => Some(d.to_path_buf()),
        None => crate::vm::Store::default_dir(None)
            .ok()
            .and_then(|vms| vms.parent().map(Path::to_path_buf)),
    };
    PlanOptions { state_dir: dir }
}

/// Notes that a guest ran on these devices: a card without a working reset is marked
/// "needs host reboot" (best effort: a mark that cannot be saved is logged).
pub fn note_guest_ran(
    root: &SysRoot,
    devices: &[PciAddress],
    vm: &str,
    opts: &PlanOptions,
    log: impl Fn(&str),
) {
    let Some(dir) = &opts.state_dir else { return };
    let inv = Inventory::collect(root);
    let mut marks = match vfio::ResetMarks::load(dir, root) {
        Ok(m) => m,
        Err(e) => return log(&format!("reset marks: {}", vfio::error_chain(&e))),
    };
    for d in devices.iter().filter_map(|a| inv.device(a)) {
        match marks.guest_ran(d, vm) {
            Ok(true) => log(&format!(
                "{} has no working reset: marked \"needs host reboot\"",
                d.address
            )),
            Ok(false) => {}
            Err(e) => log(&format!("reset marks: {}", vfio::error_chain(&e))),
        }
    }
}

/// Binds the IOMMU group of each address to vfio-pci (a group once, however many of its
/// members are listed) and returns where every moved endpoint came from. On failure the
/// failing group was rolled back by `vfio::apply`, and the groups moved before it are
/// released here, so a failed start leaves the host as it was.
pub fn detach_all(
    root: &SysRoot,
    addresses: &[PciAddress],
    opts: &PlanOptions,
    simulate: bool,
    log: impl Fn(&str),
) -> Result<Vec<CameFrom>, String> {
    let writer = writer_for(root, simulate).map_err(|e| e.to_string())?;
    let mut moved: Vec<CameFrom> = Vec::new();
    for address in addresses {
        if moved.iter().any(|m| m.address == *address) {
            continue;
        }
        root.forget();
        let inv = Inventory::collect(root);
        let result = vfio::plan(root, &inv, *address, opts)
            .map_err(|e| vfio::error_chain(&e))
            .and_then(|mut plan| {
                // The owner confirmed when assigning the device to the VM; a start (maybe at
                // boot, with nobody to ask) must not stop at the console question.
                if let Some(c) = plan.needs_confirmation.clone() {
                    log(&format!("detach: {}", c.reason));
                    plan.confirm(&c.phrase).map_err(|e| e.to_string())?;
                }
                let mut on_step = |e: &vfio::StepEvent| step_log(&log, e);
                vfio::apply(&plan, writer.as_ref(), root, &mut on_step)
                    .map_err(|e| vfio::error_chain(&e))
            });
        match result {
            Ok(applied) => moved.extend(applied.devices.iter().map(|d| CameFrom {
                address: d.address,
                driver: d.driver.clone(),
                driver_override: d.driver_override.clone(),
            })),
            Err(e) => {
                log(&format!("detach {address} failed: {e}"));
                if let Err(problems) = release_all(root, &moved, opts, simulate, &log) {
                    return Err(format!(
                        "{address}: {e}; and the devices moved before it did not all come back: {}",
                        problems.join("; ")
                    ));
                }
                return Err(format!("{address}: {e}"));
            }
        }
    }
    Ok(moved)
}

/// Gives every listed endpoint back to the driver it came from (and the console back to the
/// boot GPU). Every group is tried; the problems of all of them are returned.
pub fn release_all(
    root: &SysRoot,
    devices: &[CameFrom],
    opts: &PlanOptions,
    simulate: bool,
    log: impl Fn(&str),
) -> Result<(), Vec<String>> {
    let writer = writer_for(root, simulate).map_err(|e| vec![e.to_string()])?;
    let mut problems = Vec::new();
    let mut done: Vec<PciAddress> = Vec::new();
    for d in devices {
        if done.contains(&d.address) {
            continue;
        }
        root.forget();
        let inv = Inventory::collect(root);
        let ropts = ReleaseOptions {
            came_from: devices.iter().map(CameFrom::planned).collect(),
            restore_console: None,
            plan: opts.clone(),
        };
        let plan = match vfio::release_plan(root, &inv, d.address, &ropts) {
            Ok(p) => p,
            Err(vfio::PlanError::NothingToRelease { .. }) => {
                done.push(d.address);
                continue;
            }
            Err(e) => {
                problems.push(format!("{}: {}", d.address, vfio::error_chain(&e)));
                done.push(d.address);
                continue;
            }
        };
        done.extend(plan.devices.iter().map(|p| p.address));
        let mut on_step = |e: &vfio::StepEvent| step_log(&log, e);
        if let Err(e) = vfio::release(&plan, writer.as_ref(), root, &mut on_step) {
            problems.push(format!("{}: {}", d.address, vfio::error_chain(&e)));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn step_log(log: &impl Fn(&str), e: &vfio::StepEvent) {
    let phase = match e.phase {
        vfio::Phase::Do => "",
        vfio::Phase::Undo => "undo ",
    };
    match &e.status {
        vfio::StepStatus::Running => {}
        vfio::StepStatus::Done => log(&format!("  {phase}ok: {}", e.description)),
        vfio::StepStatus::Failed(why) => log(&format!("  {phase}FAILED: {}: {why}", e.description)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_never_stands_in_for_the_real_host() {
        let e = writer_for(&SysRoot::new("/"), true).err().unwrap();
        assert!(matches!(e, SimulateError::RealHost(_)), "{e:?}");
    }

    #[test]
    fn the_simulator_needs_a_fixture_tree() {
        let dir = tempfile::tempdir().unwrap();
        let e = writer_for(&SysRoot::new(dir.path()), true).err().unwrap();
        assert!(matches!(e, SimulateError::NotAFixture { .. }), "{e:?}");
        assert!(writer_for(&SysRoot::new(dir.path()), false).is_ok());
    }
}
