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
    let mut inventory = Inventory::collect_with(&root, &paths.collect_options());
    // VMs whose GPU sits on another NUMA node than their vCPUs or memory; definitions that
    // cannot be read have their own report (`vm list`).
    // Reading the host creates nothing: no definitions directory, no checks.
    let dir = crate::vm::Store::default_dir(paths.state_dir.as_deref());
    let list = match dir {
        Ok(d) if d.is_dir() => paths.store().and_then(|s| Ok(s.list()?)),
        _ => Ok(Vec::new()),
    };
    if let Ok(list) = list {
        let specs: Vec<_> = list.into_iter().filter_map(|e| e.spec.ok()).collect();
        inventory
            .checks
            .extend(crate::vm::locality::checks(&specs, &root));
    }
    Ok(Host { root, inventory })
}

/// The host's name as its kernel has it, when it has one.
pub fn host_name(root: &SysRoot) -> Option<String> {
    root.read("proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
