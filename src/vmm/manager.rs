//! Running VMs: start, stop, reboot, pause, resume, delete and discovery, for the console and
//! the CLI alike. Every method is async, bounded by timeouts, and safe to call from several
//! processes at once: the per-VM lock plus a ping decide who starts a VM.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use super::api::VmState;
use super::client::ChClient;
use super::defs::{self, Defs};
use super::error::VmmError;
use super::events::{EventTail, StateHint};
use super::fdpass::{self, FdPassError, MacvtapNic};
use super::managed::{DeviceHost, ManagedError};
use super::runtime::{now_secs, RunRoot, RuntimeError, VmRuntime};
use super::supervisor::{self, DeviceLaunch, Supervisor, SupervisorError};
use crate::error::Chain;

mod disk_snapshot;
mod probe;
mod recovery;
mod rescue;
mod snapshot;
mod start;
mod status;
mod stop;

pub use recovery::Unlocked;
pub use rescue::{RescueError, RescuePayload, RescueRequest};
pub use snapshot::{SnapshotError, SnapshotInfo};
pub use status::{RunState, VmStatus};

#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// VM definitions (None: the default state directory).
    pub state_dir: Option<PathBuf>,
    pub run_root: RunRoot,
    /// `--ch-bin`; None: `cloud-hypervisor` from PATH.
    pub ch_bin: Option<PathBuf>,
    /// Bound of one API call (ping, info, pause, ...).
    pub api_timeout: Duration,
    /// Bound of `vm.create` + `vm.boot`, which block while the VMM sets the VM up.
    pub boot_timeout: Duration,
    /// How long a fresh VMM may take to open its API socket.
    pub ready_timeout: Duration,
    /// The host whose devices managed VFIO moves (`/`, or a fixture tree in tests).
    pub host_root: PathBuf,
    /// The program that runs `vm supervise` for VMs with devices (default: this one).
    pub self_exe: Option<PathBuf>,
    /// Managed VFIO writes through the simulated kernel of a fixture tree (`--simulate`).
    pub simulate: bool,
}

impl ManagerConfig {
    pub fn new(state_dir: Option<PathBuf>, run_root: RunRoot, ch_bin: Option<PathBuf>) -> Self {
        Self {
            state_dir,
            run_root,
            ch_bin,
            api_timeout: Duration::from_secs(5),
            boot_timeout: Duration::from_secs(60),
            ready_timeout: Duration::from_secs(10),
            host_root: PathBuf::from("/"),
            self_exe: None,
            simulate: false,
        }
    }

