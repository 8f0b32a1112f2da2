//! Reads PCI functions from `sys/bus/pci/devices`.

use super::model::{Bar, PciClass, PciDevice, PowerState};
use super::pci_address::PciAddress;
use std::collections::HashMap;

use super::sysroot::SysDir;
use super::{SysError, SysRoot};

const DEVICES: &str = "sys/bus/pci/devices";
/// `IORESOURCE_IO` and `IORESOURCE_PREFETCH` in the kernel's resource flags.
const RESOURCE_IO: u64 = 0x100;
const RESOURCE_PREFETCH: u64 = 0x2000;

/// A device as read from sysfs, before names are looked up.
pub struct RawDevice {
    pub device: PciDevice,
    pub vendor: u16,
    pub device_id: u16,
    /// The resolved sysfs directory, for later reads (DRM nodes, ...).
    pub dir: std::path::PathBuf,
}

/// Reads every PCI function. `groups` maps functions to the IOMMU groups already listed from
/// `sys/kernel/iommu_groups`, which saves reading every function's `iommu_group` link.
pub fn read_all(
    root: &SysRoot,
    groups: &HashMap<PciAddress, u32>,
    warnings: &mut Vec<String>,
) -> Vec<RawDevice> {
    let names = match root.list(DEVICES) {
        Ok(n) => n,
        Err(e) => {
            warnings.push(crate::error::Chain(&e).to_string());
            return Vec::new();
        }
    };
    // Reading is syscall-bound: split the functions over the cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let chunk = names.len().div_ceil(threads).max(64);
    let mut out = Vec::with_capacity(names.len());
    std::thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(chunk)
            .map(|part| scope.spawn(move || read_many(root, groups, part)))
            .collect();
        for w in workers {
            match w.join() {
                Ok((devices, notes)) => {
                    out.extend(devices);
                    warnings.extend(notes);
                }
                Err(_) => warnings.push("a PCI reader thread failed".to_string()),
            }
        }
    });
    out.sort_by_key(|d| d.device.address);
    out
}

fn read_many(
    root: &SysRoot,
    groups: &HashMap<PciAddress, u32>,
    names: &[String],
) -> (Vec<RawDevice>, Vec<String>) {
    // On a single-node machine every function says -1: not worth a read each.
    let multi_node = root.exists("sys/devices/system/node/node1");
    let mut out = Vec::with_capacity(names.len());
    let mut warnings = Vec::new();
    for name in names {
        let address: PciAddress = match name.parse() {
            Ok(a) => a,
            Err(e) => {
                warnings.push(format!("{DEVICES}/{name}: {e}"));
                continue;
            }
        };
        match read_one(root, address, name, multi_node, &mut warnings) {
            Ok(mut d) => {
                d.device.iommu_group = groups.get(&address).copied();
                out.push(d)
            }
            Err(e) => warnings.push(format!("{address}: skipped: {}", crate::error::Chain(&e))),
        }
    }
    (out, warnings)
}

/// IDs from `uevent`: one read instead of five.
#[derive(Debug, Default, PartialEq)]
pub struct UeventIds {
    pub class: Option<u32>,
    pub vendor: Option<u16>,
    pub device: Option<u16>,
    pub subsystem: Option<(u16, u16)>,
    pub driver: Option<String>,
}

pub fn parse_uevent(text: &str) -> UeventIds {
    let pair = |v: &str| {
        let (a, b) = v.split_once(':')?;
        Some((
            u16::from_str_radix(a, 16).ok()?,
            u16::from_str_radix(b, 16).ok()?,
        ))
    };
    let mut ids = UeventIds::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("PCI_CLASS", v)) => {
                ids.class = u32::from_str_radix(v, 16).ok().filter(|c| *c <= 0xff_ffff)
            }
            Some(("PCI_ID", v)) => {
                if let Some((vendor, device)) = pair(v) {
                    ids.vendor = Some(vendor);
                    ids.device = Some(device);
                }
            }
            Some(("PCI_SUBSYS_ID", v)) => ids.subsystem = pair(v),
            Some(("DRIVER", v)) if !v.is_empty() => ids.driver = Some(v.to_string()),
            _ => {}
        }
    }
    ids
}

