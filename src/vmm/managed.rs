//! Managed VFIO: a VM's passthrough devices (their whole IOMMU groups) are bound to vfio-pci
//! before its VMM starts and given back to their host drivers once the VMM is gone.
//!
//! "Once the VMM is gone" includes a VMM that dies or is killed while no console runs. So the
//! VMM of a VM with devices is not launched bare: `phyllome vm supervise NAME` is launched in
//! its place (detached, or as the main process of the systemd unit), runs the VMM as its child,
//! waits for it and releases the devices when it exits (see [`super::device_supervisor`]). The
//! console's own stop path then only waits for that release; it releases itself when no
//! supervisor is left (killed, or a VMM launched by an older phyllome).
//!
//! What is held, by whom, and what failed is kept in `<run root>/managed/NAME.json` (a tmpfs:
//! after a reboot every device is back on its host driver anyway), with a log beside it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::device_ops::{self, CameFrom};
use super::runtime::{now_secs, RunRoot};
use crate::host::{PciAddress, SysRoot};
use crate::vm::VmSpec;

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error("Cannot bind the VFIO devices of VM {vm} to vfio-pci: {message}")]
    Detach { vm: String, message: String },
    #[error("VFIO devices of VM {vm} were not given back to their host drivers: {message} (see `phyllome gpu list`; `phyllome gpu reattach ADDRESS` retries)")]
    Release { vm: String, message: String },
    #[error("Cannot write the device record {path}")]
    Record {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where a VM's devices stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holding {
    /// Bound to vfio-pci for the VM; its VMM runs or is starting.
    Held,
    /// The VMM is gone but giving the devices back failed: they may sit on vfio-pci or on no
    /// driver at all until someone reattaches them.
    ReleaseFailed,
}

/// What managed mode knows of one VM's devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub vm: String,
    /// Every endpoint moved for the VM (whole groups), not only the ones it lists.
    #[serde(with = "address_text")]
    pub devices: Vec<PciAddress>,
    /// Where each of them was before, to put it back exactly there.
    #[serde(default)]
    pub came_from: Vec<CameFrom>,
    pub state: Holding,
    /// Seconds since the epoch of the last change.
    pub since: u64,
    /// The `phyllome vm supervise` process waiting on the VMM, once it runs.
    pub supervisor_pid: Option<u32>,
    /// Why the release failed, step by step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// Addresses as the kernel writes them (`0000:01:00.0`) in records.
pub(crate) mod address_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::host::PciAddress;

    pub fn serialize<S: Serializer>(v: &[PciAddress], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PciAddress>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| t.parse().map_err(serde::de::Error::custom))
            .collect()
    }

    /// One address, for `#[serde(with)]` on a single field.
    pub mod one {
        use super::*;

        pub fn serialize<S: Serializer>(v: &PciAddress, s: S) -> Result<S::Ok, S::Error> {
            v.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PciAddress, D::Error> {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        }
    }
}

/// The records directory of a run root.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn new(run_root: &RunRoot) -> Self {
        Self {
            dir: run_root.path().join("managed"),
        }
    }

    fn path(&self, vm: &str) -> PathBuf {
        self.dir.join(format!("{vm}.json"))
    }

    pub fn log_path(&self, vm: &str) -> PathBuf {
        self.dir.join(format!("{vm}.log"))
    }

    /// The log of `vm` under a run root given as a path.
    pub fn log_path_in(run_root: &Path, vm: &str) -> PathBuf {
        Records::new(&RunRoot::new(run_root)).log_path(vm)
    }

    pub fn read(&self, vm: &str) -> Option<DeviceRecord> {
        let text = fs::read(self.path(vm)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Every record, for `gpu list` and `vm list`; unreadable ones are skipped.
    pub fn all(&self) -> Vec<DeviceRecord> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<DeviceRecord> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                self.read(name.strip_suffix(".json")?)
            })
            .collect();
        out.sort_by(|a, b| a.vm.cmp(&b.vm));
        out
    }

    /// Written whole under a temporary name, so a reader never sees half a record.
    pub fn write(&self, rec: &DeviceRecord) -> Result<(), ManagedError> {
        let path = self.path(&rec.vm);
        let err = |source| ManagedError::Record {
            path: path.display().to_string(),
            source,
        };
        fs::create_dir_all(&self.dir).map_err(err)?;
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_vec_pretty(rec).unwrap_or_default();
        fs::write(&tmp, text).map_err(err)?;
        fs::rename(&tmp, &path).map_err(err)
    }

    pub fn remove(&self, vm: &str) {
        let _ = fs::remove_file(self.path(vm));
    }

    /// Appends a line to the VM's device log; logging never fails an operation.
    pub fn log(&self, vm: &str, line: &str) {
        tracing::info!(vm, "{line}");
        let _ = fs::create_dir_all(&self.dir);
        if let Ok(mut f) = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(vm))
        {
            let _ = writeln!(f, "{} {line}", now_secs());
        }
    }

    /// The VM holding `address`, with the state of its hold.
    pub fn holder_of(&self, address: &PciAddress) -> Option<DeviceRecord> {
        self.all().into_iter().find(|r| r.devices.contains(address))
    }
}

/// The addresses a definition passes through, in its order.
pub fn addresses(spec: &VmSpec) -> Vec<PciAddress> {
    spec.vfio.iter().map(|v| v.address).collect()
}

/// Where managed mode reads and writes the host: the root every sysfs path is under.
#[derive(Debug, Clone)]
pub struct DeviceHost {
    pub root: SysRoot,
    pub records: Records,
    /// phyllome's state directory (reset marks), `None` for the default.
    pub state_dir: Option<PathBuf>,
    /// Write through the simulated kernel of a fixture tree (`--simulate`).
    pub simulate: bool,
}

