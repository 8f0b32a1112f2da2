//! GPUs: their DRM nodes and outputs, whether they draw the host console, and which other
//! functions must travel with them.

use std::path::Path;

use super::model::{DrmOutput, GpuRole, PciDevice};
use super::pci::RawDevice;
use super::pci_address::PciAddress;
use super::SysRoot;

const ASPEED: u16 = 0x1a03;
const MATROX: u16 = 0x102b;
/// Matrox G200 variants soldered onto server boards as BMC displays.
const MATROX_G200_BMC: [u16; 8] = [
    0x0522, 0x0524, 0x0530, 0x0532, 0x0533, 0x0534, 0x0536, 0x0538,
];

/// What the host's text console is drawn with, read once for all GPUs.
#[derive(Debug, Default)]
pub struct ConsoleState {
    pub fbcon_bound: bool,
    pub vgacon_bound: bool,
    /// PCI functions that own a framebuffer device (`/sys/class/graphics/fb*`).
    pub fb_owners: Vec<PciAddress>,
    /// A firmware framebuffer (efifb, simpledrm, vesafb) exists: it sits on the boot GPU.
    pub firmware_fb: bool,
}

impl ConsoleState {
    pub fn read(root: &SysRoot) -> ConsoleState {
        let mut state = ConsoleState::default();
        for vt in root.list("sys/class/vtconsole").unwrap_or_default() {
            let name = root
                .read(format!("sys/class/vtconsole/{vt}/name"))
                .unwrap_or_default();
            let bound = root
                .read(format!("sys/class/vtconsole/{vt}/bind"))
                .is_ok_and(|b| b == "1");
            if bound && name.contains("frame buffer") {
                state.fbcon_bound = true;
            }
            if bound && name.contains("VGA") {
                state.vgacon_bound = true;
            }
        }
        for fb in root.list("sys/class/graphics").unwrap_or_default() {
            if !fb.starts_with("fb") {
                continue;
            }
            let Ok(dev) = root.resolve(format!("sys/class/graphics/{fb}/device")) else {
                continue;
            };
            let owner = super::pci_address::nearest_in_path(&dev);
            let leaf = dev
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            match owner {
                Some(a) if !is_platform_fb(&leaf) => state.fb_owners.push(a),
                _ => state.firmware_fb |= is_platform_fb(&leaf) || owner.is_none(),
            }
        }
        state
    }

    pub fn drawn_on(&self, gpu: &PciDevice) -> bool {
        let boot = gpu.boot_vga == Some(true);
        (self.fbcon_bound && (self.fb_owners.contains(&gpu.address) || (boot && self.firmware_fb)))
            || (self.vgacon_bound && boot)
    }
}

fn is_platform_fb(name: &str) -> bool {
    [
        "efi-framebuffer",
        "simple-framebuffer",
        "vesa-framebuffer",
        "simpledrm",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

pub fn role(raw: &RawDevice) -> GpuRole {
    let bmc =
        raw.vendor == ASPEED || (raw.vendor == MATROX && MATROX_G200_BMC.contains(&raw.device_id));
    if bmc {
        GpuRole::Management
    } else {
        GpuRole::Passthrough
    }
}

/// DRM nodes (`card0`, `renderD128`) and the connectors of each card.
pub fn drm(root: &SysRoot, dir: &Path) -> (Vec<String>, Vec<DrmOutput>) {
    let drm_dir = dir.join("drm");
    let nodes = super::sysroot::list_dir(&drm_dir).unwrap_or_default();
    let mut outputs = Vec::new();
    for card in nodes.iter().filter(|n| n.starts_with("card")) {
        let card_dir = drm_dir.join(card);
        let prefix = format!("{card}-");
        for conn in super::sysroot::list_dir(&card_dir).unwrap_or_default() {
            if let Some(name) = conn.strip_prefix(&prefix) {
                let status = root
                    .read_in(&card_dir.join(&conn), "status")
                    .unwrap_or_default();
                outputs.push(DrmOutput {
                    name: name.to_string(),
                    connected: status == "connected",
                });
            }
        }
    }
    (nodes, outputs)
}

/// Endpoints sharing the GPU's group; PCI-PCI bridges stay behind (vfio accepts them bound
/// to pcieport).
pub fn companions(gpu: &PciDevice, members: &[&PciDevice]) -> Vec<PciAddress> {
    members
        .iter()
        .filter(|d| d.address != gpu.address && !d.class.is_pci_bridge())
        .map(|d| d.address)
        .collect()
}
