//! The one seam between running VMs and their definitions (module `vm`): listing, loading,
//! deleting, a summary for the VM list, and the VmConfig a VMM is created with.

use std::path::Path;

pub use crate::vm::VmSpec as Spec;
use crate::vm::{Store, StoreError};

use super::runtime::VmRuntime;
use crate::error::Chain;

#[derive(Debug, thiserror::Error)]
pub enum DefsError {
    #[error("No VM named {0:?}; see `phyllome vm list`")]
    NotDefined(String),
    #[error("{0}")]
    Store(#[source] StoreError),
}

impl From<StoreError> for DefsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(name) => DefsError::NotDefined(name),
            e => DefsError::Store(e),
        }
    }
}

pub struct Defs {
    store: Store,
}

impl Defs {
    pub fn open(state_dir: Option<&Path>) -> Result<Self, DefsError> {
        let dir = Store::default_dir(state_dir)?;
        Ok(Self {
            store: Store::open(dir)?,
        })
    }

    /// Every definition, an invalid one with its error as text.
    pub fn list(&self) -> Vec<(String, Result<Spec, String>)> {
        match self.store.list() {
            Ok(entries) => entries
                .into_iter()
                .map(|e| (e.name, e.spec.map_err(|err| Chain(&err).to_string())))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "cannot list VM definitions");
                Vec::new()
            }
        }
    }

    pub fn get(&self, name: &str) -> Result<Spec, DefsError> {
        Ok(self.store.get(name)?)
    }

    /// Succeeds when a file exists for `name`, valid or not (deleting a broken one is fine).
    pub fn get_any(&self, name: &str) -> Result<(), DefsError> {
        if self.store.exists(name) {
            Ok(())
        } else {
            Err(DefsError::NotDefined(name.to_string()))
        }
    }

    pub fn delete(&self, name: &str) -> Result<(), DefsError> {
        Ok(self.store.delete(name)?)
    }
}

/// What the VM list shows of a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub vcpus: u32,
    pub memory_bytes: u64,
    pub devices: Vec<String>,
    pub autostart: bool,
    pub stop_timeout: crate::vm::StopTimeout,
}

pub fn summary(spec: &Spec) -> Summary {
    let mut devices: Vec<String> = spec
        .disks
        .iter()
        .map(|d| format!("disk:{}", d.path.display()))
        .collect();
    devices.extend(
        spec.net
            .iter()
            .map(|n| format!("net:{}", n.kind.interface())),
    );
    devices.extend(spec.vfio.iter().map(|v| format!("vfio:{}", v.address)));
    Summary {
        vcpus: spec.cpus.boot,
        memory_bytes: spec.memory.size.bytes(),
        devices,
        autostart: spec.autostart,
        stop_timeout: spec.stop_timeout,
    }
}

/// The VmConfig for `vm.create`, with the guest's serial line on the runtime directory's
/// socket (so whoever supervises the VM owns it).
pub fn vm_config(spec: &Spec, rt: &VmRuntime) -> Result<serde_json::Value, DefsError> {
    Ok(crate::vm::to_vm_config(spec, &rt.config_paths()))
}
