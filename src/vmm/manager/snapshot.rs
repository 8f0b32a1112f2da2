//! Known-good states of a VM. A running one: `vm.snapshot` of the paused VM into
//! `STATE/snapshots/NAME/ID/`, restored later into a fresh VMM (`vm.restore` wants a VMM with
//! no VM). A stopped one: qcow2 internal snapshots of its disks ([`super::disk_snapshot`]).
//! A snapshot is written under `ID.partial` and renamed only once it is whole, so a failure
//! never leaves half a snapshot that looks whole.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Launch, Result, RunState, VmManager};
use crate::vmm::error::VmmError;
use crate::vmm::runtime::now_secs;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "Cannot snapshot VM {vm}: it is {state}; snapshots are taken of a running or paused VM"
    )]
    NotRunning { vm: String, state: RunState },
    #[error(
        "Cloud Hypervisor could not snapshot VM {vm}; the VM was {after} and nothing was kept"
    )]
    Failed {
        vm: String,
        /// What became of the VM: `resumed`, `left paused as it was`.
        after: String,
        #[source]
        source: Box<VmmError>,
    },
    #[error("Cloud Hypervisor could not snapshot VM {vm}, and resuming it failed too ({resume}); nothing was kept")]
    FailedPaused {
        vm: String,
        resume: String,
        #[source]
        source: Box<VmmError>,
    },
    #[error("VM {vm} is stopped and its disk {path} is not qcow2: a stopped VM's snapshot is a qcow2 internal snapshot of each disk")]
    RawDisk { vm: String, path: String },
    #[error("VM {vm} is stopped and has no writable disk to snapshot")]
    NoDisks { vm: String },
    #[error("qemu-img could not {what} the snapshot in {path}: {message}")]
    QemuImg {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("VM {vm} has no snapshot {id}; see `phyllome vm snapshot {vm} list`")]
    NoSnapshot { vm: String, id: String },
    #[error("VM {vm} passes PCI devices through; its state cannot be snapshotted or restored")]
    Vfio { vm: String },
    #[error("Cannot use the snapshot directory {path}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// One snapshot, as `vm snapshot NAME list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub id: String,
    pub vm: String,
    /// Seconds since the epoch.
    pub created_at: u64,
    /// The VM's state when it was taken (`Running` or `Paused`).
    pub state: String,
    /// Bytes on disk (guest memory, device state, config).
    #[serde(default)]
    pub size_bytes: u64,
    #[serde(default)]
    pub path: PathBuf,
    /// `memory` (the running VM's state, `vm.snapshot`) or `disks` (qcow2 internal
    /// snapshots of a stopped VM's disks).
    #[serde(default = "memory")]
    pub kind: String,
    /// The images of a `disks` snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<PathBuf>,
}

fn memory() -> String {
    "memory".into()
}

pub(super) const META: &str = "phyllome-snapshot.json";

impl VmManager {
    /// `STATE/snapshots/NAME`.
    fn snapshot_dir(&self, name: &str) -> Result<PathBuf> {
        crate::vmm::runtime::check_name(name)?;
        let vms = crate::vm::Store::default_dir(self.cfg.state_dir.as_deref())
            .map_err(crate::vmm::defs::DefsError::from)?;
        Ok(vms.with_file_name("snapshots").join(name))
    }

    /// A running VM: pauses it (unless it is paused), `vm.snapshot` into a new directory,
    /// resumes it. A stopped VM: a qcow2 internal snapshot of each writable disk.
    pub async fn snapshot_create(&self, name: &str) -> Result<SnapshotInfo> {
        let spec = self.defs()?.get(name)?;
        let rt = self.cfg.run_root.vm(name)?;
        let _lock = self.cfg.run_root.lock(name, self.cfg.api_timeout).await?;
        let mut probe = self.probe(&rt, true).await;
        if let Some(e) = probe.failure.take() {
            return Err(e);
        }
        let was = probe.state;
        let stopped = was == RunState::Stopped;
        if !stopped && !matches!(was, RunState::Running | RunState::Paused) {
            return Err(SnapshotError::NotRunning {
                vm: name.into(),
                state: was,
            }
            .into());
        }
        if !stopped && !spec.vfio.is_empty() {
            return Err(SnapshotError::Vfio { vm: name.into() }.into());
        }
        let dir = self.snapshot_dir(name)?;
        let err = |source| SnapshotError::Dir {
            path: dir.display().to_string(),
            source,
        };
        make_private(&dir).map_err(err)?;
        let id = next_id(&dir);
        let partial = dir.join(format!("{id}.partial"));
        let _ = std::fs::remove_dir_all(&partial);
        make_private(&partial).map_err(|source| SnapshotError::Dir {
            path: partial.display().to_string(),
            source,
        })?;
        if stopped {
            let taken = super::disk_snapshot::create(&spec, &id, &partial, &dir.join(&id));
            if taken.is_err() {
                let _ = std::fs::remove_dir_all(&partial);
            }
            return Ok(taken?);
        }
        let client = self.client(&rt);
        // Writing guest memory takes a while: as long as a boot may.
        let slow = client.with_timeout(self.cfg.boot_timeout);
        let verr = Self::vmm_err(name);
        if was == RunState::Running {
            if let Err(e) = client.pause().await {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(verr(e));
            }
        }
        let taken = slow
            .snapshot(&format!("file://{}", partial.display()))
            .await;
        let resumed = if was == RunState::Running {
            client.resume().await
        } else {
            Ok(())
        };
        if let Err(source) = taken {
            let source = Box::new(source);
            let _ = std::fs::remove_dir_all(&partial);
            return Err(match resumed {
                Ok(()) => SnapshotError::Failed {
                    vm: name.into(),
                    after: if was == RunState::Running {
                        "resumed".into()
                    } else {
                        "left paused, as it was".into()
                    },
                    source,
                },
                Err(r) => SnapshotError::FailedPaused {
                    vm: name.into(),
                    resume: crate::error::Chain(&r).to_string(),
                    source,
                },
            }
            .into());
        }
        let final_dir = dir.join(&id);
        let mut info = SnapshotInfo {
            id: id.clone(),
            vm: name.into(),
            created_at: now_secs(),
            state: was.as_str().into(),
            size_bytes: 0,
            path: final_dir.clone(),
            kind: memory(),
            disks: Vec::new(),
        };
        let text = serde_json::to_vec_pretty(&info).unwrap_or_default();
        let kept = std::fs::write(partial.join(META), text)
            .and_then(|()| std::fs::rename(&partial, &final_dir));
        if let Err(source) = kept {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(SnapshotError::Dir {
                path: final_dir.display().to_string(),
                source,
            }
            .into());
        }
        info.size_bytes = du(&final_dir);
        // Resumed after the snapshot: a failed resume is the caller's to hear of.
        resumed.map_err(verr)?;
        Ok(info)
    }

