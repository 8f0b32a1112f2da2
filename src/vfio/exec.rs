//! Runs single actions and undos against a [`SysWriter`], reading back through a
//! [`SysRoot`].

use std::io;
use std::time::{Duration, Instant};

use crate::host::{PciAddress, SysRoot};

use super::state::{driver_of, override_of, pci_dir};
use super::step::{Action, Undo};
use super::SysWriter;

/// How long `/dev/vfio/<group>` may take to appear after binding (devtmpfs and udev
/// create it asynchronously).
const VFIO_NODE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("Writing {value:?} to {path} failed")]
    Write {
        path: String,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("{device} is on {found} instead of {expected}")]
    WrongDriver {
        device: PciAddress,
        expected: String,
        found: String,
    },
    #[error("/dev/vfio/{group} did not appear")]
    NoVfioNode { group: u32 },
}

fn name(d: &Option<String>) -> String {
    d.clone().unwrap_or_else(|| "no driver".into())
}

fn write(w: &dyn SysWriter, path: String, value: &str) -> Result<(), StepError> {
    w.write(&path, value).map_err(|source| StepError::Write {
        path,
        value: value.to_string(),
        source,
    })
}

pub fn run(action: &Action, w: &dyn SysWriter, root: &SysRoot) -> Result<(), StepError> {
    match action {
        Action::BindConsole { vtconsole, bind } => write(
            w,
            format!("sys/class/vtconsole/{vtconsole}/bind"),
            if *bind { "1" } else { "0" },
        ),
        Action::UnbindFramebuffer { device, driver } => write(
            w,
            format!("sys/bus/platform/drivers/{driver}/unbind"),
            device,
        ),
        Action::BindFramebuffer { device, driver } => {
            write(w, format!("sys/bus/platform/drivers/{driver}/bind"), device)
        }
        Action::SetOverride { device, driver } => write(
            w,
            format!("{}/driver_override", pci_dir(device)),
            // A lone newline clears it; an empty write never reaches the kernel.
            driver.as_deref().unwrap_or("\n"),
        ),
        Action::Unbind { device, driver } => write(
            w,
            format!("sys/bus/pci/drivers/{driver}/unbind"),
            &device.to_string(),
        ),
        Action::Probe { device } => {
            write(w, "sys/bus/pci/drivers_probe".into(), &device.to_string())
        }
        Action::Verify {
            device,
            driver,
            not,
            vfio_group,
        } => verify(root, *device, driver, not, *vfio_group),
    }
}

fn verify(
    root: &SysRoot,
    device: PciAddress,
    driver: &Option<String>,
    not: &Option<String>,
    vfio_group: Option<u32>,
) -> Result<(), StepError> {
    let found = driver_of(root, &device);
    let ok = match not {
        Some(n) => found.as_deref() != Some(n.as_str()),
        None => &found == driver,
    };
    if !ok {
        return Err(StepError::WrongDriver {
            device,
            expected: match not {
                Some(n) => format!("anything but {n}"),
                None => name(driver),
            },
            found: name(&found),
        });
    }
    if let Some(group) = vfio_group {
        let start = Instant::now();
        while !root.exists(format!("dev/vfio/{group}")) {
            if start.elapsed() > VFIO_NODE_WAIT {
                return Err(StepError::NoVfioNode { group });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Takes a step back. Reads first and writes only what differs, so it is safe after a
/// step that failed half way.
pub fn undo(undo: &Undo, w: &dyn SysWriter, root: &SysRoot) -> Result<(), StepError> {
    match undo {
        Undo::Nothing => Ok(()),
        Undo::Run(action) if already(action, root) => Ok(()),
        Undo::Run(action) => run(action, w, root),
        Undo::UnbindAny { device } => match driver_of(root, device) {
            Some(driver) => run(
                &Action::Unbind {
                    device: *device,
                    driver,
                },
                w,
                root,
            ),
            None => Ok(()),
        },
        Undo::RestoreDriver {
            device,
            driver,
            driver_override,
        } => restore_driver(*device, driver, driver_override, w, root),
    }
}

/// Whether an undo action's effect is already in place (a failed step may never have
/// happened, and an undo before it may have restored the same thing).
fn already(action: &Action, root: &SysRoot) -> bool {
    match action {
        Action::SetOverride { device, driver } => &override_of(root, device) == driver,
        Action::BindConsole { vtconsole, bind } => root
            .read(format!("sys/class/vtconsole/{vtconsole}/bind"))
            .is_ok_and(|b| (b.trim() == "1") == *bind),
        Action::BindFramebuffer { device, driver } => {
            platform_driver(root, device).as_ref() == Some(driver)
        }
        Action::UnbindFramebuffer { device, .. } => platform_driver(root, device).is_none(),
        _ => false,
    }
}

fn platform_driver(root: &SysRoot, device: &str) -> Option<String> {
    let dir = root
        .resolve(format!("sys/bus/platform/devices/{device}"))
        .ok()?;
    root.link_name_in(&dir, "driver").ok().flatten()
}

fn restore_driver(
    device: PciAddress,
    driver: &Option<String>,
    driver_override: &Option<String>,
    w: &dyn SysWriter,
    root: &SysRoot,
) -> Result<(), StepError> {
    // The override first: while it names another driver the kernel refuses the bind.
    if &override_of(root, &device) != driver_override {
        run(
            &Action::SetOverride {
                device,
                driver: driver_override.clone(),
            },
            w,
            root,
        )?;
    }
    let current = driver_of(root, &device);
    if current.is_some() && &current != driver {
        undo(&Undo::UnbindAny { device }, w, root)?;
    }
    let Some(want) = driver else { return Ok(()) };
    if driver_of(root, &device).as_deref() == Some(want.as_str()) {
        return Ok(());
    }
    let bind = write(
        w,
        format!("sys/bus/pci/drivers/{want}/bind"),
        &device.to_string(),
    );
    if bind.is_err() {
        // Some drivers refuse a manual bind; probing finds the same driver through the
        // restored override or the device's IDs.
        run(&Action::Probe { device }, w, root)?;
    }
    verify(root, device, driver, &None, None)
}