impl DeviceHost {
    pub fn new(host_root: &Path, run_root: &RunRoot, state_dir: Option<PathBuf>) -> Self {
        Self {
            root: SysRoot::new(host_root),
            records: Records::new(run_root),
            state_dir,
            simulate: false,
        }
    }

    /// The same host, written through the fixture's simulated kernel when `simulate`.
    pub fn simulated(mut self, simulate: bool) -> Self {
        self.simulate = simulate;
        self
    }

    /// A line for `vm list` when giving this VM's devices back failed.
    pub fn release_failure(&self, vm: &str) -> Option<String> {
        let rec = self.records.read(vm)?;
        (rec.state == Holding::ReleaseFailed).then(|| {
            ManagedError::Release {
                vm: vm.to_string(),
                message: rec.problems.join("; "),
            }
            .to_string()
        })
    }

    fn plan_options(&self) -> crate::vfio::PlanOptions {
        device_ops::plan_options(self.state_dir.as_deref())
    }

    /// Binds every group of `spec`'s devices to vfio-pci and records the hold. A group that
    /// fails is rolled back by the vfio module; groups moved before it are released again, so
    /// a failed start leaves the host as it was.
    pub fn prepare(&self, spec: &VmSpec) -> Result<(), ManagedError> {
        let wanted = addresses(spec);
        if wanted.is_empty() {
            return Ok(());
        }
        let log = |line: &str| self.records.log(&spec.name, line);
        let moved = device_ops::detach_all(
            &self.root,
            &wanted,
            &self.plan_options(),
            self.simulate,
            log,
        )
        .map_err(|message| ManagedError::Detach {
            vm: spec.name.clone(),
            message,
        })?;
        self.records.write(&DeviceRecord {
            vm: spec.name.clone(),
            devices: moved.iter().map(|m| m.address).collect(),
            came_from: moved,
            state: Holding::Held,
            since: now_secs(),
            supervisor_pid: None,
            problems: Vec::new(),
        })
    }

    /// Gives a VM's devices back to their host drivers (the VMM must be gone). Success
    /// removes the record; failure keeps it as `release_failed` with the reasons.
    pub fn release(&self, vm: &str, devices: &[CameFrom]) -> Result<(), ManagedError> {
        let log = |line: &str| self.records.log(vm, line);
        let opts = self.plan_options();
        let addresses: Vec<PciAddress> = devices.iter().map(|d| d.address).collect();
        device_ops::note_guest_ran(&self.root, &addresses, vm, &opts, log);
        let result = device_ops::release_all(&self.root, devices, &opts, self.simulate, log);
        match result {
            Ok(()) => {
                self.records.remove(vm);
                Ok(())
            }
            Err(problems) => {
                let message = problems.join("; ");
                self.records.log(vm, &format!("release failed: {message}"));
                let rec = DeviceRecord {
                    vm: vm.to_string(),
                    devices: devices.iter().map(|d| d.address).collect(),
                    came_from: devices.to_vec(),
                    state: Holding::ReleaseFailed,
                    since: now_secs(),
                    supervisor_pid: None,
                    problems,
                };
                self.records.write(&rec)?;
                Err(ManagedError::Release {
                    vm: vm.to_string(),
                    message,
                })
            }
        }
    }

    /// After a VM's VMM is gone: lets its supervisor finish the release (up to `wait`), and
    /// releases here when no supervisor is left to do it. With a zero `wait` a live supervisor
    /// is left to its work. A failed release (now or earlier) is an error when `report_failed`.
    pub async fn settle(
        &self,
        vm: &str,
        marker: &Path,
        wait: Duration,
        report_failed: bool,
    ) -> Result<(), ManagedError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Some(rec) = self.records.read(vm) else {
                return Ok(());
            };
            if rec.state == Holding::ReleaseFailed {
                if !report_failed {
                    return Ok(());
                }
                return Err(ManagedError::Release {
                    vm: vm.to_string(),
                    message: rec.problems.join("; "),
                });
            }
            let supervising = rec
                .supervisor_pid
                .is_some_and(|p| super::launch::pid_is_vmm(p, marker));
            if supervising && wait.is_zero() {
                return Ok(());
            }
            if !supervising || tokio::time::Instant::now() >= deadline {
                if supervising {
                    self.records
                        .log(vm, "supervisor did not release in time; releasing here");
                }
                let r = self.release(vm, &rec.came_from);
                return if report_failed { r } else { Ok(()) };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_find_holders() {
        let tmp = tempfile::tempdir().unwrap();
        let records = Records::new(&RunRoot::new(tmp.path()));
        assert!(records.all().is_empty());
        let a: PciAddress = "0000:01:00.0".parse().unwrap();
        let rec = DeviceRecord {
            vm: "win".into(),
            devices: vec![a],
            came_from: vec![],
            state: Holding::Held,
            since: 1,
            supervisor_pid: Some(7),
            problems: vec![],
        };
        records.write(&rec).unwrap();
        assert_eq!(records.read("win"), Some(rec.clone()));
        assert_eq!(records.holder_of(&a).map(|r| r.vm), Some("win".into()));
        records.remove("win");
        assert!(records.read("win").is_none());
    }

    #[test]
    fn garbage_records_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let records = Records::new(&RunRoot::new(tmp.path()));
        fs::create_dir_all(tmp.path().join("managed")).unwrap();
        fs::write(tmp.path().join("managed/x.json"), "{not json").unwrap();
        assert!(records.all().is_empty());
    }
}
