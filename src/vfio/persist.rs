//! Claiming the devices at boot, for hosts whose GPU driver grabs the card before anyone
//! can detach it: kernel arguments, modprobe and udev configuration, shown as a preview
//! with its undo, written under a root, and checked against `/proc/cmdline` after reboot.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::host::{Inventory, PciAddress, SysRoot, Vendor};

use super::plan::{unit, PlanError};
use super::state::VFIO_PCI;

const HEADER: &str = "# Written by phyllome";
const MODPROBE: &str = "/etc/modprobe.d/phyllome-vfio.conf";
const MODULES_LOAD: &str = "/etc/modules-load.d/phyllome-vfio.conf";
const UDEV: &str = "/etc/udev/rules.d/60-phyllome-vfio.rules";

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("{path} exists and was not written by phyllome: leaving it alone")]
    NotOurs { path: String },
    #[error("{0}")]
    File(#[from] crate::files::FileError),
    #[error("Cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigFile {
    /// Where it goes on the host, e.g. `/etc/modprobe.d/phyllome-vfio.conf`.
    pub path: String,
    pub contents: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootConfig {
    pub group: u32,
    pub devices: Vec<PciAddress>,
    /// Arguments the kernel command line must carry.
    pub kernel_args: Vec<String>,
    pub files: Vec<ConfigFile>,
    /// Commands that finish the job (kernel arguments on rpm-ostree, the initramfs).
    pub commands: Vec<String>,
    /// Commands that take it back, with removing `files`.
    pub undo_commands: Vec<String>,
    /// Why the configuration looks as it does.
    pub notes: Vec<String>,
}

/// The boot-time configuration that hands `address`'s IOMMU group to vfio-pci.
pub fn boot_config(
    root: &SysRoot,
    inventory: &Inventory,
    address: PciAddress,
) -> Result<BootConfig, PersistError> {
    let (group, _, moving) = unit(inventory, address)?;
    let mut notes = Vec::new();
    let mut kernel_args = match inventory.iommu.vendor {
        Vendor::Intel => vec!["intel_iommu=on".to_string(), "iommu=pt".to_string()],
        Vendor::Amd => {
            notes.push(
                "AMD-Vi is on whenever firmware enables it (amd_iommu= takes no \"on\"); \
                 iommu=pt keeps host devices fast"
                    .into(),
            );
            vec!["iommu=pt".to_string()]
        }
        _ => vec!["iommu=pt".to_string()],
    };
    let ids: BTreeSet<String> = moving
        .iter()
        .map(|d| format!("{}:{}", d.vendor_id, d.device_id))
        .collect();
    let shared: Vec<String> = ids
        .iter()
        .filter(|id| {
            inventory.pci_devices.iter().any(|o| {
                format!("{}:{}", o.vendor_id, o.device_id) == **id
                    && !moving.iter().any(|m| m.address == o.address)
            })
        })
        .cloned()
        .collect();
    let header = format!("{HEADER} for IOMMU group {group} ({address}); delete it to undo.\n");
    let mut files = Vec::new();
    if shared.is_empty() {
        kernel_args.push(format!(
            "vfio-pci.ids={}",
            ids.iter().cloned().collect::<Vec<_>>().join(",")
        ));
    } else {
        notes.push(format!(
            "{} also belong to devices that stay on the host: claiming by address with a udev \
             rule (driver_override) instead of vfio-pci.ids",
            shared.join(", ")
        ));
        let rules: String = moving
            .iter()
            .map(|d| {
                format!(
                    "ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"{}\", ATTR{{driver_override}}=\"{VFIO_PCI}\"\n",
                    d.address
                )
            })
            .collect();
        files.push(ConfigFile {
            path: UDEV.into(),
            contents: format!("{header}{rules}"),
        });
    }
    // vfio-pci must load before the host drivers, or they claim the card first.
    let modules: BTreeSet<String> = moving
        .iter()
        .filter_map(|d| d.driver.as_deref())
        .filter(|d| *d != VFIO_PCI)
        .map(|d| module_of(root, d))
        .collect();
    let softdeps: String = modules
        .iter()
        .map(|m| format!("softdep {m} pre: vfio-pci\n"))
        .collect();
    files.insert(
        0,
        ConfigFile {
            path: MODPROBE.into(),
            contents: format!("{header}{softdeps}"),
        },
    );
    files.push(ConfigFile {
        path: MODULES_LOAD.into(),
        contents: format!("{header}vfio-pci\n"),
    });
    let (commands, undo_commands) = commands(root, &kernel_args, &files);
    Ok(BootConfig {
        group,
        devices: moving.iter().map(|d| d.address).collect(),
        kernel_args,
        files,
        commands,
        undo_commands,
        notes,
    })
}

/// The module behind a driver (`sys/bus/pci/drivers/<d>/module`), else the driver's name.
fn module_of(root: &SysRoot, driver: &str) -> String {
    root.resolve(format!("sys/bus/pci/drivers/{driver}"))
        .ok()
        .and_then(|dir| root.link_name_in(&dir, "module").ok().flatten())
        .unwrap_or_else(|| driver.replace('-', "_"))
}

fn commands(root: &SysRoot, args: &[String], files: &[ConfigFile]) -> (Vec<String>, Vec<String>) {
    let joined = |flag: &str| {
        args.iter()
            .map(|a| format!("{flag}={a}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if root.exists("run/ostree-booted") {
        let track: Vec<String> = files
            .iter()
            .map(|f| format!("--track={}", f.path))
            .collect();
        let untrack: Vec<String> = files
            .iter()
            .map(|f| format!("--untrack={}", f.path))
            .collect();
        return (
            vec![
                format!("rpm-ostree kargs {}", joined("--append-if-missing")),
                format!("rpm-ostree initramfs-etc {}", track.join(" ")),
            ],
            vec![
                format!("rpm-ostree kargs {}", joined("--delete-if-present")),
                format!("rpm-ostree initramfs-etc {}", untrack.join(" ")),
            ],
        );
    }
    let initramfs = if root.exists("etc/debian_version") {
        "update-initramfs -u"
    } else {
        "dracut -f"
    };
    (
        vec![
            format!(
                "Add to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub, then \
                 update-grub or grub2-mkconfig): {}",
                args.join(" ")
            ),
            initramfs.to_string(),
        ],
        vec![
            format!("Remove from the kernel command line: {}", args.join(" ")),
            initramfs.to_string(),
        ],
    )
}

impl BootConfig {
    /// Writes the files under `root` (`/` on the host). A file of the same name that
    /// phyllome did not write is left alone and reported.
    pub fn install(&self, root: &Path) -> Result<Vec<PathBuf>, PersistError> {
        for f in &self.files {
            let at = under(root, &f.path);
            // A FIFO or a device in its place is refused, never waited on nor written.
            match crate::files::read_input(&at, crate::files::TEXT_CAP) {
                Ok(old) if old.starts_with(HEADER) => {}
                Ok(_) => {
                    return Err(PersistError::NotOurs {
                        path: f.path.clone(),
                    })
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(PersistError::File(e)),
            }
        }
        let mut written = Vec::new();
        for f in &self.files {
            let at = under(root, &f.path);
            let err = |source| PersistError::Write {
                path: f.path.clone(),
                source,
            };
            if let Some(dir) = at.parent() {
                fs::create_dir_all(dir).map_err(err)?;
            }
            fs::write(&at, &f.contents).map_err(err)?;
            written.push(at);
        }
        Ok(written)
    }

    /// Removes the files phyllome wrote (those still starting with its header).
    pub fn uninstall(&self, root: &Path) -> Result<Vec<PathBuf>, PersistError> {
        let mut removed = Vec::new();
        for f in &self.files {
            let at = under(root, &f.path);
            let ours = crate::files::read_input(&at, crate::files::TEXT_CAP)
                .is_ok_and(|t| t.starts_with(HEADER));
            if ours {
                fs::remove_file(&at).map_err(|source| PersistError::Write {
                    path: f.path.clone(),
                    source,
                })?;
                removed.push(at);
            }
        }
        Ok(removed)
    }

    /// Arguments missing from the running kernel's command line (empty after a reboot
    /// that took the configuration).
    pub fn missing_from_cmdline(&self, root: &SysRoot) -> Vec<String> {
        let cmdline = root.read("proc/cmdline").unwrap_or_default();
        let have: BTreeSet<&str> = cmdline.split_whitespace().collect();
        self.kernel_args
            .iter()
            .filter(|a| !have.contains(a.as_str()))
            .cloned()
            .collect()
    }
}

fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

impl fmt::Display for BootConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Claim IOMMU group {} for vfio-pci at boot", self.group)?;
        writeln!(f, "Kernel arguments: {}", self.kernel_args.join(" "))?;
        for file in &self.files {
            writeln!(f, "File {}:", file.path)?;
            for line in file.contents.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        writeln!(f, "Then:")?;
        for c in &self.commands {
            writeln!(f, "  {c}")?;
        }
        writeln!(f, "Undo: delete the files above, then:")?;
        for c in &self.undo_commands {
            writeln!(f, "  {c}")?;
        }
        for n in &self.notes {
            writeln!(f, "Note: {n}")?;
        }
        Ok(())
    }
}
