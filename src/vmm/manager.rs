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
mod recovery;
mod rescue;
mod snapshot;

pub use recovery::Unlocked;
pub use rescue::{RescueError, RescuePayload, RescueRequest};
pub use snapshot::{SnapshotError, SnapshotInfo};

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
    #[error(transparent)]
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
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Rescue(#[from] RescueError),
    #[error("VM {name} still has a VMM running (pid {pid}); force it off first")]
    VmmAlive { name: String, pid: u32 },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
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
    #[error(transparent)]
    Devices(#[from] ManagedError),
    #[error(transparent)]
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

/// A VM's state for users: Cloud Hypervisor's own words, plus what only we can know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RunState {
    Created,
    Running,
    Paused,
    Shutdown,
    BreakPoint,
    /// No VMM runs for this VM.
    Stopped,
    /// A VMM runs but did not answer in time (hung, or busy booting).
    Unresponsive,
    /// Another phyllome holds the VM's lock and its VMM does not answer yet.
    Starting,
    /// The VMM answered with a state this phyllome does not know.
    Unknown,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Created => "Created",
            RunState::Running => "Running",
            RunState::Paused => "Paused",
            RunState::Shutdown => "Shutdown",
            RunState::BreakPoint => "BreakPoint",
            RunState::Stopped => "Stopped",
            RunState::Unresponsive => "Unresponsive",
            RunState::Starting => "Starting",
            RunState::Unknown => "Unknown",
        }
    }

    /// Whether a VMM process is (or may be) there.
    pub fn has_vmm(self) -> bool {
        self != RunState::Stopped
    }
}

