//! The passthrough verdict for one GPU: every reason says what is wrong and what to change.

use super::critical::CriticalDevice;
use super::model::{
    Gpu, GpuRole, IommuInfo, KvmInfo, PciDevice, PowerState, Readiness, Vendor, Verdict,
};

pub struct HostFacts<'a> {
    pub iommu: &'a IommuInfo,
    pub kvm: &'a KvmInfo,
    pub critical: &'a [CriticalDevice],
    pub vfio_pci_available: bool,
}

struct Findings {
    blocked: Vec<String>,
    warn: Vec<String>,
    info: Vec<String>,
}

pub fn assess(gpu: &Gpu, device: &PciDevice, group: &[&PciDevice], host: &HostFacts) -> Readiness {
    let mut f = Findings {
        blocked: Vec::new(),
        warn: Vec::new(),
        info: Vec::new(),
    };
    if gpu.role == GpuRole::Management {
        f.blocked.push(
            "this is the board's management (BMC) display: keep it for the host and its remote console"
                .to_string(),
        );
    }
    host_level(host, &mut f);
    group_level(gpu, group, host, &mut f);
    device_level(gpu, device, &mut f);
    let verdict = if !f.blocked.is_empty() {
        Verdict::Blocked
    } else if !f.warn.is_empty() {
        Verdict::Warn
    } else {
        Verdict::Ready
    };
    let mut reasons = f.blocked;
    reasons.extend(f.warn);
    reasons.extend(f.info);
    Readiness { verdict, reasons }
}

fn host_level(host: &HostFacts, f: &mut Findings) {
    if !host.iommu.enabled {
        let fix = match host.iommu.vendor {
            Vendor::Amd => "enable AMD-Vi/IOMMU in firmware setup and make sure amd_iommu=off is not on the kernel command line",
            Vendor::Intel => "add intel_iommu=on to the kernel command line (and enable VT-d in firmware setup)",
            _ => "enable VT-d/AMD-Vi in firmware setup and add intel_iommu=on (Intel) to the kernel command line",
        };
        f.blocked
            .push(format!("IOMMU is off ({}): {fix}", host.iommu.reason));
    }
    if !host.kvm.device_present {
        f.blocked.push(
            "KVM is not available (/dev/kvm missing): enable VT-x/AMD-V in firmware setup and load kvm_intel or kvm_amd"
                .to_string(),
        );
    }
    if host.iommu.enabled && host.iommu.interrupt_remapping == Some(false) {
        f.warn.push(
            "interrupt remapping is off: VFIO refuses the card's MSI interrupts unless vfio_iommu_type1 allow_unsafe_interrupts=1; enable it in firmware setup (VT-d/AMD-Vi with x2APIC)"
                .to_string(),
        );
    }
    if !host.vfio_pci_available {
        f.warn.push(
            "the vfio-pci driver is neither loaded nor installed: install the kernel modules package and run modprobe vfio-pci"
                .to_string(),
        );
    }
}

fn group_level(gpu: &Gpu, group: &[&PciDevice], host: &HostFacts, f: &mut Findings) {
    let Some(id) = gpu.iommu_group else {
        if host.iommu.enabled {
            f.blocked.push(format!(
                "{} is in no IOMMU group: the kernel cannot isolate it; try another slot",
                gpu.address
            ));
        }
        return;
    };
    let others: Vec<&&PciDevice> = group
        .iter()
        .filter(|d| gpu.companions.contains(&d.address))
        .collect();
    let mut reported_slots: Vec<&PciDevice> = Vec::new();
    for member in &others {
        if let Some(c) = host.critical.iter().find(|c| c.address == member.address) {
            f.blocked.push(format!(
                "group {id} also holds {} ({}), the host's {}: giving it away would cut the host off; move the card to a slot with its own group",
                member.address, member.display_name(), c.role
            ));
        } else if member.address.same_slot(&gpu.address) {
            f.info.push(format!(
                "its {} {} goes with it (same card)",
                member.class_name, member.address
            ));
        } else if !reported_slots
            .iter()
            .any(|r| r.address.same_slot(&member.address))
        {
            reported_slots.push(member);
        }
    }
    // One reason per foreign card, naming its function 0 and listing the rest.
    for first in reported_slots {
        let rest: Vec<String> = others
            .iter()
            .filter(|d| d.address != first.address && d.address.same_slot(&first.address))
            .filter(|d| !host.critical.iter().any(|c| c.address == d.address))
            .map(|d| d.address.to_string())
            .collect();
        let with = if rest.is_empty() {
            String::new()
        } else {
            format!(" with {}", rest.join(", "))
        };
        f.warn.push(format!(
            "group {id} also holds {} ({}){with}: both must go to the same guest; a slot wired to the CPU usually has a group of its own",
            first.address,
            first.display_name()
        ));
    }
}

fn device_level(gpu: &Gpu, device: &PciDevice, f: &mut Findings) {
    match &device.reset_methods {
        Some(methods) if methods.is_empty() => f.warn.push(
            "no reset method: the card may need a host reboot between guest runs".to_string(),
        ),
        Some(methods) => f.info.push(format!("resets with {}", methods.join(", "))),
        None => {}
    }
    if gpu.shows_host_console {
        f.warn.push(
            "this GPU shows the host console: the screen goes dark for the host when it is given away; keep serial or SSH access"
                .to_string(),
        );
    }
    if device.driver.as_deref() == Some("vfio-pci") {
        f.info.push("already bound to vfio-pci".to_string());
    }
    if device.power_state == PowerState::D3cold {
        f.info
            .push("asleep (D3cold): not woken for inspection; it wakes when claimed".to_string());
    }
}
