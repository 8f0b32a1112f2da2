//! Who keeps a VMM alive once the console is gone: systemd (a transient unit) when the host
//! runs it, else a detached process in its own session. Either way the VMM is not a child in
//! any console's process tree that a SIGKILL or a hang-up could take down with it.

use std::path::Path;
use std::time::Duration;

use super::client::ChClient;
use super::defs::Spec;
use super::launch::{self, LaunchError};
use super::runtime::{now_secs, LaunchMeta, RuntimeError, SupervisorKind, VmRuntime};
use super::systemd::{Systemd, SystemdError};

/// Set to `process` to keep VMMs out of systemd even where it runs (e.g. inside a container
/// whose systemd belongs to someone else).
pub const SUPERVISOR_ENV: &str = "PHYLLOME_SUPERVISOR";

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

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

    /// Launches the VMM of `rt` and records how.
    pub async fn launch(&self, rt: &VmRuntime, bin: &Path) -> Result<LaunchMeta, SupervisorError> {
        let argv = launch::vmm_argv(bin, rt);
        let (pid, supervisor) = match self {
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
                if !pid_alive(pid, rt) {
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
    /// `vmm.shutdown`), then kills it (systemd: stop, then kill the unit; process: SIGKILL).
    pub async fn ensure_gone(
        &self,
        rt: &VmRuntime,
        meta: Option<&LaunchMeta>,
        pid: Option<u32>,
        grace: Duration,
    ) {
        let gone = |pid: Option<u32>| pid.is_none_or(|p| !pid_alive(p, rt));
        let deadline = tokio::time::Instant::now() + grace;
        while !gone(pid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let unit = match meta.map(|m| &m.supervisor) {
            Some(SupervisorKind::Systemd { unit }) => Some(unit.as_str()),
            _ => None,
        };
        if let (Supervisor::Systemd(sd), Some(unit)) = (self, unit) {
            if !gone(pid) {
                let _ = sd.kill(unit).await;
            }
            let _ = sd.stop(unit).await;
        }
        if let Some(p) = pid.filter(|&p| pid_alive(p, rt)) {
            tracing::warn!(vm = %rt.name, pid = p, "VMM did not exit: SIGKILL");
            launch::signal(p, rustix::process::Signal::KILL);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while pid_alive(p, rt) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
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

/// Hook for managed VFIO: bind the VM's devices (whole IOMMU groups) to vfio-pci before the
/// VMM starts. Deliberately a no-op until the `vfio` module (plan, apply with rollback) lands;
/// nothing here may write to /sys.
pub fn prepare_devices(_spec: &Spec) {}

/// Hook for managed VFIO: give the VM's devices back to their host drivers after its VMM is
/// gone. A no-op until the `vfio` module lands (see [`prepare_devices`]).
pub fn release_devices(_spec: &Spec) {}
