//! Who keeps a VMM alive once the console is gone: systemd (a transient unit) when the host
//! runs it, else a detached process in its own session. Either way the VMM is not a child in
//! any console's process tree that a SIGKILL or a hang-up could take down with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::ChClient;
use super::defs::Spec;
use super::device_supervisor;
use super::launch::{self, LaunchError};
use super::managed::{DeviceHost, ManagedError};
use super::runtime::{now_secs, LaunchMeta, RuntimeError, SupervisorKind, VmRuntime};
use super::systemd::{Systemd, SystemdError};

/// Set to `process` to keep VMMs out of systemd even where it runs (e.g. inside a container
/// whose systemd belongs to someone else).
pub const SUPERVISOR_ENV: &str = "PHYLLOME_SUPERVISOR";

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{0}")]
    Launch(#[from] LaunchError),
    #[error("{0}")]
    Systemd(#[from] SystemdError),
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    #[error("The device supervisor of VM {vm} exited before it started the VMM; see {log}")]
    DeviceSupervisor { vm: String, log: String },
    #[error("The VMM of VM {vm} (pid {pid}) still runs after SIGKILL; its runtime directory {dir} is kept")]
    NotGone { vm: String, pid: u32, dir: String },
}

/// How long a SIGKILLed VMM may take to go: exiting frees all of the guest's memory, which
/// takes a while for a large VM.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Why a freshly launched VMM is not usable; each carries the tail of its log.
#[derive(Debug)]
pub enum ReadyError {
    Exited(String),
    Timeout(String),
}

#[derive(Debug)]
pub enum Supervisor {
    Process,
    Systemd(Systemd),
}

impl Supervisor {
    pub async fn detect() -> Self {
        if std::env::var(SUPERVISOR_ENV).as_deref() == Ok("process") {
            return Supervisor::Process;
        }
        match Systemd::detect().await {
            Some(s) => Supervisor::Systemd(s),
            None => Supervisor::Process,
        }
    }

    /// Launches the VMM of `rt` and records how. With `devices`, the VMM runs under a device
    /// supervisor (`phyllome vm supervise`) that releases them whenever the VMM exits.
    pub async fn launch(
        &self,
        rt: &VmRuntime,
        bin: &Path,
        devices: Option<&DeviceLaunch>,
    ) -> Result<LaunchMeta, SupervisorError> {
        // The VMM runs in the runtime directory: a relative path would point elsewhere there.
        let bin = std::path::absolute(bin).unwrap_or_else(|_| bin.to_path_buf());
        let mut argv = launch::vmm_argv(&bin, rt);
        if let Some(d) = devices {
            argv = device_supervisor::wrap_argv(
                &d.self_exe,
                &rt.name,
                &d.host_root,
                &d.run_root,
                d.state_dir.as_deref(),
                d.simulate,
                &argv,
            );
        }
        let (pid, supervisor) = match self {
            Supervisor::Process if devices.is_some() => {
                // The supervisor writes the VMM's pid once it has started it; the supervisor
                // itself is not the VMM and must never be the one SIGKILLed.
                let sup = launch::spawn_detached(&argv, rt)?;
                let pid = wait_pidfile(rt, sup).await;
                if pid.is_none() && !child_alive(sup) {
                    let run_root = devices
                        .map(|d| d.run_root.as_path())
                        .unwrap_or(Path::new(""));
                    return Err(SupervisorError::DeviceSupervisor {
                        vm: rt.name.clone(),
                        log: super::managed::Records::log_path_in(run_root, &rt.name)
                            .display()
                            .to_string(),
                    });
                }
                (pid, SupervisorKind::Process)
            }
            Supervisor::Process => {
                let pid = launch::spawn_detached(&argv, rt)?;
                rt.write_pid(pid)?;
                (Some(pid), SupervisorKind::Process)
            }
            Supervisor::Systemd(sd) => {
                let unit = sd.start(&rt.name, &argv).await?;
                (None, SupervisorKind::Systemd { unit })
            }
        };
        Ok(LaunchMeta {
            pid,
            started_at: now_secs(),
            booted_at: None,
            supervisor,
            ch_bin: bin.to_path_buf(),
        })
    }

    /// Waits for the API socket and a `vmm.ping`; fails early when the VMM exits (a bad
    /// argument, a socket path in use). Learns the pid from the ping when systemd started it.
    pub async fn wait_ready(
        &self,
        rt: &VmRuntime,
        pid: Option<u32>,
        timeout: Duration,
    ) -> Result<(), ReadyError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let client = ChClient::new(rt.api_socket.clone(), Duration::from_secs(1));
        loop {
            if rt.api_socket.exists() {
                if let Ok(ping) = client.ping().await {
                    if pid.is_none() {
                        if let Some(p) = ping.pid.and_then(|p| u32::try_from(p).ok()) {
                            let _ = rt.write_pid(p);
                        }
                    }
                    return Ok(());
                }
            }
            if let Some(pid) = pid {
                // Only whether it still runs: between fork and exec the child's command line
                // is still ours, so the marker check of `pid_alive` would call it gone.
                if !launch::pid_running(pid) {
                    return Err(ReadyError::Exited(log_tail(&rt.vmm_log)));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ReadyError::Timeout(log_tail(&rt.vmm_log)));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Makes sure the VMM is gone: waits `grace` for it to exit on its own (after
    /// `vmm.shutdown`), then kills it (systemd: kill and stop the unit; then SIGKILL to every
    /// process still found) and waits until it is gone. The VMM is the pidfile's process and
    /// whatever [`launch::find_vmm_pids`] finds, so a lost or garbled pidfile hides nothing.
    /// An error names a VMM that outlived SIGKILL; the caller must then keep the directory.
    pub async fn ensure_gone(
        &self,
        rt: &VmRuntime,
        meta: Option<&LaunchMeta>,
        pid: Option<u32>,
        vmm_bins: &[PathBuf],
        grace: Duration,
    ) -> Result<(), SupervisorError> {
        let find = || {
            let mut pids = launch::find_vmm_pids(rt, vmm_bins);
            if let Some(p) = pid.filter(|&p| pid_alive(p, rt) && !pids.contains(&p)) {
                pids.push(p);
            }
            pids
        };
        let found = find();
        // A stopped (SIGSTOP) VMM cannot exit by itself: no point in waiting for it.
        let may_exit = |p: &u32| launch::pid_running(*p) && !launch::pid_stopped(*p);
        let deadline = tokio::time::Instant::now() + grace;
        while found.iter().any(may_exit) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Supervisor::Systemd(sd) = self {
            // The unit's name follows from the VM's: a lost meta.json still finds it.
            let unit = match meta.map(|m| &m.supervisor) {
                Some(SupervisorKind::Systemd { unit }) => Some(unit.clone()),
                Some(SupervisorKind::Process) => None,
                None => Some(super::systemd::unit_name(&rt.name)),
            };
            if let Some(unit) = unit {
                if found.iter().any(|&p| launch::pid_running(p)) {
                    let _ = sd.kill(&unit).await;
                }
                let _ = sd.stop(&unit).await;
            }
        }
        // Looked up afresh rather than reusing `found`: a pid that has gone since may already
        // name someone else's process.
        let left = find();
        if !left.is_empty() {
            tracing::warn!(vm = %rt.name, pids = ?left, "VMM did not exit: SIGKILL");
        }
        let kill = |p| launch::signal(p, rustix::process::Signal::KILL);
        kill_until_gone(&left, KILL_WAIT, kill, launch::pid_running)
            .await
            .map_err(|pid| SupervisorError::NotGone {
                vm: rt.name.clone(),
                pid,
                dir: rt.dir.display().to_string(),
            })
    }

    /// Starts the VM's serial keeper the way its VMM runs: a transient unit of its own under
    /// systemd (so it lives as long as the VM, not as the command that started it), else a
    /// detached process. Its log file is made first either way: it tells viewers a keeper
    /// exists, so they wait for its socket instead of taking CH's (under systemd the keeper's
    /// messages go to the journal and the file stays empty).
    pub async fn launch_keeper(
        &self,
        rt: &VmRuntime,
        argv: &[std::ffi::OsString],
    ) -> Result<(), String> {
        let marker = rt.dir.join(crate::serial::KEEPER_LOG);
        match self {
            Supervisor::Systemd(sd) => {
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(&marker)
                    .map_err(|e| format!("{}: {e}", marker.display()))?;
                let unit = super::systemd::keeper_unit_name(&rt.name);
                // One from an earlier run that has not noticed yet is stopped first.
                let _ = sd.stop(&unit).await;
                sd.start_unit(
                    &unit,
                    &format!("phyllome VM {} serial keeper", rt.name),
                    argv,
                )
                .await
                .map_err(|e| crate::error::Chain(&e).to_string())
            }
            Supervisor::Process => crate::serial::keeper::spawn(argv, &rt.dir)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// The VMM died on its own: let systemd drop the failed unit so the name is free again.
    pub async fn forget(&self, _rt: &VmRuntime, meta: Option<&LaunchMeta>) {
        if let (
            Supervisor::Systemd(sd),
            Some(LaunchMeta {
                supervisor: SupervisorKind::Systemd { unit },
                ..
            }),
        ) = (self, meta)
        {
            let _ = sd.stop(unit).await;
        }
    }
}

/// The pid is a live VMM of this runtime directory (not a zombie, not a recycled pid).
pub fn pid_alive(pid: u32, rt: &VmRuntime) -> bool {
    launch::pid_is_vmm(pid, &rt.api_socket)
}

/// Sends `kill` to every pid, then waits up to `wait` until none is `alive`; the error is the
/// first pid still alive then. SIGKILL works on a stopped process too, so only a process stuck
/// in the kernel (or a pid we may not signal) ends up here.
async fn kill_until_gone(
    pids: &[u32],
    wait: Duration,
    kill: impl Fn(u32),
    alive: impl Fn(u32) -> bool,
) -> Result<(), u32> {
    for &p in pids {
        kill(p);
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match pids.iter().copied().find(|&p| alive(p)) {
            None => return Ok(()),
            Some(p) if tokio::time::Instant::now() >= deadline => return Err(p),
            Some(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The last lines of the VMM's log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    let tail: Vec<&str> = lines.into_iter().rev().collect();
    if tail.is_empty() {
        "(nothing)".to_string()
    } else {
        tail.join(" | ")
    }
}

/// What launching a VMM under a device supervisor needs to know.
#[derive(Debug, Clone)]
pub struct DeviceLaunch {
    /// This program (the supervisor is `phyllome vm supervise`).
    pub self_exe: PathBuf,
    pub host_root: PathBuf,
    pub run_root: PathBuf,
    pub state_dir: Option<PathBuf>,
    /// Passed on as `--simulate`: the supervisor releases through the same writer.
    pub simulate: bool,
}

/// Whether a process we just spawned still runs. Its command line cannot tell yet: until it
/// has exec'd it is a copy of this process; and being our unreaped child, its pid is not
/// recycled while we look.
fn child_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Waits (bounded) for the device supervisor to write the VMM's pid; `None` when it exited
/// first or took too long, and `wait_ready` then learns the pid from `vmm.ping`.
async fn wait_pidfile(rt: &VmRuntime, supervisor_pid: u32) -> Option<u32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pid) = rt.read_pid() {
            return Some(pid);
        }
        if !child_alive(supervisor_pid) || tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Managed VFIO, before the VMM starts: bind the VM's devices (whole IOMMU groups) to
/// vfio-pci, every write under `host.root`. A VM without devices costs nothing.
pub fn prepare_devices(host: &DeviceHost, spec: &Spec) -> Result<(), ManagedError> {
    host.prepare(spec)
}

/// How long a stop waits for the device supervisor to give the devices back.
const RELEASE_WAIT: Duration = Duration::from_secs(30);

/// Managed VFIO, after the VMM is gone: wait for its device supervisor to give the devices
/// back, or do it here when none is left; a failed release is recorded and returned.
pub async fn release_devices(host: &DeviceHost, rt: &VmRuntime) -> Result<(), ManagedError> {
    host.settle(&rt.name, &rt.api_socket, RELEASE_WAIT, true)
        .await
}

/// Before a start: devices a previous run still holds are settled (its supervisor finishing,
/// or released here), so the new VMM never races the old one's release. An earlier failed
/// release does not block the start: binding them again is what the start wants anyway.
pub async fn settle_before_start(host: &DeviceHost, rt: &VmRuntime) -> Result<(), ManagedError> {
    host.settle(&rt.name, &rt.api_socket, RELEASE_WAIT, false)
        .await
}

/// A VMM found dead while nobody was stopping it: release its devices unless its supervisor
/// is alive to do it (best effort; a failure is recorded for `vm list` and `gpu list`).
pub async fn release_orphaned(host: &DeviceHost, rt: &VmRuntime) {
    let _ = host
        .settle(&rt.name, &rt.api_socket, Duration::ZERO, false)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[tokio::test(flavor = "current_thread")]
    async fn a_vmm_that_outlives_sigkill_is_an_error_naming_it() {
        let killed = RefCell::new(Vec::new());
        let r = kill_until_gone(
            &[41, 42],
            Duration::from_millis(100),
            |p| killed.borrow_mut().push(p),
            |p| p == 42,
        )
        .await;
        assert_eq!(r, Err(42));
        assert_eq!(*killed.borrow(), [41, 42]);

        let e = SupervisorError::NotGone {
            vm: "t1".into(),
            pid: 42,
            dir: "/run/phyllome/vms/t1".into(),
        };
        let text = e.to_string();
        assert!(text.contains("t1") && text.contains("pid 42"), "{text}");
        assert!(text.contains("/run/phyllome/vms/t1"), "{text}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn killed_vmms_that_go_are_success() {
        let dead = RefCell::new(Vec::new());
        let r = kill_until_gone(
            &[7],
            Duration::from_secs(10),
            |p| dead.borrow_mut().push(p),
            |p| !dead.borrow().contains(&p),
        )
        .await;
        assert_eq!(r, Ok(()));
        assert_eq!(
            kill_until_gone(&[], Duration::ZERO, |_| {}, |_| true).await,
            Ok(())
        );
    }
}
