//! Devices the host cannot lose: the controller of its root disk, the NIC of its default
//! route and the UART of its serial console. A GPU whose group holds one of them can never
//! be given away.

use std::path::Path;

use serde::Serialize;

use super::pci_address::PciAddress;
use super::SysRoot;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CriticalDevice {
    pub address: PciAddress,
    /// What the host uses it for, e.g. "root disk controller (/ on nvme0n1p2)".
    pub role: String,
}

pub fn find(root: &SysRoot) -> Vec<CriticalDevice> {
    let mut out = Vec::new();
    if let Some((dev, name)) = root_block_device(root) {
        for address in block_controllers(root, &dev, 0) {
            out.push(CriticalDevice {
                address,
                role: format!("root disk controller (/ on {name})"),
            });
        }
    }
    if let Some(iface) = default_route_interface(&root.read(super::route::PATH).unwrap_or_default())
    {
        for address in net_devices(root, &iface, 0) {
            out.push(CriticalDevice {
                address,
                role: format!("network card of the default route ({iface})"),
            });
        }
    }
    for tty in serial_consoles(&root.read("proc/cmdline").unwrap_or_default()) {
        if let Some(address) = pci_ancestor_of(root, &format!("sys/class/tty/{tty}/device")) {
            out.push(CriticalDevice {
                address,
                role: format!("serial console UART ({tty})"),
            });
        }
    }
    out.sort_by_key(|c| c.address);
    out.dedup_by(|a, b| a.address == b.address && a.role == b.role);
    out
}

/// The block device holding `/`, as `sys/dev/block/MAJ:MIN` and a readable name.
fn root_block_device(root: &SysRoot) -> Option<(String, String)> {
    let mountinfo = root.read(super::mountinfo::PATH).ok()?;
    let (majmin, source) = root_mount(&mountinfo)?;
    let dev = format!("sys/dev/block/{majmin}");
    let name = Path::new(&source)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    if root.exists(&dev) {
        return Some((dev, name));
    }
    // Filesystems such as btrfs report an anonymous device: go by the source path instead.
    let resolved = root.resolve(source.trim_start_matches('/')).ok()?;
    let real = resolved.file_name()?.to_string_lossy().into_owned();
    Some((format!("sys/class/block/{real}"), name))
}

/// `(major:minor, source)` of the mount at `/` from /proc/self/mountinfo (the last one
/// wins: it is the one on top).
pub fn root_mount(mountinfo: &str) -> Option<(String, String)> {
    let mounts = super::mountinfo::parse(mountinfo);
    super::mountinfo::mounted_at(&mounts, "/").map(|m| (m.dev_no(), m.source.clone()))
}

/// PCI controllers under a block device, following device-mapper and md slaves.
fn block_controllers(root: &SysRoot, dev: &str, depth: usize) -> Vec<PciAddress> {
    if depth > 8 {
        return Vec::new();
    }
    let slaves = root.list(format!("{dev}/slaves")).unwrap_or_default();
    if !slaves.is_empty() {
        return slaves
            .iter()
            .flat_map(|s| block_controllers(root, &format!("sys/class/block/{s}"), depth + 1))
            .collect();
    }
    pci_ancestor_of(root, dev).into_iter().collect()
}

/// The interface of the first default IPv4 route in /proc/net/route.
pub fn default_route_interface(route: &str) -> Option<String> {
    super::route::ipv4_defaults(route)
        .into_iter()
        .next()
        .map(|r| r.iface)
}

/// Physical NICs behind an interface, through bridges (`brif/`) and bonds (`lower_*`).
fn net_devices(root: &SysRoot, iface: &str, depth: usize) -> Vec<PciAddress> {
    if depth > 8 {
        return Vec::new();
    }
    let base = format!("sys/class/net/{iface}");
    let mut lower: Vec<String> = root.list(format!("{base}/brif")).unwrap_or_default();
    lower.extend(
        root.list(&base)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.strip_prefix("lower_").map(str::to_string)),
    );
    if !lower.is_empty() {
        return lower
            .iter()
            .flat_map(|l| net_devices(root, l, depth + 1))
            .collect();
    }
    pci_ancestor_of(root, &format!("{base}/device"))
        .into_iter()
        .collect()
}

/// `ttyS0` from `console=ttyS0,115200n8`; the last console= is where /dev/console goes,
/// but every serial one is someone's lifeline.
pub fn serial_consoles(cmdline: &str) -> Vec<String> {
    cmdline
        .split_whitespace()
        .filter_map(|a| a.strip_prefix("console="))
        .map(|c| c.split(',').next().unwrap_or(c).to_string())
        .filter(|c| c.starts_with("ttyS") || c.starts_with("ttyAMA") || c.starts_with("ttyUSB"))
        .collect()
}

/// The nearest PCI function on the resolved sysfs path of `rel`.
fn pci_ancestor_of(root: &SysRoot, rel: &str) -> Option<PciAddress> {
    super::pci_address::nearest_in_path(&root.resolve(rel).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_mount_is_the_topmost_slash() {
        let info = "22 1 0:21 / / rw,relatime shared:1 - overlay overlay rw\n\
                    29 22 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n\
                    30 29 0:5 / /dev rw - devtmpfs udev rw\n";
        assert_eq!(
            root_mount(info),
            Some(("259:2".to_string(), "/dev/nvme0n1p2".to_string()))
        );
        assert_eq!(root_mount("garbage\n- - -"), None);
    }

    #[test]
    fn default_route_and_serial_consoles() {
        let route = "Iface\tDestination\tGateway\tFlags\nenp3s0\t0001A8C0\t00000000\t0001\nbr0\t00000000\t0101A8C0\t0003\n";
        assert_eq!(default_route_interface(route), Some("br0".to_string()));
        assert_eq!(default_route_interface("Iface\n"), None);
        // A default route that is down carries nothing: the one that is up is the lifeline.
        let down_first = "Iface\tDestination\tGateway\tFlags\nold0\t00000000\t0101A8C0\t0002\nbr0\t00000000\t0101A8C0\t0003\n";
        assert_eq!(default_route_interface(down_first), Some("br0".to_string()));
        assert_eq!(
            serial_consoles("console=tty0 console=ttyS1,115200n8 quiet"),
            ["ttyS1"]
        );
    }
}
