//! What is bound where right now, read through a [`SysRoot`]: PCI drivers and overrides,
//! framebuffer consoles and firmware framebuffers. [`Bindings`] is the snapshot compared
//! before and after an operation to prove nothing was left half-done.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::host::{PciAddress, SysRoot};

pub const VFIO_PCI: &str = "vfio-pci";

/// Platform devices that firmware framebuffers (efifb, simpledrm, vesafb) sit on.
const PLATFORM_FB_PREFIXES: [&str; 3] =
    ["efi-framebuffer", "simple-framebuffer", "vesa-framebuffer"];

pub fn pci_dir(address: &PciAddress) -> String {
    format!("sys/bus/pci/devices/{address}")
}

/// The driver a PCI function is bound to, from its `driver` link (never followed).
pub fn driver_of(root: &SysRoot, address: &PciAddress) -> Option<String> {
    let dir = root.resolve(pci_dir(address)).ok()?;
    root.link_name_in(&dir, "driver").ok().flatten()
}

/// `driver_override`, with the kernel's "(null)" as `None`.
pub fn override_of(root: &SysRoot, address: &PciAddress) -> Option<String> {
    let s = root
        .read(format!("{}/driver_override", pci_dir(address)))
        .ok()?;
    let s = s.trim();
    (!s.is_empty() && s != "(null)").then(|| s.to_string())
}

/// Virtual console drivers whose name says "frame buffer" (fbcon), with their bind state.
pub fn framebuffer_consoles(root: &SysRoot) -> Vec<(String, bool)> {
    root.list("sys/class/vtconsole")
        .unwrap_or_default()
        .into_iter()
        .filter(|vt| {
            root.read(format!("sys/class/vtconsole/{vt}/name"))
                .is_ok_and(|n| n.contains("frame buffer"))
        })
        .map(|vt| {
            let bound = root
                .read(format!("sys/class/vtconsole/{vt}/bind"))
                .is_ok_and(|b| b.trim() == "1");
            (vt, bound)
        })
        .collect()
}

/// Firmware framebuffer platform devices and the driver each is bound to.
pub fn platform_framebuffers(root: &SysRoot) -> Vec<(String, Option<String>)> {
    root.list("sys/bus/platform/devices")
        .unwrap_or_default()
        .into_iter()
        .filter(|d| PLATFORM_FB_PREFIXES.iter().any(|p| d.starts_with(p)))
        .map(|d| {
            let driver = root
                .resolve(format!("sys/bus/platform/devices/{d}"))
                .ok()
                .and_then(|dir| root.link_name_in(&dir, "driver").ok().flatten());
            (d, driver)
        })
        .collect()
}

/// The platform driver that normally takes a firmware framebuffer device: its name
/// without the instance number (`efi-framebuffer.0` → `efi-framebuffer`; simpledrm
/// registers as `simple-framebuffer` too).
pub fn platform_driver_for(device: &str) -> String {
    device
        .rsplit_once('.')
        .map_or(device, |(name, _)| name)
        .to_string()
}

/// Everything an operation may change, for before/after comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bindings {
    /// Driver and override of each PCI function.
    pub pci: BTreeMap<PciAddress, (Option<String>, Option<String>)>,
    /// fbcon `bind` of each frame buffer vtconsole.
    pub consoles: BTreeMap<String, bool>,
    /// Driver of each firmware framebuffer.
    pub framebuffers: BTreeMap<String, Option<String>>,
}

impl Bindings {
    pub fn read(root: &SysRoot) -> Bindings {
        let pci = root
            .list("sys/bus/pci/devices")
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.parse::<PciAddress>().ok())
            .map(|a| (a, (driver_of(root, &a), override_of(root, &a))))
            .collect();
        Bindings {
            pci,
            consoles: framebuffer_consoles(root).into_iter().collect(),
            framebuffers: platform_framebuffers(root).into_iter().collect(),
        }
    }

    /// Human lines for every difference from `before`, e.g. `0000:01:00.0: driver amdgpu → none`.
    pub fn differences_from(&self, before: &Bindings) -> Vec<String> {
        let mut out = Vec::new();
        let name = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".to_string());
        for (a, (drv, over)) in &before.pci {
            let (now_drv, now_over) = self.pci.get(a).cloned().unwrap_or_default();
            if &now_drv != drv {
                out.push(format!("{a}: driver {} → {}", name(drv), name(&now_drv)));
            }
            if &now_over != over {
                out.push(format!(
                    "{a}: driver_override {} → {}",
                    name(over),
                    name(&now_over)
                ));
            }
        }
        for (vt, bound) in &before.consoles {
            if self.consoles.get(vt) != Some(bound) {
                out.push(format!(
                    "{vt}: console bind {} → {}",
                    *bound as u8, !*bound as u8
                ));
            }
        }
        for (fb, drv) in &before.framebuffers {
            let now = self.framebuffers.get(fb).cloned().flatten();
            if &now != drv {
                out.push(format!("{fb}: driver {} → {}", name(drv), name(&now)));
            }
        }
        out
    }
}
