//! `phyllome gpu list`: each GPU with its group, verdict and where it stands now.

use std::fmt::Write as _;

use serde::Serialize;

use super::super::host::verdict_word;
use super::say;
use crate::host::{Inventory, PciAddress, Readiness};
use crate::ops::gpu::{live_records, reset_marks, state_of, DeviceState};
use crate::ops::HostPaths;
use crate::vfio::ResetMarks;
use crate::vmm::managed::DeviceRecord;

#[derive(Debug, Clone, Serialize)]
pub struct Companion {
    pub address: PciAddress,
    pub name: String,
    /// `[vendor:device]` for the text output; JSON keeps its keys.
    #[serde(skip)]
    pub ids: String,
    pub state: DeviceState,
}

#[derive(Debug, Clone, Serialize)]
pub struct GpuRow {
    pub address: PciAddress,
    pub name: String,
    /// `[vendor:device]` for the text output; JSON keeps its keys.
    #[serde(skip)]
    pub ids: String,
    pub iommu_group: Option<u32>,
    pub shows_host_console: bool,
    pub passthrough: Readiness,
    pub state: DeviceState,
    /// The other endpoints of its group, which move with it.
    pub companions: Vec<Companion>,
}

pub fn rows(inv: &Inventory, records: &[DeviceRecord], marks: Option<&ResetMarks>) -> Vec<GpuRow> {
    inv.gpus
        .iter()
        .map(|g| GpuRow {
            address: g.address,
            name: g.name.clone(),
            ids: inv.device(&g.address).map(|d| d.ids()).unwrap_or_default(),
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
                    ids: inv.device(a).map(|d| d.ids()).unwrap_or_default(),
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
            "{:<13} {:>5}  {:<8} {:<28} {}{}{console}",
            r.address.to_string(),
            group,
            verdict_word(&r.passthrough.verdict),
            r.state.words(),
            crate::fmt::printable(&r.name),
            spaced(&r.ids)
        );
        for c in &r.companions {
            let _ = writeln!(
                s,
                "  + {:<24} {:<28} {}{}",
                c.address.to_string(),
                c.state.words(),
                crate::fmt::printable(&c.name),
                spaced(&c.ids)
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

/// ` [vendor:device]`, or nothing for a device missing from the list.
fn spaced(ids: &str) -> String {
    if ids.is_empty() {
        String::new()
    } else {
        format!(" {ids}")
    }
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

#[derive(Serialize)]
struct GpuList<'a> {
    gpus: &'a [GpuRow],
}

pub fn run(paths: &HostPaths, json: bool) -> eyre::Result<()> {
    use crate::cli::doc::{self, version};
    doc::begin(json, version::GPU_LIST, &[]);
    let host = crate::ops::host::read(paths)?;
    let marks = reset_marks(paths, &host.root);
    let rows = rows(&host.inventory, &live_records(paths), marks.as_ref());
    if json {
        doc::finish(version::GPU_LIST, &GpuList { gpus: &rows })?;
    } else {
        say(&render(&rows))?;
    }
    Ok(())
}
