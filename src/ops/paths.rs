//! Where the host is: the one set of paths every layer passes around.

use std::path::PathBuf;

use crate::host::{CollectOptions, SysRoot};
use crate::vfio::PlanOptions;
use crate::vm::{Store, StoreError};
use crate::vmm::manager::ManagerConfig;
use crate::vmm::runtime::{RunRoot, RuntimeError};

/// The host a command or the console works on: `--host-root`, `--state-dir`, `--run-dir`,
/// `--ch-bin` and `--simulate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    /// `/` on a real host; a fixture tree or a copy of another host in tests and demos.
    pub host_root: PathBuf,
    /// Where VM definitions live (None: the default).
    pub state_dir: Option<PathBuf>,
    /// Runtime directories of running VMs (None: the default).
    pub run_dir: Option<PathBuf>,
    /// Cloud Hypervisor binary when not on the usual paths.
    pub ch_bin: Option<PathBuf>,
    /// Writes go through the simulated kernel of a fixture tree, never to a real host.
    pub simulate: bool,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths::new("/")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("Host root {0} is not a directory")]
    BadHostRoot(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    RunRoot(#[from] RuntimeError),
}

impl HostPaths {
    /// The host under `host_root`, every other path at its default.
    pub fn new(host_root: impl Into<PathBuf>) -> Self {
        HostPaths {
            host_root: host_root.into(),
            state_dir: None,
            run_dir: None,
            ch_bin: None,
            simulate: false,
        }
    }

    /// The host root to read, checked to be a directory.
    pub fn sys_root(&self) -> Result<SysRoot, PathsError> {
        if !self.host_root.is_dir() {
            return Err(PathsError::BadHostRoot(
                self.host_root.display().to_string(),
            ));
        }
        Ok(SysRoot::new(self.host_root.clone()))
    }

    pub fn collect_options(&self) -> CollectOptions {
        CollectOptions {
            ch_bin: self.ch_bin.clone(),
        }
    }

    /// The VM definitions.
    pub fn store(&self) -> Result<Store, PathsError> {
        Ok(Store::open(Store::default_dir(self.state_dir.as_deref())?)?)
    }

    /// The runtime directories of running VMs.
    pub fn run_root(&self) -> Result<RunRoot, PathsError> {
        Ok(RunRoot::resolve(self.run_dir.as_deref())?)
    }

    /// The VM manager's configuration for this host (default timeouts).
    pub fn manager_config(&self) -> Result<ManagerConfig, PathsError> {
        let mut cfg = ManagerConfig::new(
            self.state_dir.clone(),
            self.run_root()?,
            self.ch_bin.clone(),
        )
        .with_host_root(self.host_root.clone());
        cfg.simulate = self.simulate;
        Ok(cfg)
    }

    /// What VFIO plans read from phyllome's state directory (the reset marks).
    pub fn plan_options(&self) -> PlanOptions {
        crate::vmm::device_ops::plan_options(self.state_dir.as_deref())
    }
}
