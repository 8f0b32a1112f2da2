//! IOMMU state: whether the kernel made groups, why (not), and interrupt remapping.

use super::model::{IommuGroup, IommuInfo, Vendor};
use super::pci_address::PciAddress;
use super::SysRoot;

pub fn read_groups(root: &SysRoot, warnings: &mut Vec<String>) -> Vec<IommuGroup> {
    let mut groups: Vec<IommuGroup> = root
        .list("sys/kernel/iommu_groups")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| {
            let id: u32 = name.parse().ok()?;
            let mut devices: Vec<PciAddress> = root
                .list(format!("sys/kernel/iommu_groups/{name}/devices"))
                .unwrap_or_default()
                .iter()
                .filter_map(|d| match d.parse() {
                    Ok(a) => Some(a),
                    Err(e) => {
                        warnings.push(format!("iommu group {id}: {e}"));
                        None
                    }
                })
                .collect();
            devices.sort();
            Some(IommuGroup { id, devices })
        })
        .collect();
    groups.sort_by_key(|g| g.id);
    groups
}

pub fn cmdline_iommu_args(cmdline: &str) -> Vec<String> {
    cmdline
        .split_whitespace()
        .filter(|a| {
            a.starts_with("intel_iommu=") || a.starts_with("amd_iommu=") || a.starts_with("iommu=")
        })
        .map(str::to_string)
        .collect()
}

/// The CPU vendor decides which switch the fixes name (`intel_iommu=on` vs AMD-Vi).
pub fn cpu_vendor(cpuinfo: &str) -> Vendor {
    match cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("vendor_id"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim())
    {
        Some("GenuineIntel") => Vendor::Intel,
        Some("AuthenticAMD") | Some("HygonGenuine") => Vendor::Amd,
        Some(_) => Vendor::Other,
        None => Vendor::Unknown,
    }
}

pub fn read_info(root: &SysRoot, groups: &[IommuGroup]) -> IommuInfo {
    let cmdline = root.read("proc/cmdline").unwrap_or_default();
    let args = cmdline_iommu_args(&cmdline);
    let units = root.list("sys/class/iommu").unwrap_or_default();
    let firmware_table = ["DMAR", "IVRS"]
        .into_iter()
        .find(|t| root.exists(format!("sys/firmware/acpi/tables/{t}")))
        .map(str::to_string);
    let vendor = if units.iter().any(|u| u.starts_with("dmar")) {
        Vendor::Intel
    } else if units.iter().any(|u| u.starts_with("ivhd")) {
        Vendor::Amd
    } else {
        match firmware_table.as_deref() {
            Some("DMAR") => Vendor::Intel,
            Some("IVRS") => Vendor::Amd,
            _ => cpu_vendor(&root.read("proc/cpuinfo").unwrap_or_default()),
        }
    };
    let enabled = !groups.is_empty();
    let turned_off = args
        .iter()
        .any(|a| a == "intel_iommu=off" || a == "amd_iommu=off" || a == "iommu=off");
    let reason = if enabled {
        format!("the kernel made {} IOMMU groups", groups.len())
    } else if turned_off {
        "the kernel command line turns the IOMMU off".to_string()
    } else if firmware_table.is_none() && units.is_empty() {
        "the firmware announces no IOMMU (no DMAR/IVRS table): VT-d/AMD-Vi is off in firmware setup or absent".to_string()
    } else if vendor == Vendor::Intel && !args.iter().any(|a| a.starts_with("intel_iommu=on")) {
        "the firmware has an IOMMU but the kernel did not enable it (intel_iommu=on missing)"
            .to_string()
    } else {
        "the firmware has an IOMMU but the kernel made no groups".to_string()
    };
    IommuInfo {
        enabled,
        reason,
        firmware_table,
        vendor,
        passthrough_mode: args.iter().any(|a| a == "iommu=pt"),
        cmdline: args,
        interrupt_remapping: interrupt_remapping(root, &units),
        group_count: groups.len(),
    }
}

/// The kernel tags remapped interrupt domains `IR-` in /proc/interrupts, which holds for
/// Intel and AMD alike; without that, Intel's extended capability register says whether
/// the hardware could.
fn interrupt_remapping(root: &SysRoot, units: &[String]) -> Option<bool> {
    if let Ok(interrupts) = root.read("proc/interrupts") {
        if interrupts.contains("IR-") {
            return Some(true);
        }
        if interrupts.contains("MSI") {
            return Some(false);
        }
    }
    let ecap = units.iter().find_map(|u| {
        root.read(format!("sys/class/iommu/{u}/intel-iommu/ecap"))
            .ok()
            .and_then(|s| super::pci::parse_hex(&s))
    })?;
    // ECAP.IR is bit 3.
    Some(ecap & (1 << 3) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_only_iommu_arguments() {
        let args = cmdline_iommu_args(
            "BOOT_IMAGE=/vmlinuz root=/dev/sda1 intel_iommu=on iommu=pt quiet amd_iommu_dump=1",
        );
        assert_eq!(args, ["intel_iommu=on", "iommu=pt"]);
    }

    #[test]
    fn cpu_vendor_from_cpuinfo() {
        assert_eq!(
            cpu_vendor("processor\t: 0\nvendor_id\t: AuthenticAMD\n"),
            Vendor::Amd
        );
        assert_eq!(cpu_vendor("vendor_id\t: GenuineIntel"), Vendor::Intel);
        assert_eq!(cpu_vendor(""), Vendor::Unknown);
    }
}