    /// Managed VFIO writes under this root instead of `/`.
    pub fn with_host_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.host_root = root.into();
        self
    }

    fn device_host(&self) -> DeviceHost {
        DeviceHost::new(&self.host_root, &self.run_root, self.state_dir.clone())
            .simulated(self.simulate)
    }

    fn device_launch(&self, spec: &defs::Spec) -> Option<DeviceLaunch> {
        self.device_host().records.read(&spec.name)?;
        let self_exe = self
            .self_exe
            .clone()
            .or_else(|| std::env::current_exe().ok())?;
        Some(DeviceLaunch {
            self_exe,
            host_root: self.host_root.clone(),
            run_root: self.run_root.path().to_path_buf(),
            state_dir: self.state_dir.clone(),
            simulate: self.simulate,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("{0}")]
    Defs(#[from] defs::DefsError),
    #[error("VM {name} has an invalid definition: {message}")]
    Invalid { name: String, message: String },
    #[error("VM {0} is already running")]
    AlreadyRunning(String),
    #[error("VM {0} is not running")]
    NotRunning(String),
    #[error("VM {0} is running; stop it first")]
    StillRunning(String),
    #[error("VM {name} is still in use: {what}; stop it first (`phyllome vm stop --force {name}` ends a hung one)")]
    InUse { name: String, what: String },
    #[error("{0}")]
    Snapshot(#[from] SnapshotError),
    #[error("{0}")]
    Rescue(#[from] RescueError),
    #[error("VM {name} still has a VMM running (pid {pid}); force it off first")]
    VmmAlive { name: String, pid: u32 },
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    #[error("{0}")]
    Supervisor(#[from] SupervisorError),
    #[error("VM {name}: {source}")]
    Vmm {
        name: String,
        #[source]
        source: VmmError,
    },
    #[error("The VMM of {name} exited before it answered; its log says: {log}")]
    VmmExited { name: String, log: String },
    #[error("The VMM of {name} did not open its API socket within {secs} s; its log says: {log}")]
    NotReady {
        name: String,
        secs: u64,
        log: String,
    },
    #[error("{0}")]
    Devices(#[from] ManagedError),
    #[error("{0}")]
    Macvtap(#[from] FdPassError),
    #[error("VM {name} did not reach {state} within {secs} s")]
    StateTimeout {
        name: String,
        state: &'static str,
        secs: u64,
    },
}

impl ManagerError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, ManagerError::Vmm { source, .. } if source.is_timeout())
    }
}

type Result<T> = std::result::Result<T, ManagerError>;

/// How a start boots the VM.
#[derive(Debug, Clone)]
enum Launch {
    /// As its definition says.
    Normal,
    /// Once, with a rescue payload.
    Rescue(RescuePayload),
    /// From the snapshot in this directory.
    Restore(PathBuf),
}

/// How a wait for the guest to power off ended.
enum Waited {
    Off,
    TimedOut,
    CutShort,
}

/// What asking one runtime directory found.
struct Probe {
    state: RunState,
    pid: Option<u32>,
    booted_at: Option<u64>,
    info: Option<super::api::VmInfo>,
    failure: Option<ManagerError>,
}

impl Probe {
    fn stopped() -> Self {
        Probe {
            state: RunState::Stopped,
            pid: None,
            booted_at: None,
            info: None,
            failure: None,
        }
    }

    fn timed_out(&self) -> bool {
        self.failure.as_ref().is_some_and(ManagerError::is_timeout)
    }
}

/// A failure as a list row shows it: the VMM's own error without the VM's name again.
fn failure_text(e: &ManagerError) -> String {
    match e {
        ManagerError::Vmm { source, .. } => Chain(source).to_string(),
        e => Chain(e).to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// ACPI power button, then `vm.shutdown` after the timeout.
    Graceful { timeout: Duration },
    /// `vm.shutdown`, `vmm.shutdown`, then SIGKILL.
    Force,
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopOutcome {
    /// The guest powered off after the power button.
    PoweredOff,
    /// The guest let its grace period run out: `vm.shutdown`.
    TimedOut,
    /// [`VmManager::cut_short`] ended the grace period: `vm.shutdown`.
    CutShort,
    /// `StopMode::Force`.
    Forced,
    /// No guest was running (the VMM held no VM, or was unresponsive): the VMM was stopped.
    VmmOnly,
}

/// Graceful stops waiting in this process, by VM, for [`VmManager::cut_short`].
type Waiting = Mutex<BTreeMap<String, Arc<tokio::sync::Notify>>>;

#[derive(Debug)]
pub struct VmManager {
    cfg: ManagerConfig,
    supervisor: tokio::sync::OnceCell<Supervisor>,
    waiting: Waiting,
}

/// Unregisters a graceful stop from [`VmManager::cut_short`] when the stop ends, however.
struct WaitingGuard<'a> {
    waiting: &'a Waiting,
    name: String,
    notify: Arc<tokio::sync::Notify>,
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut w) = self.waiting.lock() {
            if w.get(&self.name)
                .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
            {
                w.remove(&self.name);
            }
        }
    }
}

impl VmManager {
    pub fn new(cfg: ManagerConfig) -> Self {
        Self {
            cfg,
            supervisor: tokio::sync::OnceCell::new(),
            waiting: Mutex::default(),
        }
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.cfg
    }

    async fn supervisor(&self) -> &Supervisor {
        self.supervisor.get_or_init(Supervisor::detect).await
    }

    fn defs(&self) -> Result<Defs> {
        Ok(Defs::open(self.cfg.state_dir.as_deref())?)
    }

    fn client(&self, rt: &VmRuntime) -> ChClient {
        ChClient::new(rt.api_socket.clone(), self.cfg.api_timeout)
    }

    fn vmm_err(name: &str) -> impl Fn(VmmError) -> ManagerError + '_ {
        move |source| ManagerError::Vmm {
            name: name.to_string(),
            source,
        }
    }

    /// Every defined VM with its state, plus VMMs still running for a definition that is gone.
    /// Stale runtime directories (their VMM died) are cleaned on the way. All VMMs are asked
    /// at once, so hung ones cost one API timeout in all rather than one each.
    /// The binaries a VMM of ours runs: the one recorded at launch and the configured one.
    fn vmm_bins(&self, rt: &VmRuntime) -> Vec<PathBuf> {
        let recorded = rt.read_meta().map(|m| m.ch_bin);
        let configured = super::launch::find_ch_bin(self.cfg.ch_bin.as_deref()).ok();
        recorded.into_iter().chain(configured).collect()
    }

    /// Live VMM processes of a VM, found without trusting its pidfile.
    fn find_vmm(&self, rt: &VmRuntime) -> Vec<u32> {
        super::launch::find_vmm_pids(rt, &self.vmm_bins(rt))
    }

    /// Stops the VMM of a VM: `vmm.shutdown`, then the supervisor's kill, and removes the
    /// runtime directory once the VMM is gone. An error means a VMM outlived SIGKILL; its
    /// directory is kept.
    pub async fn reboot(&self, name: &str) -> Result<()> {
        self.running_client(name)
            .await?
            .reboot()
            .await
            .map_err(Self::vmm_err(name))
    }

    pub async fn pause(&self, name: &str) -> Result<()> {
        self.running_client(name)
            .await?
            .pause()
            .await
            .map_err(Self::vmm_err(name))
    }

    pub async fn resume(&self, name: &str) -> Result<()> {
        self.running_client(name)
            .await?
            .resume()
            .await
            .map_err(Self::vmm_err(name))
    }

    async fn running_client(&self, name: &str) -> Result<ChClient> {
        let rt = self.cfg.run_root.vm(name)?;
        let mut probe = self.probe(&rt, false).await;
        if let Some(e) = probe.failure.take() {
            return Err(e);
        }
        if !probe.state.has_vmm() {
            return Err(ManagerError::NotRunning(name.to_string()));
        }
        Ok(self.client(&rt))
    }

    /// Deletes a VM's definition; refused while its VMM runs.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let defs = self.defs()?;
        defs.get_any(name)?;
        let rt = self.cfg.run_root.vm(name)?;
        let _lock = self.cfg.run_root.lock(name, self.cfg.api_timeout).await?;
        if self.probe(&rt, true).await.state.has_vmm() {
            return Err(ManagerError::StillRunning(name.to_string()));
        }
        defs.delete(name)?;
        // Its serial log goes with it: a new VM of the same name starts with none.
        if let Ok(log) = crate::serial::log::log_path(self.cfg.state_dir.as_deref(), name) {
            for path in [crate::serial::log::rotated(&log), log] {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// Starts every VM marked autostart; one result per VM. A VM already running counts as done.
    pub async fn autostart(&self) -> Result<Vec<(String, Result<()>)>> {
        let defs = self.defs()?;
        let mut out = Vec::new();
        for (name, spec) in defs.list() {
            match spec {
                Ok(s) if defs::summary(&s).autostart => {
                    let r = match self.start(&name).await {
                        Ok(_) | Err(ManagerError::AlreadyRunning(_)) => Ok(()),
                        Err(e) => Err(e),
                    };
                    out.push((name, r));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The event log of a VM, to follow its state changes (see [`EventTail::poll`]).
    pub fn events(&self, name: &str) -> Result<EventTail> {
        Ok(EventTail::new(self.cfg.run_root.vm(name)?.event_log))
    }
}
