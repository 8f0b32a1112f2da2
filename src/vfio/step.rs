//! One step of a plan: what it writes, how to say it to a person, and how to take it back.

use std::fmt;

use serde::Serialize;

use crate::host::PciAddress;

/// A change to the host, or a check of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Action {
    /// Write 0/1 to `sys/class/vtconsole/<vtconsole>/bind` (fbcon off/on).
    BindConsole { vtconsole: String, bind: bool },
    /// Write the device to `sys/bus/platform/drivers/<driver>/unbind`.
    UnbindFramebuffer { device: String, driver: String },
    /// Write the device to `sys/bus/platform/drivers/<driver>/bind`.
    BindFramebuffer { device: String, driver: String },
    /// Write `driver_override`; `None` clears it.
    SetOverride {
        device: PciAddress,
        driver: Option<String>,
    },
    /// Write the address to `sys/bus/pci/drivers/<driver>/unbind`.
    Unbind { device: PciAddress, driver: String },
    /// Write the address to `sys/bus/pci/drivers_probe`.
    Probe { device: PciAddress },
    /// Read back: the device is on `driver` (or, with `not`, on anything else or nothing),
    /// and `/dev/vfio/<group>` exists when `vfio_group` is set.
    Verify {
        device: PciAddress,
        driver: Option<String>,
        not: Option<String>,
        vfio_group: Option<u32>,
    },
}

/// How a step is taken back. Undos read the current state first, so running one twice,
/// or after a step that half happened, is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    /// Nothing to take back (checks).
    Nothing,
    /// Run this action.
    Run(Action),
    /// Put the override back, leave whatever driver the device is on now, and bind it to
    /// `driver` again (nothing when `None`).
    RestoreDriver {
        device: PciAddress,
        driver: Option<String>,
        driver_override: Option<String>,
    },
    /// Unbind the device from whatever driver probing gave it.
    UnbindAny { device: PciAddress },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What the step does, for people: "Unbind 0000:0b:00.0 from amdgpu".
    pub description: String,
    pub action: Action,
    pub undo: Undo,
    /// How it is taken back, for people; `None` for checks.
    pub undo_description: Option<String>,
}

impl Action {
    pub fn describe(&self) -> String {
        let none = |d: &Option<String>| d.clone().unwrap_or_else(|| "no driver".into());
        match self {
            Action::BindConsole {
                vtconsole,
                bind: false,
            } => {
                format!("Stop the framebuffer console (fbcon, {vtconsole})")
            }
            Action::BindConsole {
                vtconsole,
                bind: true,
            } => {
                format!("Bring back the framebuffer console (fbcon, {vtconsole})")
            }
            Action::UnbindFramebuffer { device, driver } => {
                format!("Unbind the firmware framebuffer {device} from {driver}")
            }
            Action::BindFramebuffer { device, driver } => {
                format!("Bind the firmware framebuffer {device} to {driver}")
            }
            Action::SetOverride {
                device,
                driver: Some(d),
            } => {
                format!("Set driver_override of {device} to {d}")
            }
            Action::SetOverride {
                device,
                driver: None,
            } => {
                format!("Clear driver_override of {device}")
            }
            Action::Unbind { device, driver } => format!("Unbind {device} from {driver}"),
            Action::Probe { device } => format!("Probe drivers for {device}"),
            Action::Verify {
                device,
                driver,
                not,
                vfio_group,
            } => {
                let on = match not {
                    Some(n) => format!("is off {n}"),
                    None => format!("is on {}", none(driver)),
                };
                match vfio_group {
                    Some(g) => format!("Check that {device} {on} and /dev/vfio/{g} exists"),
                    None => format!("Check that {device} {on}"),
                }
            }
        }
    }
}

impl Undo {
    pub fn describe(&self) -> Option<String> {
        match self {
            Undo::Nothing => None,
            Undo::Run(a) => Some(a.describe()),
            Undo::RestoreDriver {
                device,
                driver: Some(d),
                ..
            } => Some(format!("Bind {device} to {d} again")),
            Undo::RestoreDriver { device, .. } => Some(format!("Leave {device} without a driver")),
            Undo::UnbindAny { device } => {
                Some(format!("Unbind {device} from what probing gave it"))
            }
        }
    }
}

impl Step {
    pub fn new(action: Action, undo: Undo) -> Step {
        Step {
            description: action.describe(),
            undo_description: undo.describe(),
            action,
            undo,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}
