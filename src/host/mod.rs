//! What this host can do: PCI devices, IOMMU groups, GPUs and their passthrough readiness,
//! KVM. Every read is relative to a [`SysRoot`], so fixture trees and `--host-root` work
//! like the real `/`.

pub mod attr;
pub mod checks;
pub mod critical;
pub mod gpu;
pub mod iommu;
pub mod kvm;
pub mod model;
pub mod mountinfo;
pub mod names;
pub mod pci;
pub mod pci_address;
pub mod readiness;
pub mod route;
pub mod state_storage;
pub mod sysroot;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

pub use model::*;
pub use pci_address::PciAddress;
pub use sysroot::{SysError, SysRoot};
pub use writer::{RootWriter, SysWriter};

/// How to collect: the root and where Cloud Hypervisor lives when not on the usual paths.
#[derive(Debug, Clone, Default)]
pub struct CollectOptions {
    pub ch_bin: Option<PathBuf>,
}

impl Inventory {
    pub fn collect(root: &SysRoot) -> Inventory {
        Inventory::collect_with(root, &CollectOptions::default())
    }

    pub fn collect_with(root: &SysRoot, opts: &CollectOptions) -> Inventory {
        let mut warnings = Vec::new();
        let iommu_groups = iommu::read_groups(root, &mut warnings);
        let group_of: HashMap<PciAddress, u32> = iommu_groups
            .iter()
            .flat_map(|g| g.devices.iter().map(move |a| (*a, g.id)))
            .collect();
        let mut raw = pci::read_all(root, &group_of, &mut warnings);
        let wanted: HashSet<(u16, u16)> = raw.iter().map(|r| (r.vendor, r.device_id)).collect();
        let names = names::Names::lookup(root, &wanted);
        for r in &mut raw {
            r.device.vendor_name = names.vendor(r.vendor).map(str::to_string);
            r.device.device_name = names.device(r.vendor, r.device_id).map(str::to_string);
        }
        let iommu = iommu::read_info(root, &iommu_groups);
        let kvm = kvm::read(root, opts.ch_bin.as_deref());
        let critical = critical::find(root);
        let vfio_pci_available = kvm::vfio_pci_available(root, &kvm.vfio_modules);
        let console = gpu::ConsoleState::read(root);

        let by_address: HashMap<PciAddress, &PciDevice> =
            raw.iter().map(|r| (r.device.address, &r.device)).collect();
        let members_of = |group: Option<u32>| -> Vec<&PciDevice> {
            let Some(id) = group else { return Vec::new() };
            iommu_groups
                .iter()
                .find(|g| g.id == id)
                .map(|g| {
                    g.devices
                        .iter()
                        .filter_map(|a| by_address.get(a).copied())
                        .collect()
                })
                .unwrap_or_default()
        };
        let facts = readiness::HostFacts {
            iommu: &iommu,
            kvm: &kvm,
            critical: &critical,
            vfio_pci_available,
        };
        let gpus: Vec<Gpu> = raw
            .iter()
            .filter(|r| r.device.class.is_display())
            .map(|r| {
                let d = &r.device;
                let members = members_of(d.iommu_group);
                let (drm_nodes, outputs) = gpu::drm(root, &r.dir);
                let mut g = Gpu {
                    address: d.address,
                    name: d.display_name(),
                    iommu_group: d.iommu_group,
                    boot_vga: d.boot_vga == Some(true),
                    driver: d.driver.clone(),
                    role: gpu::role(r),
                    drm_nodes,
                    outputs,
                    shows_host_console: console.drawn_on(d),
                    companions: gpu::companions(d, &members),
                    passthrough: Readiness {
                        verdict: Verdict::Ready,
                        reasons: Vec::new(),
                    },
                };
                g.passthrough = readiness::assess(&g, d, &members, &facts);
                g
            })
            .collect();
        let mut checks = checks::run(&iommu, &kvm, &gpus, vfio_pci_available);
        checks.extend(state_storage::run(root));
        // Files refused or cut on the way, also where the reader went on without them
        // (optional attributes); once per file.
        for note in root.take_notes() {
            if !warnings.iter().any(|w| w.contains(&note.path)) {
                warnings.push(note.text);
            }
        }
        Inventory {
            pci_devices: raw.into_iter().map(|r| r.device).collect(),
            iommu_groups,
            gpus,
            iommu,
            kvm,
            checks,
            warnings,
        }
    }
}