fn read_one(
    root: &SysRoot,
    address: PciAddress,
    name: &str,
    multi_node: bool,
    warnings: &mut Vec<String>,
) -> Result<RawDevice, SysError> {
    let dir = root.open_dir_in_root(&format!("{DEVICES}/{name}"))?;
    // A garbled ID keeps the device listed (as unknown) rather than hiding it.
    let mut id = |attr, unknown| match hex_attr(&dir, attr) {
        Ok(v) => v.unwrap_or(unknown),
        Err(e) => {
            warnings.push(crate::error::Chain(&e).to_string());
            unknown
        }
    };
    let uevent = parse_uevent(&dir.read("uevent").unwrap_or_default());
    let class = PciClass(match uevent.class {
        Some(c) => c,
        None => id("class", 0xff0000) as u32 & 0xff_ffff,
    });
    let (vendor, device_id) = match (uevent.vendor, uevent.device) {
        (Some(v), Some(d)) => (v, d),
        _ => (id("vendor", 0xffff) as u16, id("device", 0xffff) as u16),
    };
    let optional_hex = |n| {
        hex_attr(&dir, n)
            .ok()
            .flatten()
            .map(|v| format!("{:04x}", v))
    };
    let (subsystem_vendor_id, subsystem_device_id) = match uevent.subsystem {
        Some((v, d)) => (Some(format!("{v:04x}")), Some(format!("{d:04x}"))),
        None => (
            optional_hex("subsystem_vendor"),
            optional_hex("subsystem_device"),
        ),
    };
    let display = class.is_display();
    let text = |n| dir.read(n).ok();
    let device = PciDevice {
        address,
        class,
        class_name: class.describe(),
        vendor_id: format!("{vendor:04x}"),
        device_id: format!("{device_id:04x}"),
        vendor_name: None,
        device_name: None,
        subsystem_vendor_id,
        subsystem_device_id,
        // The kernel writes DRIVER= into uevent whenever one is bound.
        driver: match (&uevent.driver, uevent.vendor) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(_)) => None,
            (None, None) => dir.link_name("driver")?,
        },
        driver_override: text("driver_override").filter(|s| !s.is_empty() && s != "(null)"),
        // Filled in by `read_many` from the group listing.
        iommu_group: None,
        numa_node: multi_node
            .then(|| text("numa_node"))
            .flatten()
            .and_then(|s| s.parse().ok())
            .filter(|n: &i32| *n >= 0),
        reset_methods: text("reset_method")
            .map(|s| s.split_whitespace().map(str::to_string).collect()),
        // Only VGA-class functions have boot_vga, and only GPUs' ROMs matter here.
        boot_vga: display
            .then(|| text("boot_vga"))
            .flatten()
            .map(|s| s == "1"),
        power_state: text("power_state")
            .map(|s| parse_power_state(&s))
            .unwrap_or(PowerState::Unknown),
        rom: display && dir.has("rom"),
        bars: text("resource").map(|s| parse_bars(&s)).unwrap_or_default(),
    };
    Ok(RawDevice {
        device,
        vendor,
        device_id,
        dir: dir.path().to_path_buf(),
    })
}

/// A missing attribute is `None`; a garbled one is an error naming the file.
fn hex_attr(dir: &SysDir, name: &str) -> Result<Option<u64>, SysError> {
    match dir.read(name) {
        Ok(s) => parse_hex(&s).map(Some).ok_or_else(|| SysError::Io {
            path: dir.path().join(name).display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{:?} is not a hex number",
                    s.chars().take(32).collect::<String>()
                ),
            ),
        }),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

fn parse_power_state(s: &str) -> PowerState {
    match s.trim() {
        "D0" => PowerState::D0,
        "D1" => PowerState::D1,
        "D2" => PowerState::D2,
        "D3hot" => PowerState::D3hot,
        "D3cold" => PowerState::D3cold,
        _ => PowerState::Unknown,
    }
}

/// The `resource` file: one `start end flags` line per resource; the first six are BARs.
pub fn parse_bars(text: &str) -> Vec<Bar> {
    text.lines()
        .take(6)
        .enumerate()
        .filter_map(|(index, line)| {
            let mut fields = line.split_whitespace().map(parse_hex);
            let (start, end, flags) = (fields.next()??, fields.next()??, fields.next()??);
            if end == 0 || end < start {
                return None;
            }
            Some(Bar {
                index: index as u8,
                size: end - start + 1,
                prefetchable: flags & RESOURCE_PREFETCH != 0,
                io: flags & RESOURCE_IO != 0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bars_from_a_real_resource_file() {
        let text = "0x00000000fd000000 0x00000000fdffffff 0x0000000000040200\n\
                    0x00000000e0000000 0x00000000efffffff 0x000000000014220c\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    0x000000000000e000 0x000000000000e07f 0x0000000000040101\n";
        let bars = parse_bars(text);
        assert_eq!(bars.len(), 3);
        assert_eq!(
            (bars[0].index, bars[0].size, bars[0].prefetchable),
            (0, 16 << 20, false)
        );
        assert_eq!(
            (bars[1].index, bars[1].size, bars[1].prefetchable),
            (1, 256 << 20, true)
        );
        assert_eq!((bars[2].index, bars[2].size, bars[2].io), (3, 128, true));
    }

    #[test]
    fn uevent_of_a_real_gpu() {
        let ids = parse_uevent(
            "DRIVER=bochs-drm\nPCI_CLASS=30000\nPCI_ID=1234:1111\nPCI_SUBSYS_ID=1AF4:1100\nPCI_SLOT_NAME=0000:01:00.0\n",
        );
        assert_eq!(
            ids,
            UeventIds {
                class: Some(0x030000),
                vendor: Some(0x1234),
                device: Some(0x1111),
                subsystem: Some((0x1af4, 0x1100)),
                driver: Some("bochs-drm".to_string()),
            }
        );
        assert_eq!(
            parse_uevent("PCI_ID=zz:1\nPCI_CLASS=1000000"),
            UeventIds::default()
        );
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in "\\PC{0,200}") {
            let _ = parse_uevent(&s);
            let _ = parse_bars(&s);
            let _ = parse_hex(&s);
            let _ = parse_power_state(&s);
        }
    }
}
