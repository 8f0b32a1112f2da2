//! Vendor and device names. The system's `pci.ids` (inside the host root) is preferred since
//! distributions update it more often than the copy compiled into the `pci-ids` crate.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use pci_ids::FromId;

use super::SysRoot;

const PCI_IDS_PATHS: [&str; 3] = [
    "usr/share/misc/pci.ids",
    "usr/share/hwdata/pci.ids",
    "usr/share/pci.ids",
];

#[derive(Debug, Default)]
pub struct Names {
    vendors: HashMap<u16, String>,
    devices: HashMap<(u16, u16), String>,
}

impl Names {
    /// Looks up only the IDs asked for: one pass over the file, no full database in memory.
    pub fn lookup(root: &SysRoot, wanted: &HashSet<(u16, u16)>) -> Names {
        let mut names = Names::default();
        if let Some(text) = PCI_IDS_PATHS
            .iter()
            .find_map(|p| root.read_bytes(p, super::attr::DATA_CAP).ok())
        {
            names.scan(&String::from_utf8_lossy(&text), wanted);
        }
        for &(vendor, device) in wanted {
            if let Entry::Vacant(slot) = names.vendors.entry(vendor) {
                if let Some(v) = pci_ids::Vendor::from_id(vendor) {
                    slot.insert(v.name().to_string());
                }
            }
            if let Entry::Vacant(slot) = names.devices.entry((vendor, device)) {
                if let Some(d) = pci_ids::Device::from_vid_pid(vendor, device) {
                    slot.insert(d.name().to_string());
                }
            }
        }
        names
    }

    fn scan(&mut self, text: &str, wanted: &HashSet<(u16, u16)>) {
        let vendors: HashSet<u16> = wanted.iter().map(|(v, _)| *v).collect();
        let mut current: Option<u16> = None;
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            // The class list at the end of the file reuses the indented layout.
            if line.starts_with("C ") {
                break;
            }
            if !line.starts_with('\t') {
                current = parse_entry(line)
                    .filter(|(id, _)| vendors.contains(id))
                    .map(|(id, name)| {
                        self.vendors.insert(id, name.to_string());
                        id
                    });
            } else if let Some(vendor) = current {
                if line.starts_with("\t\t") {
                    continue;
                }
                if let Some((id, name)) = line.strip_prefix('\t').and_then(parse_entry) {
                    if wanted.contains(&(vendor, id)) {
                        self.devices.insert((vendor, id), name.to_string());
                    }
                }
            }
        }
    }

    pub fn vendor(&self, vendor: u16) -> Option<&str> {
        self.vendors.get(&vendor).map(String::as_str)
    }

    pub fn device(&self, vendor: u16, device: u16) -> Option<&str> {
        self.devices.get(&(vendor, device)).map(String::as_str)
    }
}

fn parse_entry(line: &str) -> Option<(u16, &str)> {
    let (id, name) = line.split_once(char::is_whitespace)?;
    if id.len() != 4 {
        return None;
    }
    Some((u16::from_str_radix(id, 16).ok()?, name.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_file_wins_and_crate_fills_gaps() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/share/misc")).unwrap();
        std::fs::write(
            dir.path().join("usr/share/misc/pci.ids"),
            "# comment\n1234  Local Vendor\n\t1111  Local Display\n\t\t1af4 1100  QEMU\n\
             C 03  Display controller\n\t00  VGA compatible controller\n",
        )
        .unwrap();
        let wanted = HashSet::from([(0x1234, 0x1111), (0x8086, 0x293e)]);
        let names = Names::lookup(&SysRoot::new(dir.path()), &wanted);
        assert_eq!(names.vendor(0x1234), Some("Local Vendor"));
        assert_eq!(names.device(0x1234, 0x1111), Some("Local Display"));
        assert_eq!(names.vendor(0x8086), Some("Intel Corporation"));
        assert!(names.device(0x8086, 0x293e).is_some());
        assert_eq!(names.device(0x1234, 0x2222), None);
    }
}