    /// The VM's snapshots, oldest first. Half-written ones (`ID.partial`) are not listed.
    pub fn snapshot_list(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        let dir = self.snapshot_dir(name)?;
        if !dir.exists() {
            self.defs()?.get_any(name)?;
        }
        let mut out: Vec<SnapshotInfo> = std::fs::read_dir(&dir)
            .map(|it| {
                it.filter_map(|e| {
                    let e = e.ok()?;
                    let id = e.file_name().into_string().ok()?;
                    read_meta(&e.path(), &id)
                })
                .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|s| (s.id.parse::<u64>().unwrap_or(u64::MAX), s.id.clone()));
        Ok(out)
    }

    pub async fn snapshot_delete(&self, name: &str, id: &str) -> Result<()> {
        let path = self.snapshot_path(name, id)?;
        if let Some(info) = read_meta(&path, id).filter(|i| i.kind == "disks") {
            // Never under a running VMM: the images are open there.
            let _lock = self.stopped_and_locked(name).await?;
            super::disk_snapshot::delete(&info)?;
        }
        std::fs::remove_dir_all(&path).map_err(|source| SnapshotError::Dir {
            path: path.display().to_string(),
            source,
        })?;
        Ok(())
    }

    /// Starts the stopped VM from a snapshot: a fresh VMM, `vm.restore`, then `vm.resume`.
    /// A `disks` snapshot reverts the disks instead and leaves the VM stopped.
    pub async fn snapshot_restore(&self, name: &str, id: &str) -> Result<super::VmStatus> {
        let path = self.snapshot_path(name, id)?;
        if let Some(info) = read_meta(&path, id).filter(|i| i.kind == "disks") {
            let lock = self.stopped_and_locked(name).await?;
            super::disk_snapshot::apply(&info)?;
            drop(lock);
            return self.info(name).await;
        }
        self.start_as(name, Launch::Restore(path)).await
    }

    /// The VM's lock, once its VMM is known to be gone.
    async fn stopped_and_locked(&self, name: &str) -> Result<crate::vmm::runtime::StartLock> {
        let rt = self.cfg.run_root.vm(name)?;
        let lock = self.cfg.run_root.lock(name, self.cfg.api_timeout).await?;
        if self.probe(&rt, true).await.state.has_vmm() {
            return Err(super::ManagerError::StillRunning(name.into()));
        }
        Ok(lock)
    }

    fn snapshot_path(&self, name: &str, id: &str) -> Result<PathBuf> {
        let dir = self.snapshot_dir(name)?;
        let valid = !id.is_empty() && id.chars().all(|c| c.is_ascii_digit());
        let path = dir.join(id);
        if !valid || read_meta(&path, id).is_none() {
            if !dir.exists() {
                self.defs()?.get_any(name)?;
            }
            return Err(SnapshotError::NoSnapshot {
                vm: name.into(),
                id: id.into(),
            }
            .into());
        }
        Ok(path)
    }
}

/// A whole snapshot's record; `None` for anything else in the directory.
fn read_meta(dir: &Path, id: &str) -> Option<SnapshotInfo> {
    let text = crate::files::read_beneath(dir, META, crate::files::RECORD_CAP).ok()?;
    let mut info: SnapshotInfo = serde_json::from_str(&text).ok()?;
    (info.id == id).then_some(())?;
    info.size_bytes = du(dir);
    info.path = dir.to_path_buf();
    Some(info)
}

/// One more than the highest ID in use.
fn next_id(dir: &Path) -> String {
    let highest = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.trim_end_matches(".partial").parse::<u64>().ok()
            })
            .max()
            .unwrap_or(0)
        })
        .unwrap_or(0);
    (highest + 1).to_string()
}

fn du(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// 0700: a snapshot holds the guest's memory.
fn make_private(dir: &Path) -> std::io::Result<()> {
    crate::files::private_dir(dir).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_count_up_past_partial_ones() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(next_id(tmp.path()), "1");
        std::fs::create_dir(tmp.path().join("1")).unwrap();
        std::fs::create_dir(tmp.path().join("4.partial")).unwrap();
        assert_eq!(next_id(tmp.path()), "5");
        assert!(read_meta(&tmp.path().join("1"), "1").is_none());
    }
}
