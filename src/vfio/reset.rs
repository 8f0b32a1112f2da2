//! Cards without a working reset keep a guest's state after it stops: reusing one without
//! a host reboot can hang the next guest or the host. A small state file remembers them
//! until the boot ID changes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::host::{PciAddress, PciDevice, SysRoot};

use super::state::VFIO_PCI;

const FILE: &str = "reset-marks.json";
const BOOT_ID: &str = "proc/sys/kernel/random/boot_id";

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("{0}")]
    File(#[source] crate::files::FileError),
    #[error("{path} is not a reset record")]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("Cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// One card that ran a guest and could not be reset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetMark {
    /// The address as text, so a record survives a card that moved.
    pub address: String,
    pub vm: String,
    /// The reset methods the kernel offered, empty for none.
    pub reset_methods: Vec<String>,
}

impl ResetMark {
    pub fn warning(&self) -> String {
        format!(
            "{} ran VM {} and has no working reset ({}): reboot the host before giving it to a guest again",
            self.address,
            self.vm,
            if self.reset_methods.is_empty() {
                "the kernel knows no reset method".to_string()
            } else {
                format!("only {}", self.reset_methods.join(", "))
            }
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    boot_id: String,
    marks: Vec<ResetMark>,
}

/// The "needs host reboot" marks of this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetMarks {
    file: PathBuf,
    record: Record,
}

/// Whether the kernel can reset the card between guests. `reset_method` lists what the
/// kernel can do; since 5.15 the file is missing when it can do nothing.
pub fn has_working_reset(device: &PciDevice) -> bool {
    device.reset_methods.as_ref().is_some_and(|m| !m.is_empty())
}

impl ResetMarks {
    /// Loads the marks in `state_dir`; marks from an earlier boot are dropped.
    pub fn load(state_dir: &Path, root: &SysRoot) -> Result<ResetMarks, ResetError> {
        let file = state_dir.join(FILE);
        let boot_id = root.read(BOOT_ID).unwrap_or_default();
        // The state dir is ours: no link followed, no FIFO waited on, a bounded read.
        let record = match crate::files::read_beneath(state_dir, FILE, crate::files::RECORD_CAP) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| ResetError::Parse {
                path: file.display().to_string(),
                source,
            })?,
            Err(e) if e.is_not_found() => Record::default(),
            Err(e) => return Err(ResetError::File(e)),
        };
        // No boot ID to compare (a tree without /proc): keep the marks, be safe.
        let record = if record.boot_id == boot_id || boot_id.is_empty() {
            record
        } else {
            Record {
                boot_id,
                marks: Vec::new(),
            }
        };
        Ok(ResetMarks { file, record })
    }

    /// Notes that `vm` ran on `device`; marks it when it cannot be reset. Returns whether
    /// it was marked. Saved at once.
    pub fn guest_ran(&mut self, device: &PciDevice, vm: &str) -> Result<bool, ResetError> {
        if has_working_reset(device) {
            return Ok(false);
        }
        let address = device.address.to_string();
        self.record.marks.retain(|m| m.address != address);
        self.record.marks.push(ResetMark {
            address,
            vm: vm.to_string(),
            reset_methods: device.reset_methods.clone().unwrap_or_default(),
        });
        self.save()?;
        Ok(true)
    }

    pub fn needs_reboot(&self, address: &PciAddress) -> Option<&ResetMark> {
        let a = address.to_string();
        self.record.marks.iter().find(|m| m.address == a)
    }

    pub fn marks(&self) -> &[ResetMark] {
        &self.record.marks
    }

    fn save(&self) -> Result<(), ResetError> {
        let err = |source| ResetError::Write {
            path: self.file.display().to_string(),
            source,
        };
        if let Some(dir) = self.file.parent() {
            fs::create_dir_all(dir).map_err(err)?;
        }
        let text = serde_json::to_string_pretty(&self.record).map_err(io::Error::other);
        // Write then rename: a crash leaves the old record, never half of one.
        let tmp = self.file.with_extension("json.tmp");
        fs::write(&tmp, text.map_err(err)?).map_err(err)?;
        fs::rename(&tmp, &self.file).map_err(err)
    }
}

/// A device's state, shown wherever it appears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum DeviceUse {
    /// On a host driver (its name), or on none.
    Host(Option<String>),
    /// On vfio-pci, free for a guest.
    VfioPci,
    /// Passed to this VM (filled in by the caller from the VM definitions).
    InUseBy(String),
    /// Ran a guest without a working reset: reboot before reuse.
    NeedsReboot,
}

impl DeviceUse {
    /// The state of `device`; `vm` is the VM that has it, when the caller knows one.
    pub fn of(device: &PciDevice, marks: Option<&ResetMarks>, vm: Option<&str>) -> DeviceUse {
        if let Some(vm) = vm {
            return DeviceUse::InUseBy(vm.to_string());
        }
        if marks.is_some_and(|m| m.needs_reboot(&device.address).is_some()) {
            return DeviceUse::NeedsReboot;
        }
        match device.driver.as_deref() {
            Some(VFIO_PCI) => DeviceUse::VfioPci,
            other => DeviceUse::Host(other.map(str::to_string)),
        }
    }
}

impl std::fmt::Display for DeviceUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceUse::Host(Some(d)) => write!(f, "host driver {d}"),
            DeviceUse::Host(None) => f.write_str("no driver"),
            DeviceUse::VfioPci => f.write_str("vfio-pci"),
            DeviceUse::InUseBy(vm) => write!(f, "in use by VM {vm}"),
            DeviceUse::NeedsReboot => f.write_str("needs host reboot"),
        }
    }
}