impl From<VmState> for RunState {
    fn from(s: VmState) -> Self {
        match s {
            VmState::Created => RunState::Created,
            VmState::Running => RunState::Running,
            VmState::Paused => RunState::Paused,
            VmState::Shutdown => RunState::Shutdown,
            VmState::BreakPoint => RunState::BreakPoint,
            VmState::Unknown => RunState::Unknown,
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the VM list.
#[derive(Debug, Clone, Serialize)]
pub struct VmStatus {
    pub name: String,
    pub state: RunState,
    /// False for a VMM found running whose definition is gone.
    pub defined: bool,
    pub autostart: bool,
    /// The definition's grace period after the power button (`stop_timeout`).
    pub stop_timeout_secs: Option<u64>,
    pub vcpus: Option<u32>,
    pub memory_bytes: Option<u64>,
    /// Seconds since `vm.boot` returned.
    pub uptime_secs: Option<u64>,
    pub devices: Vec<String>,
    pub pid: Option<u32>,
    /// Why the definition is invalid, or why the VMM could not be asked.
    pub error: Option<String>,
    /// `vm.info` as the VMM returned it, when asked for detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Value>,
    /// Its VMM was started by `vm rescue`, with `rescue_payload` instead of the definition's.
    pub rescue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescue_payload: Option<RescuePayload>,
}

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
    pub async fn list(&self) -> Result<Vec<VmStatus>> {
        let defined = self.defs()?.list();
        let orphans: Vec<String> = self
            .cfg
            .run_root
            .names()
            .into_iter()
            .filter(|n| !defined.iter().any(|(d, _)| d == n))
            .collect();
        let defined_rows = defined
            .into_iter()
            .map(|(name, spec)| async move { self.status_of(&name, spec, false).await });
        let orphan_rows = orphans
            .iter()
            .map(|name| self.status_of(name, Err("no definition".to_string()), false));
        let (mut rows, orphan_rows) = tokio::join!(join_all(defined_rows), join_all(orphan_rows));
        rows.extend(
            orphan_rows
                .into_iter()
                .filter(|row| row.state.has_vmm())
                .map(|row| VmStatus {
                    defined: false,
                    ..row
                }),
        );
        Ok(rows)
    }

    /// One VM with the VMM's `vm.info` when it runs. A hung VMM gives a timeout error.
    pub async fn info(&self, name: &str) -> Result<VmStatus> {
        let defs = self.defs()?;
        let spec = defs.get(name);
        if let Err(defs::DefsError::NotDefined(_)) = &spec {
            if !self.cfg.run_root.vm(name)?.exists() {
                return Err(defs::DefsError::NotDefined(name.to_string()).into());
            }
        }
        let spec = spec.map_err(|e| Chain(&e).to_string());
        let rt = self.cfg.run_root.vm(name)?;
        let mut probe = self.probe(&rt, false).await;
        if let Some(e) = probe.failure.take() {
            // A hung VMM is an error here: the caller asked about this VM in particular.
            return Err(e);
        }
        Ok(self.row(name, spec, probe, true))
    }

    async fn status_of(
        &self,
        name: &str,
        spec: std::result::Result<defs::Spec, String>,
        detail: bool,
    ) -> VmStatus {
        let probe = match self.cfg.run_root.vm(name) {
            Ok(rt) => self.probe(&rt, false).await,
            Err(_) => Probe::stopped(),
        };
        self.row(name, spec, probe, detail)
    }

    fn row(
        &self,
        name: &str,
        spec: std::result::Result<defs::Spec, String>,
        probe: Probe,
        detail: bool,
    ) -> VmStatus {
        let summary = spec.as_ref().ok().map(defs::summary);
        let stop_timeout = summary.as_ref().map(|s| s.stop_timeout.secs());
        let (vcpus, memory, devices, autostart) = match summary {
            Some(s) => (Some(s.vcpus), Some(s.memory_bytes), s.devices, s.autostart),
            None => (None, None, Vec::new(), false),
        };
        let uptime = match probe.state {
            RunState::Running | RunState::Paused => {
                probe.booted_at.map(|b| now_secs().saturating_sub(b))
            }
            _ => None,
        };
        let mut error = match (&spec, &probe.failure) {
            (Err(e), _) => Some(e.clone()),
            (_, Some(e)) => Some(failure_text(e)),
            _ => None,
        };
        if let Some(failed) = self.cfg.device_host().release_failure(name) {
            // Shown wherever the VM is listed until someone reattaches the devices.
            error = Some(match error {
                Some(e) => format!("{e}\n{failed}"),
                None => failed,
            });
        }
        let rescue_payload = if probe.state.has_vmm() {
            self.cfg
                .run_root
                .vm(name)
                .ok()
                .and_then(|rt| RescuePayload::recorded(&rt))
        } else {
            None
        };
        VmStatus {
            rescue: rescue_payload.is_some(),
            rescue_payload,
            name: name.to_string(),
            state: probe.state,
            defined: spec.is_ok() || error.as_deref() != Some("no definition"),
            autostart,
            stop_timeout_secs: stop_timeout,
            vcpus,
            memory_bytes: memory,
            uptime_secs: uptime,
            devices,
            pid: probe.pid,
            error,
            info: if detail {
                probe.info.and_then(|i| serde_json::to_value(i).ok())
            } else {
                None
            },
        }
    }

    /// Asks a VM's runtime directory and VMM what state it is in. A directory whose VMM is gone
    /// (or holds no VM) is cleaned, but only under the VM's lock: `locked` says the caller
    /// holds it, else it is tried, and a lock held elsewhere means a start is under way.
    async fn probe(&self, rt: &VmRuntime, locked: bool) -> Probe {
        let mut p = Probe::stopped();
        if !rt.exists() {
            return p;
        }
        let meta = rt.read_meta();
        p.booted_at = meta.as_ref().and_then(|m| m.booted_at);
        p.pid = rt.read_pid().filter(|&pid| supervisor::pid_alive(pid, rt));
        let e = match self.client(rt).info().await {
            Ok(info) => {
                p.state = info.state.into();
                p.info = Some(info);
                return p;
            }
            Err(e) => e,
        };
        if p.pid.is_none() {
            // The pidfile is missing or garbled: look for the VMM itself before believing
            // it gone.
            p.pid = self.find_vmm(rt).first().copied();
        }
        let no_vm = matches!(e, VmmError::Api { .. });
        if e.is_timeout() || (!no_vm && p.pid.is_some()) {
            // Hung, or alive with a broken socket: never clean up a live VMM behind its back.
            p.state = RunState::Unresponsive;
            p.failure = Some(Self::vmm_err(&rt.name)(e));
            return p;
        }
        let _lock = if locked {
            None
        } else {
            match self.cfg.run_root.lock(&rt.name, Duration::ZERO).await {
                Ok(l) => Some(l),
                Err(_) => {
                    p.state = RunState::Starting;
                    return p;
                }
            }
        };
        tracing::info!(vm = %rt.name, error = %e, "no VM behind this runtime dir: cleaning it");
        if no_vm {
            if let Err(e) = self.teardown(rt, Duration::from_secs(2)).await {
                p.state = RunState::Unresponsive;
                p.failure = Some(e);
                return p;
            }
        } else {
            self.supervisor().await.forget(rt, meta.as_ref()).await;
            rt.remove();
        }
        supervisor::release_orphaned(&self.cfg.device_host(), rt).await;
        p.pid = None;
        p
    }

    /// Starts a VM: launch its VMM under the supervisor, `vm.create`, `vm.boot`. On failure the
    /// half-started VMM is stopped and the runtime directory removed.
    pub async fn start(&self, name: &str) -> Result<VmStatus> {
        self.start_as(name, Launch::Normal).await
    }

    async fn start_as(&self, name: &str, how: Launch) -> Result<VmStatus> {
        let mut spec = self.defs()?.get(name)?;
        match &how {
            Launch::Rescue(payload) => payload.apply(&mut spec),
            Launch::Restore(_) if !spec.vfio.is_empty() => {
                return Err(SnapshotError::Vfio { vm: name.into() }.into())
            }
            _ => {}
        }
        let rt = self.cfg.run_root.vm(name)?;
        let wait = self.cfg.ready_timeout + self.cfg.boot_timeout + self.cfg.api_timeout;
        let _lock = self.cfg.run_root.lock(name, wait).await?;
        let probe = self.probe(&rt, true).await;
        match probe.state {
            RunState::Stopped => {}
            RunState::Shutdown | RunState::Created => {
                // The guest powered itself off, or a VMM holds no VM: start over.
                self.teardown(&rt, Duration::from_secs(5)).await?;
            }
            _ => return Err(ManagerError::AlreadyRunning(name.to_string())),
        }
        // Never two VMMs for one VM, even when its runtime directory was lost under a live one.
        if let Some(&pid) = self.find_vmm(&rt).first() {
            return Err(ManagerError::VmmAlive {
                name: name.to_string(),
                pid,
            });
        }
        let bin = super::launch::find_ch_bin(self.cfg.ch_bin.as_deref())
            .map_err(SupervisorError::from)?;
        let config = defs::vm_config(&spec, &rt)?;
        // Opened before anything is launched: a missing macvtap interface leaves nothing behind.
        let taps = fdpass::open_macvtaps(&spec, &self.cfg.host_root)?;
        let host = self.cfg.device_host();
        supervisor::settle_before_start(&host, &rt).await?;
        rt.create_fresh()?;
        if let Launch::Rescue(payload) = &how {
            if let Err(e) = payload.record(&rt) {
                rt.remove();
                return Err(e.into());
            }
        }
        supervisor::prepare_devices(&host, &spec)?;
        let devices = self.cfg.device_launch(&spec);
        let restore = match &how {
            Launch::Restore(dir) => Some(dir.as_path()),
            _ => None,
        };
        if let Err(e) = self
            .launch_and_boot(&rt, &bin, &config, &taps, devices.as_ref(), restore)
            .await
        {
            if let Err(te) = self.teardown(&rt, Duration::from_secs(5)).await {
                // The directory stays, so the next look finds that VMM again.
                tracing::error!(vm = name, error = %te, "stopping the VMM after a failed start");
                return Err(e);
            }
            if let Err(re) = supervisor::release_devices(&host, &rt).await {
                tracing::error!(vm = name, error = %re, "releasing devices after a failed start");
            }
            return Err(e);
        }
        drop(_lock);
        // vm.boot returned: the VM runs. Not asked again, to keep start as fast as the bare
        // create + boot (the console's next refresh asks anyway).
        let probe = Probe {
            state: RunState::Running,
            pid: rt.read_pid(),
            booted_at: rt.read_meta().and_then(|m| m.booted_at),
            ..Probe::stopped()
        };
        Ok(self.row(name, Ok(spec), probe, false))
    }

    async fn launch_and_boot(
        &self,
        rt: &VmRuntime,
        bin: &std::path::Path,
        config: &serde_json::Value,
        taps: &[MacvtapNic],
        devices: Option<&DeviceLaunch>,
        restore: Option<&std::path::Path>,
    ) -> Result<()> {
        let sup = self.supervisor().await;
        let mut meta = sup.launch(rt, bin, devices).await?;
        rt.write_meta(&meta)?;
        sup.wait_ready(rt, meta.pid, self.cfg.ready_timeout)
            .await
            .map_err(|e| match e {
                supervisor::ReadyError::Exited(log) => ManagerError::VmmExited {
                    name: rt.name.clone(),
                    log,
                },
                supervisor::ReadyError::Timeout(log) => ManagerError::NotReady {
                    name: rt.name.clone(),
                    secs: self.cfg.ready_timeout.as_secs(),
                    log,
                },
            })?;
        let client = self.client(rt).with_timeout(self.cfg.boot_timeout);
        let err = Self::vmm_err(&rt.name);
        if let Some(dir) = restore {
            // A restored VM comes back paused, as it was when the snapshot was taken.
            client
                .restore(&format!("file://{}", dir.display()))
                .await
                .map_err(&err)?;
            self.start_serial_keeper(rt, config).await;
            client.resume().await.map_err(&err)?;
        } else {
            client.create(config).await.map_err(&err)?;
            self.start_serial_keeper(rt, config).await;
            // macvtap NICs go in between: their descriptors cannot travel in vm.create's body.
            fdpass::attach_macvtaps(&rt.api_socket, taps, self.cfg.boot_timeout).await?;
            client.boot().await.map_err(err)?;
        }
        meta.booted_at = Some(now_secs());
        rt.write_meta(&meta)?;
        Ok(())
    }

    /// The keeper of a VM whose serial line is its socket: started before `vm.boot` so it
    /// sees the first line the guest prints; it waits for the socket and leaves when the
    /// runtime directory goes. Only this program can be it: a process embedding the library
    /// (a test harness) starts none, and viewers then attach to the socket directly.
    async fn start_serial_keeper(&self, rt: &VmRuntime, config: &serde_json::Value) {
        if config.pointer("/serial/mode").and_then(|m| m.as_str()) != Some("Socket") {
            return;
        }
        let exe = self
            .cfg
            .self_exe
            .clone()
            .or_else(|| std::env::current_exe().ok())
            .filter(|p| p.file_name().is_some_and(|n| n == "phyllome"));
        let Some(exe) = exe else { return };
        let log_max = std::env::var(crate::serial::log::MAX_ENV)
            .ok()
            .and_then(|v| v.parse().ok());
        let argv = crate::serial::keeper::argv(
            &exe,
            self.cfg.run_root.path(),
            self.cfg.state_dir.as_deref(),
            &rt.name,
            log_max,
        );
        if let Err(e) = self.supervisor().await.launch_keeper(rt, &argv).await {
            // The VM runs without a log; the console can still attach to the socket.
            tracing::warn!(vm = %rt.name, error = %e, "cannot start the serial keeper");
        }
    }

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
    async fn teardown(&self, rt: &VmRuntime, grace: Duration) -> Result<()> {
        let client = self
            .client(rt)
            .with_timeout(grace.min(self.cfg.api_timeout));
        // A VMM that did not even answer will not exit by itself either.
        let grace = match client.vmm_shutdown().await {
            Err(e) if e.is_timeout() => Duration::ZERO,
            _ => grace,
        };
        self.kill_vmm(rt, grace).await
    }

    /// Waits `grace` for the VMM to exit, kills whatever is left, and removes the runtime
    /// directory once nothing is.
    async fn kill_vmm(&self, rt: &VmRuntime, grace: Duration) -> Result<()> {
        let meta = rt.read_meta();
        let pid = rt.read_pid();
        self.supervisor()
            .await
            .ensure_gone(rt, meta.as_ref(), pid, &self.vmm_bins(rt), grace)
            .await?;
        rt.remove();
        Ok(())
    }

    /// Ends the grace period of a graceful stop of `name` running in this process: it goes on
    /// to `vm.shutdown` at once. False when there is none (nothing was done).
    pub fn cut_short(&self, name: &str) -> bool {
        let Ok(w) = self.waiting.lock() else {
            return false;
        };
        match w.get(name) {
            // A stored permit: works even before the stop starts waiting.
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }

    fn register_waiting(&self, name: &str) -> Option<WaitingGuard<'_>> {
        let notify = Arc::new(tokio::sync::Notify::new());
        let mut w = self.waiting.lock().ok()?;
        w.insert(name.to_string(), notify.clone());
        Some(WaitingGuard {
            waiting: &self.waiting,
            name: name.to_string(),
            notify,
        })
    }

    /// Stops a VM and its VMM. Graceful: the ACPI power button, waiting (events and
    /// `vm.info`) up to the timeout for the guest to power off, then `vm.shutdown`.
    pub async fn stop(&self, name: &str, mode: StopMode) -> Result<StopOutcome> {
        // Registered before the lock, so a force asked for meanwhile is not lost.
        let cut = match mode {
            StopMode::Graceful { .. } => self.register_waiting(name),
            StopMode::Force => None,
        };
        let rt = self.cfg.run_root.vm(name)?;
        let wait = match mode {
            StopMode::Graceful { timeout } => timeout + self.cfg.api_timeout * 2,
            StopMode::Force => self.cfg.api_timeout * 2,
        };
        let _lock = match self.cfg.run_root.lock(name, wait).await {
            // A start stuck on a hung VMM holds the lock until its boot timeout; forcing off
            // does not wait for that (the start finds its VMM gone and cleans up after it).
            Err(RuntimeError::LockBusy(_)) if mode == StopMode::Force => None,
            lock => Some(lock?),
        };
        let probe = self.probe(&rt, true).await;
        // Found by its command line although its runtime directory is gone.
        let lost = !probe.state.has_vmm();
        if lost && self.find_vmm(&rt).is_empty() {
            return Err(ManagerError::NotRunning(name.to_string()));
        }
        let mut outcome = StopOutcome::Forced;
        if lost || (probe.timed_out() && mode == StopMode::Force) {
            // Nothing to ask, or its API is stuck: asking only adds timeouts before the kill.
            self.kill_vmm(&rt, Duration::ZERO).await?;
        } else {
            let client = self.client(&rt);
            let err = Self::vmm_err(name);
            match mode {
                StopMode::Graceful { timeout } => {
                    outcome = StopOutcome::VmmOnly;
                    if matches!(probe.state, RunState::Running | RunState::Paused) {
                        if probe.state == RunState::Paused {
                            client.resume().await.map_err(&err)?;
                        }
                        client.power_button().await.map_err(&err)?;
                        let cut = cut.as_ref().map(|g| &*g.notify);
                        outcome = match self.wait_shutdown(&rt, &client, timeout, cut).await {
                            Waited::Off => StopOutcome::PoweredOff,
                            Waited::TimedOut => StopOutcome::TimedOut,
                            Waited::CutShort => StopOutcome::CutShort,
                        };
                        if outcome != StopOutcome::PoweredOff {
                            tracing::info!(vm = name, ?outcome, "grace period over: vm.shutdown");
                            client.shutdown().await.map_err(&err)?;
                        }
                    }
                }
                StopMode::Force => {
                    let short =
                        client.with_timeout(self.cfg.api_timeout.min(Duration::from_secs(2)));
                    let _ = short.shutdown().await;
                }
            }
            self.teardown(&rt, Duration::from_secs(5)).await?;
        }
        supervisor::release_devices(&self.cfg.device_host(), &rt).await?;
        Ok(outcome)
    }

    /// Off once the events or `vm.info` say Shutdown (or the VMM is gone).
    async fn wait_shutdown(
        &self,
        rt: &VmRuntime,
        client: &ChClient,
        timeout: Duration,
        cut: Option<&tokio::sync::Notify>,
    ) -> Waited {
        let mut tail = EventTail::new(&rt.event_log);
        let _ = tail.poll(); // history before the button press
        let deadline = tokio::time::Instant::now() + timeout;
        let step = Duration::from_millis(100);
        let mut ticks = 0u32;
        loop {
            if tail.poll().iter().any(|e| {
                matches!(
                    e.state_hint(),
                    Some(StateHint::Shutdown | StateHint::Stopped)
                )
            }) {
                return Waited::Off;
            }
            // vm.info every half second as well: events can be lost if the file is replaced.
            if ticks.is_multiple_of(5) {
                match client.info().await {
                    Ok(info) if info.state == VmState::Shutdown => return Waited::Off,
                    Err(VmmError::Connect { .. }) => return Waited::Off,
                    _ => {}
                }
            }
            ticks += 1;
            if tokio::time::Instant::now() >= deadline {
                return Waited::TimedOut;
            }
            match cut {
                Some(cut) => tokio::select! {
                    () = tokio::time::sleep(step) => {}
                    () = cut.notified() => return Waited::CutShort,
                },
                None => tokio::time::sleep(step).await,
            }
        }
    }

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
