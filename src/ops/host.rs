//! Reading the host: the root every path is under and what it holds.

use crate::host::{Inventory, SysRoot};

use super::{HostPaths, PathsError};

/// The host root and its inventory, read now.
#[derive(Debug, Clone)]
pub struct Host {
    pub root: SysRoot,
    pub inventory: Inventory,
}

/// Reads the host under `paths` (blocking: sysfs, procfs and the CH binary's version).
pub fn read(paths: &HostPaths) -> Result<Host, PathsError> {
    let root = paths.sys_root()?;
    let inventory = Inventory::collect_with(&root, &paths.collect_options());
    Ok(Host { root, inventory })
}

/// The host's name as its kernel has it, when it has one.
pub fn host_name(root: &SysRoot) -> Option<String> {
    root.read("proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
