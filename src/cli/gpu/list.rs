//! `phyllome gpu list`: each GPU with its group, verdict and where it stands now.

use std::fmt::Write as _;

use serde::Serialize;

use super::super::host::verdict_word;
use super::super::GlobalArgs;
use super::say;
use crate::host::{Inventory, PciAddress, Readiness, SysRoot};
use crate::vfio::ResetMarks;
use crate::vmm::managed::{DeviceRecord, Holding, Records};
use crate::vmm::runtime::RunRoot;

/// Where a device stands, in the words the console uses everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviceState {
    /// On a host driver (or on none, `driver` empty).
    HostDriver { driver: Option<String> },
    /// On vfio-pci, no VM holds it.
    VfioPci,
    /// On vfio-pci for a VM whose VMM runs.
    InUse { vm: String },
    /// A VM's VMM is gone but the release failed: reattach it by hand.
    ReleaseFailed { vm: String, problems: Vec<String> },
    /// A guest ran on a card without a working reset: the host must reboot before reuse.
    NeedsReboot { reason: String },
}

impl DeviceState {
    pub fn words(&self) -> String {
        match self {
            DeviceState::HostDriver { driver: Some(d) } => format!("host driver ({d})"),
            DeviceState::HostDriver { driver: None } => "no driver".to_string(),
            DeviceState::VfioPci => "vfio-pci".to_string(),
            DeviceState::InUse { vm } => format!("in use by VM {vm}"),
            DeviceState::ReleaseFailed { vm, .. } => format!("release failed (VM {vm})"),
            DeviceState::NeedsReboot { .. } => "needs reboot".to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Companion {
    pub address: PciAddress,
    pub name: String,
    pub state: DeviceState,
}

#[derive(Debug, Clone, Serialize)]
pub struct GpuRow {
    pub address: PciAddress,
    pub name: String,
    pub iommu_group: Option<u32>,
    pub shows_host_console: bool,
    pub passthrough: Readiness,
    pub state: DeviceState,
    /// The other endpoints of its group, which move with it.
    pub companions: Vec<Companion>,
}

/// What managed mode recorded, with a hold whose VMM and supervisor are both gone left out
/// (the next `vm list` releases it).
pub(crate) fn live_records(global: &GlobalArgs) -> Vec<DeviceRecord> {
    let Ok(run_root) = RunRoot::resolve(global.run_dir.as_deref()) else {
        return Vec::new();
    };
    Records::new(&run_root)
        .all()
        .into_iter()
        .filter(|r| r.state == Holding::ReleaseFailed || vm_alive(&run_root, r))
        .collect()
}

fn vm_alive(run_root: &RunRoot, rec: &DeviceRecord) -> bool {
    let Ok(rt) = run_root.vm(&rec.vm) else {
        return false;
    };
    let alive = |p: u32| crate::vmm::launch::pid_is_vmm(p, &rt.api_socket);
    rec.supervisor_pid.is_some_and(alive) || rt.read_pid().is_some_and(alive)
}

pub(crate) fn state_of(
    inv: &Inventory,
    records: &[DeviceRecord],
    marks: Option<&ResetMarks>,
    address: &PciAddress,
) -> DeviceState {
    let driver = inv.device(address).and_then(|d| d.driver.clone());
    if let Some(mark) = marks.and_then(|m| m.needs_reboot(address)) {
        return DeviceState::NeedsReboot {
            reason: mark.warning(),
        };
    }
    if let Some(rec) = records.iter().find(|r| r.devices.contains(address)) {
        return match rec.state {
            Holding::ReleaseFailed => DeviceState::ReleaseFailed {
                vm: rec.vm.clone(),
                problems: rec.problems.clone(),
            },
            Holding::Held => DeviceState::InUse { vm: rec.vm.clone() },
        };
    }
    match driver.as_deref() {
        Some(crate::vfio::VFIO_PCI) => DeviceState::VfioPci,
        _ => DeviceState::HostDriver { driver },
    }
}

/// The "needs host reboot" marks, when phyllome's state directory has any.
pub(crate) fn reset_marks(global: &GlobalArgs, root: &SysRoot) -> Option<ResetMarks> {
    let opts = crate::vmm::device_ops::plan_options(global.state_dir.as_deref());
    ResetMarks::load(opts.state_dir.as_deref()?, root).ok()
}

pub fn rows(inv: &Inventory, records: &[DeviceRecord], marks: Option<&ResetMarks>) -> Vec<GpuRow> {
    inv.gpus
        .iter()
        .map(|g| GpuRow {
            address: g.address,
            name: g.name.clone(),
            iommu_group: g.iommu_group,
            shows_host_console: g.shows_host_console,
            passthrough: g.passthrough.clone(),
            state: state_of(inv, records, marks, &g.address),
            companions: g
                .companions
                .iter()
                .map(|a| Companion {
                    address: *a,
                    name: inv.device(a).map(|d| d.display_name()).unwrap_or_default(),
                    state: state_of(inv, records, marks, a),
                })
                .collect(),
        })
        .collect()
}

pub fn render(rows: &[GpuRow]) -> String {
    let mut s = String::new();
    if rows.is_empty() {
        return "No GPU (display controller) on this host\n".to_string();
    }
    let _ = writeln!(
        s,
        "{:<13} {:>5}  {:<8} {:<28} NAME",
        "ADDRESS", "GROUP", "VERDICT", "STATE"
    );
    for r in rows {
        let group = r.iommu_group.map_or("-".to_string(), |g| g.to_string());
        let console = if r.shows_host_console {
            "  [host console]"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "{:<13} {:>5}  {:<8} {:<28} {}{console}",
            r.address.to_string(),
            group,
            verdict_word(&r.passthrough.verdict),
            r.state.words(),
            r.name
        );
        for c in &r.companions {
            let _ = writeln!(
                s,
                "  + {:<24} {:<28} {}",
                c.address.to_string(),
                c.state.words(),
                c.name
            );
        }
        for reason in &r.passthrough.reasons {
            let _ = writeln!(s, "  - {reason}");
        }
        if let DeviceState::NeedsReboot { reason } = &r.state {
            let _ = writeln!(s, "  ! {reason}");
        }
        for p in release_problems(r) {
            let _ = writeln!(s, "  ! {p}");
        }
    }
    s
}

fn release_problems(r: &GpuRow) -> Vec<String> {
    let mut out = Vec::new();
    for state in std::iter::once(&r.state).chain(r.companions.iter().map(|c| &c.state)) {
        if let DeviceState::ReleaseFailed { problems, .. } = state {
            for p in problems {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
    }
    if !out.is_empty() {
        out.push(format!(
            "fix the cause, then `phyllome gpu reattach {}`",
            r.address
        ));
    }
    out
}

pub fn run(global: &GlobalArgs, json: bool) -> eyre::Result<()> {
    let root = global.sys_root()?;
    let inv = Inventory::collect_with(&root, &global.collect_options());
    let marks = reset_marks(global, &root);
    let rows = rows(&inv, &live_records(global), marks.as_ref());
    if json {
        let text = serde_json::to_string_pretty(&rows)?;
        say(&format!("{text}\n"))?;
    } else {
        say(&render(&rows))?;
    }
    Ok(())
}
