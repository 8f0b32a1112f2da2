//! The hard levers on a VM: a reset (`vm.reboot`), an NMI (`vm.nmi`), and unlocking what a
//! crashed VMM left behind (its runtime directory, its lock, a device hold).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{ManagerError, Result, VmManager};
use crate::vmm::launch;
use crate::vmm::managed::Holding;
use crate::vmm::runtime::RuntimeError;
use crate::vmm::supervisor;

/// What `unlock` cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Unlocked {
    /// Each thing removed or given back, in words (`runtime directory … (api.sock, vmm.pid)`).
    pub cleared: Vec<String>,
}

impl VmManager {
    /// A hard reset: `vm.reboot` restarts the VM from the VMM side; the guest is not asked.
    pub async fn reset(&self, name: &str) -> Result<()> {
        self.reboot(name).await
    }

    /// Injects a non-maskable interrupt: a guest set up for it dumps its state or panics
    /// (Linux `kernel.unknown_nmi_panic`, Windows `CrashOnNMI`), otherwise it logs and goes on.
    pub async fn nmi(&self, name: &str) -> Result<()> {
        self.running_client(name)
            .await?
            .nmi()
            .await
            .map_err(Self::vmm_err(name))
    }

    /// Clears what a VMM that crashed or was killed left: its runtime directory (sockets,
    /// pidfile, launch record, event log), its lock file, its systemd unit, and devices still
    /// held for it (given back to their host drivers). Refused, naming the process, while its
    /// VMM, its device supervisor, or a phyllome holding its lock still runs.
    pub async fn unlock(&self, name: &str) -> Result<Unlocked> {
        let rt = self.cfg.run_root.vm(name)?;
        let host = self.cfg.device_host();
        let record = host.records.read(name);
        let lock_file = self.cfg.run_root.lock_path(name);
        let defined = self.defs()?.get_any(name).is_ok();
        // Taking the lock below creates the file: whether one was left is known only now.
        let left_lock = lock_file.exists();
        if !defined && !rt.dir.exists() && record.is_none() && !left_lock {
            return Err(crate::vmm::defs::DefsError::NotDefined(name.to_string()).into());
        }
        let lock = match self.cfg.run_root.lock(name, Duration::ZERO).await {
            Ok(l) => l,
            Err(RuntimeError::LockBusy(_)) => {
                let holders = lock_holders(&lock_file);
                let who = if holders.is_empty() {
                    "a phyllome holds its lock (a start or stop under way)".to_string()
                } else {
                    format!(
                        "a phyllome holds its lock (a start or stop under way): {}",
                        holders
                            .iter()
                            .map(|&p| describe(p))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                return Err(ManagerError::InUse {
                    name: name.to_string(),
                    what: who,
                });
            }
            Err(e) => return Err(e.into()),
        };
        let mut running: Vec<String> = Vec::new();
        let mut vmms = self.find_vmm(&rt);
        if let Some(p) = rt.read_pid().filter(|&p| supervisor::pid_alive(p, &rt)) {
            if !vmms.contains(&p) {
                vmms.push(p);
            }
        }
        running.extend(vmms.iter().map(|&p| format!("its VMM, {}", describe(p))));
        if let Some(p) = record
            .as_ref()
            .and_then(|r| r.supervisor_pid)
            .filter(|&p| launch::pid_is_vmm(p, &rt.api_socket) && !vmms.contains(&p))
        {
            running.push(format!("its device supervisor, {}", describe(p)));
        }
        if !running.is_empty() {
            return Err(ManagerError::InUse {
                name: name.to_string(),
                what: running.join("; "),
            });
        }

        let mut out = Unlocked::default();
        if rt.dir.exists() {
            let meta = rt.read_meta();
            self.supervisor().await.forget(&rt, meta.as_ref()).await;
            let files = entries(&rt.dir);
            rt.remove();
            if rt.dir.exists() {
                return Err(RuntimeError::Dir {
                    path: rt.dir.display().to_string(),
                    source: std::io::Error::other("it could not be removed"),
                }
                .into());
            }
            out.cleared.push(if files.is_empty() {
                format!("runtime directory {}", rt.dir.display())
            } else {
                format!(
                    "runtime directory {} ({})",
                    rt.dir.display(),
                    files.join(", ")
                )
            });
        }
        if let Some(rec) = record {
            let devices = rec
                .devices
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let was = match rec.state {
                Holding::Held => "held",
                Holding::ReleaseFailed => "left after a failed release",
            };
            host.release(name, &rec.came_from)?;
            out.cleared.push(format!(
                "devices {devices} ({was}): given back to their host drivers"
            ));
        }
        // Removed while held: a phyllome waiting on it retries on a fresh file.
        if std::fs::remove_file(&lock_file).is_ok() && left_lock {
            out.cleared
                .push(format!("lock file {}", lock_file.display()));
        }
        drop(lock);
        Ok(out)
    }
}

/// `pid N (comm)`, as far as /proc tells.
fn describe(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => format!("pid {pid} ({})", comm.trim()),
        Err(_) => format!("pid {pid}"),
    }
}

/// The names in a directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Pids holding a flock on `file`, from `/proc/locks`.
fn lock_holders(file: &Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(inode) = std::fs::metadata(file).map(|m| m.ino()) else {
        return Vec::new();
    };
    let table = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    holders_in(&table, inode)
}

/// `1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF`: the holder's pid and the file's
/// `major:minor:inode`; waiters (`1: -> FLOCK …`) are left out.
fn holders_in(table: &str, inode: u64) -> Vec<u32> {
    let mut pids: Vec<u32> = table
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(1) != Some(&"FLOCK") {
                return None;
            }
            let ino = f.get(5)?.rsplit(':').next()?.parse::<u64>().ok()?;
            (ino == inode).then(|| f.get(4)?.parse().ok()).flatten()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_holders_are_read_from_proc_locks() {
        let table = "1: FLOCK  ADVISORY  WRITE 4242 00:2a:777 0 EOF\n\
                     1: -> FLOCK  ADVISORY  WRITE 4343 00:2a:777 0 EOF\n\
                     2: POSIX  ADVISORY  WRITE 99 00:2a:777 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 11 00:2a:778 0 EOF\n";
        assert_eq!(holders_in(table, 777), [4242]);
        assert!(holders_in(table, 1).is_empty());
        assert!(holders_in("garbage\n", 777).is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_held_lock_is_found_in_this_process() {
        let tmp = tempfile::tempdir().unwrap();
        let root = crate::vmm::runtime::RunRoot::new(tmp.path());
        let _held = root.lock("t1", Duration::ZERO).await.unwrap();
        assert_eq!(lock_holders(&root.lock_path("t1")), [std::process::id()]);
    }
}
