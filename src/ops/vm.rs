//! What the VM commands and the console's VM screens share: the manager of a host, a VM's
//! run state, its grace period.

use std::time::Duration;

use crate::vmm::manager::{ManagerError, RunState, VmManager};

use super::{HostPaths, PathsError};

/// Seconds one API call may take (default 5); for slow hosts and for tests.
pub const API_TIMEOUT_ENV: &str = "PHYLLOME_VMM_TIMEOUT";

#[derive(Debug, thiserror::Error)]
pub enum VmOpsError {
    #[error("{0}")]
    Paths(#[from] PathsError),
    #[error("Cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    #[error("{0}")]
    Manager(#[from] ManagerError),
}

/// The manager of the VMs of `paths`, its API timeout from [`API_TIMEOUT_ENV`] when set.
pub fn manager(paths: &HostPaths) -> Result<VmManager, PathsError> {
    let mut cfg = paths.manager_config()?;
    if let Some(secs) = std::env::var(API_TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0)
    {
        cfg.api_timeout = Duration::from_secs_f64(secs);
    }
    Ok(VmManager::new(cfg))
}

/// Whether the VM's VMM runs, asked of the VMM itself; a VM it cannot tell about is stopped.
pub fn run_state(paths: &HostPaths, vm: &str) -> Result<RunState, VmOpsError> {
    let m = manager(paths)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(VmOpsError::Runtime)?;
    Ok(rt
        .block_on(m.info(vm))
        .map(|s| s.state)
        .unwrap_or(RunState::Stopped))
}

/// `Some(true)` when devices must move now (running or paused), `Some(false)` when the VM
/// is down, `None` while it is between the two.
pub fn is_live(state: RunState) -> Option<bool> {
    match state {
        RunState::Running | RunState::Paused => Some(true),
        RunState::Stopped | RunState::Shutdown => Some(false),
        _ => None,
    }
}

/// The VM's own `stop_timeout`; the default when its definition is gone or broken (a VMM
/// can outlive its definition, and stopping it must still work).
pub fn grace_period(paths: &HostPaths, name: &str) -> Duration {
    crate::vmm::defs::Defs::open(paths.state_dir.as_deref())
        .and_then(|d| d.get(name))
        .map(|spec| spec.stop_timeout)
        .unwrap_or_default()
        .duration()
}

/// The VM's definition as the VMM side reads it, when it has a valid one.
pub fn definition(paths: &HostPaths, name: &str) -> Option<crate::vmm::defs::Spec> {
    crate::vmm::defs::Defs::open(paths.state_dir.as_deref())
        .ok()
        .and_then(|d| d.get(name).ok())
}
