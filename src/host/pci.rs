//! Reads PCI functions from `sys/bus/pci/devices`.

use std::path::Path;

use super::model::{Bar, PciClass, PciDevice, PowerState};
use super::pci_address::PciAddress;
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

pub fn read_all(root: &SysRoot, warnings: &mut Vec<String>) -> Vec<RawDevice> {
    let names = match root.list(DEVICES) {
        Ok(n) => n,
        Err(e) => {
            warnings.push(error_chain(&e));
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let address: PciAddress = match name.parse() {
            Ok(a) => a,
            Err(e) => {
                warnings.push(format!("{DEVICES}/{name}: {e}"));
                continue;
            }
        };
        match read_one(root, address, &name, warnings) {
            Ok(d) => out.push(d),
            Err(e) => warnings.push(format!("{address}: skipped: {}", error_chain(&e))),
        }
    }
    out.sort_by_key(|d| d.device.address);
    out
}

fn read_one(
    root: &SysRoot,
    address: PciAddress,
    name: &str,
    warnings: &mut Vec<String>,
) -> Result<RawDevice, SysError> {
    let dir = root.resolve(format!("{DEVICES}/{name}"))?;
    // A garbled ID keeps the device listed (as unknown) rather than hiding it.
    let mut id = |attr, unknown| match hex_attr(root, &dir, attr) {
        Ok(v) => v.unwrap_or(unknown),
        Err(e) => {
            warnings.push(error_chain(&e));
            unknown
        }
    };
    let class = PciClass(id("class", 0xff0000) as u32 & 0xff_ffff);
    let vendor = id("vendor", 0xffff) as u16;
    let device_id = id("device", 0xffff) as u16;
    let optional_hex = |n| {
        hex_attr(root, &dir, n)
            .ok()
            .flatten()
            .map(|v| format!("{:04x}", v))
    };
    let text = |n| root.read_in(&dir, n).ok();
    let device = PciDevice {
        address,
        class,
        class_name: class.describe(),
        vendor_id: format!("{vendor:04x}"),
        device_id: format!("{device_id:04x}"),
        vendor_name: None,
        device_name: None,
        subsystem_vendor_id: optional_hex("subsystem_vendor"),
        subsystem_device_id: optional_hex("subsystem_device"),
        driver: root.link_name_in(&dir, "driver")?,
        driver_override: text("driver_override").filter(|s| !s.is_empty() && s != "(null)"),
        iommu_group: root
            .link_name_in(&dir, "iommu_group")?
            .and_then(|g| g.parse().ok()),
        numa_node: text("numa_node")
            .and_then(|s| s.parse().ok())
            .filter(|n: &i32| *n >= 0),
        reset_methods: text("reset_method")
            .map(|s| s.split_whitespace().map(str::to_string).collect()),
        boot_vga: text("boot_vga").map(|s| s == "1"),
        power_state: text("power_state")
            .map(|s| parse_power_state(&s))
            .unwrap_or(PowerState::Unknown),
        rom: dir.join("rom").exists(),
        bars: text("resource").map(|s| parse_bars(&s)).unwrap_or_default(),
    };
    Ok(RawDevice {
        device,
        vendor,
        device_id,
        dir,
    })
}

/// A missing attribute is `None`; a garbled one is an error naming the file.
fn hex_attr(root: &SysRoot, dir: &Path, name: &str) -> Result<Option<u64>, SysError> {
    match root.read_in(dir, name) {
        Ok(s) => parse_hex(&s).map(Some).ok_or_else(|| SysError::Io {
            path: dir.join(name).display().to_string(),
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

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
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

    proptest! {
        #[test]
        fn garbage_never_panics(s in "\\PC{0,200}") {
            let _ = parse_bars(&s);
            let _ = parse_hex(&s);
            let _ = parse_power_state(&s);
        }
    }
}
