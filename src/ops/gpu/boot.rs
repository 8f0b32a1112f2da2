//! The boot-time claim of a GPU's group for vfio-pci: kernel arguments, configuration files,
//! the commands that finish the job and their undo. Files are written under the host root:
//! on a fixture or a copy, never this machine's /etc.

use crate::host::SysRoot;
use crate::ops::HostPaths;
use crate::vfio::{self, BootConfig};

use super::{device_address, GpuError};

/// A GPU's boot configuration on a host.
#[derive(Debug, Clone)]
pub struct Boot {
    pub root: SysRoot,
    pub config: BootConfig,
}

/// The boot configuration that claims `address`'s group.
pub fn boot_config(paths: &HostPaths, address: &str) -> Result<Boot, GpuError> {
    let host = crate::ops::host::read(paths)?;
    let address = device_address(&host.inventory, address)?;
    let config = vfio::boot_config(&host.root, &host.inventory, address)?;
    Ok(Boot {
        root: host.root,
        config,
    })
}

impl Boot {
    /// Writes the files; returns them as paths on the host.
    pub fn install(&self) -> Result<Vec<String>, GpuError> {
        let written = self.config.install(self.root.root())?;
        Ok(self.shown(&written))
    }

    /// Removes the files phyllome wrote; returns them as paths on the host.
    pub fn uninstall(&self) -> Result<Vec<String>, GpuError> {
        let removed = self.config.uninstall(self.root.root())?;
        Ok(self.shown(&removed))
    }

    /// Kernel arguments the running kernel's command line lacks.
    pub fn missing(&self) -> Vec<String> {
        self.config.missing_from_cmdline(&self.root)
    }

    /// `missing` as an error when there is any.
    pub fn check(missing: &[String]) -> Result<(), GpuError> {
        if missing.is_empty() {
            return Ok(());
        }
        Err(GpuError::BootMissing(missing.to_vec()))
    }

    /// Shown as paths on the host, not under the fixture or copy they were written to.
    fn shown(&self, paths: &[std::path::PathBuf]) -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                let rel = p.strip_prefix(self.root.root()).unwrap_or(p);
                format!("/{}", rel.display()).replace("//", "/")
            })
            .collect()
    }
}
