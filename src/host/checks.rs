//! Host checks in the style of virt-host-validate, each with the fix when it does not pass.

use super::model::{Check, CheckStatus, CpuVirt, Gpu, IommuInfo, KvmInfo, Vendor, Verdict};

pub(super) fn check(
    id: &'static str,
    title: &str,
    status: CheckStatus,
    detail: String,
    fix: &str,
) -> Check {
    Check {
        id,
        title: title.to_string(),
        status,
        detail,
        fix: (status != CheckStatus::Pass).then(|| fix.to_string()),
    }
}

pub fn run(iommu: &IommuInfo, kvm: &KvmInfo, gpus: &[Gpu], vfio_pci_available: bool) -> Vec<Check> {
    use CheckStatus::*;
    let mut out = Vec::new();
    let (status, detail) = match kvm.cpu_virtualization {
        CpuVirt::Vmx => (Pass, "Intel VT-x (vmx)".to_string()),
        CpuVirt::Svm => (Pass, "AMD-V (svm)".to_string()),
        CpuVirt::None => (Fail, "the CPU shows neither vmx nor svm".to_string()),
        CpuVirt::Unknown => (Warn, "/proc/cpuinfo could not be read".to_string()),
    };
    out.push(check(
        "cpu_virtualization",
        "CPU virtualization extensions",
        status,
        detail,
        "enable Intel VT-x or AMD-V (SVM) in firmware setup",
    ));
    let (status, detail) = match (kvm.device_present, kvm.accessible) {
        (true, Some(true)) => (
            Pass,
            format!(
                "/dev/kvm, API {}, up to {} vCPUs",
                kvm.api_version.map_or("?".into(), |v| v.to_string()),
                kvm.max_vcpus.map_or("?".into(), |v| v.to_string())
            ),
        ),
        (true, None) => (
            Pass,
            "/dev/kvm present (not a device node in this tree: not queried)".to_string(),
        ),
        (true, Some(false)) => (Warn, "/dev/kvm exists but cannot be opened".to_string()),
        (false, _) => (Fail, "/dev/kvm is missing".to_string()),
    };
    out.push(check(
        "kvm",
        "KVM",
        status,
        detail,
        "load kvm_intel or kvm_amd (modprobe) and run as root or in the kvm group",
    ));
    let firmware_fix = match iommu.vendor {
        Vendor::Amd => "enable AMD-Vi (IOMMU) in firmware setup",
        _ => "enable VT-d in firmware setup",
    };
    out.push(check(
        "iommu_firmware",
        "IOMMU announced by firmware",
        if iommu.firmware_table.is_some() || iommu.enabled {
            Pass
        } else {
            Fail
        },
        iommu
            .firmware_table
            .as_ref()
            .map_or("no DMAR or IVRS ACPI table".to_string(), |t| {
                format!("ACPI {t} table")
            }),
        firmware_fix,
    ));
    out.push(check(
        "iommu_enabled",
        "IOMMU enabled by the kernel",
        if iommu.enabled { Pass } else { Fail },
        iommu.reason.clone(),
        match iommu.vendor {
            Vendor::Amd => "remove amd_iommu=off from the kernel command line and enable AMD-Vi in firmware setup",
            _ => "add intel_iommu=on iommu=pt to the kernel command line",
        },
    ));
    let (status, detail) = match iommu.interrupt_remapping {
        Some(true) => (Pass, "interrupts are remapped".to_string()),
        Some(false) => (Warn, "interrupts are not remapped".to_string()),
        None => (Warn, "the kernel does not say".to_string()),
    };
    out.push(check(
        "interrupt_remapping",
        "Interrupt remapping",
        status,
        detail,
        "enable VT-d/AMD-Vi with interrupt remapping (and x2APIC) in firmware setup",
    ));
    out.push(check(
        "vfio_pci",
        "vfio-pci driver",
        if vfio_pci_available { Pass } else { Warn },
        if kvm.vfio_modules.is_empty() {
            if vfio_pci_available {
                "installed, not loaded yet"
            } else {
                "not found"
            }
            .to_string()
        } else {
            format!("loaded: {}", kvm.vfio_modules.join(", "))
        },
        "install the kernel modules package and run modprobe vfio-pci",
    ));
    let huge: Vec<String> = kvm
        .hugepages
        .iter()
        .filter(|h| h.total > 0)
        .map(|h| format!("{} x {} KiB ({} free)", h.total, h.size_kib, h.free))
        .collect();
    out.push(check(
        "hugepages",
        "Hugepages reserved",
        if huge.is_empty() { Warn } else { Pass },
        if huge.is_empty() { "none reserved".to_string() } else { huge.join(", ") },
        "optional: reserve them for guest memory, e.g. hugepagesz=1G hugepages=16 on the kernel command line",
    ));
    out.push(check(
        "cloud_hypervisor",
        "Cloud Hypervisor",
        if kvm.cloud_hypervisor.is_some() {
            Pass
        } else {
            Warn
        },
        kvm.cloud_hypervisor
            .as_ref()
            .map_or("not found".to_string(), |b| {
                format!(
                    "{} {}",
                    b.path,
                    b.version.as_deref().unwrap_or("(version unknown)")
                )
            }),
        "install cloud-hypervisor in /usr/bin or point --ch-bin at it",
    ));
    out.push(check(
        "guest_firmware",
        "Guest firmware",
        if kvm.firmware.is_empty() { Warn } else { Pass },
        if kvm.firmware.is_empty() {
            "no CLOUDHV.fd or hypervisor-fw".to_string()
        } else {
            kvm.firmware.join(", ")
        },
        "install CLOUDHV.fd (needed for Windows and UEFI guests) in /usr/share/cloud-hypervisor/",
    ));
    let passthrough: Vec<&Gpu> = gpus
        .iter()
        .filter(|g| g.role == super::model::GpuRole::Passthrough)
        .collect();
    let ready = passthrough
        .iter()
        .filter(|g| g.passthrough.verdict == Verdict::Ready)
        .count();
    let usable = passthrough
        .iter()
        .filter(|g| g.passthrough.verdict != Verdict::Blocked)
        .count();
    out.push(check(
        "gpu_passthrough",
        "A GPU can be given to a guest",
        if ready > 0 {
            Pass
        } else if usable > 0 {
            Warn
        } else {
            Fail
        },
        format!(
            "{} GPU(s): {ready} ready, {} with warnings, {} blocked",
            passthrough.len(),
            usable - ready,
            passthrough.len() - usable
        ),
        "see the GPU's reasons for what to change",
    ));
    out
}
