//! A stand-in for systemd's service manager, so the systemd supervision path runs in tests on
//! machines whose PID 1 is not systemd.
//!
//! [`Bus`] runs a private `dbus-daemon` on a Unix socket in a temporary directory.
//! [`FakeSystemd`] owns the name `org.freedesktop.systemd1` on it and serves an
//! `org.freedesktop.systemd1.Manager` object at `/org/freedesktop/systemd1` with the methods
//! phyllome calls, with systemd's signatures (org.freedesktop.systemd1(5)):
//! `StartTransientUnit(s, s, a(sv), a(sa(sv))) → o`, `StopUnit(s, s) → o`, `KillUnit(s, s, i)`,
//! `ResetFailedUnit(s)`, `ListUnitsByPatterns(as, as) → a(ssssssouso)`.
//!
//! It really runs a unit's ExecStart command line (as a child of the test process, so of no
//! phyllome process: a console can exit and the "unit" keeps running), tracks the unit's state
//! until its main process exits, and records every call with the names and D-Bus types of the
//! properties it got. Like systemd it refuses unknown properties, properties of the wrong type,
//! invalid unit names and job modes, and a second unit of a name in use.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::{OwnedObjectPath, OwnedVariant, Variant};

/// Where `dbus-daemon` is, if installed.
pub fn dbus_daemon() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|d| d.join("dbus-daemon"))
        .find(|p| p.is_file())
}

/// Says loudly that a test did not run for want of `dbus-daemon`; under CI (which installs it)
/// that is a failure, not a skip.
pub fn skip_without_dbus(test: &str) {
    let msg = format!(
        "SKIPPED: {test}: dbus-daemon is not installed (apt-get install dbus-daemon); \
         the systemd supervision path was NOT tested"
    );
    // Straight to stderr: libtest hides eprintln! of passing tests, and a skip must show.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n\n").as_bytes(),
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{msg} — CI installs dbus-daemon, so this is an error here"
    );
}

/// A private message bus; the daemon is killed on drop.
pub struct Bus {
    child: Child,
    pub address: String,
    pub dir: tempfile::TempDir,
}

impl Bus {
    /// Starts `dbus-daemon` on `unix:path=DIR/bus`; None when it is not installed.
    pub fn start() -> Option<Bus> {
        let bin = dbus_daemon()?;
        let dir = tempfile::Builder::new()
            .prefix("fake-systemd")
            .tempdir()
            .expect("tempdir");
        let socket = dir.path().join("bus");
        // A bus that lets its one user (us) own any name and call anything: the policy of a
        // session bus, without the session bus's activation directories.
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        );
        let conf = dir.path().join("bus.conf");
        std::fs::write(&conf, config).expect("write bus.conf");
        let mut child = Command::new(bin)
            .arg(format!("--config-file={}", conf.display()))
            .arg("--nofork")
            .arg("--nopidfile")
            .arg("--print-address=1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dbus-daemon");
        // The daemon prints its address once it listens.
        let stdout = child.stdout.take().expect("dbus-daemon stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let address = line.trim().to_string();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed no address: {line:?}"
        );
        Some(Bus {
            child,
            address,
            dir,
        })
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One method call as the fake manager received it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `StartTransientUnit`, `StopUnit`, ...
    pub method: String,
    pub unit: String,
    /// The other string/number arguments (mode, whom, signal), in order.
    pub args: Vec<String>,
    /// StartTransientUnit's properties: name and D-Bus signature, in the order sent.
    pub properties: Vec<(String, String)>,
    /// StartTransientUnit's string properties (Description, KillMode, ...) by name.
    pub strings: BTreeMap<String, String>,
    /// ExecStart as (path, argv, ignore_failure).
    pub exec_start: Vec<(String, Vec<String>, bool)>,
}

/// A unit the fake manager knows.
#[derive(Debug, Clone)]
pub struct UnitState {
    pub active_state: String,
    pub sub_state: String,
    pub main_pid: u32,
    pub description: String,
    /// CollectMode=inactive-or-failed: forgotten as soon as it stops.
    pub collect: bool,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    units: BTreeMap<String, UnitState>,
    next_job: u32,
}

/// Environment of the units' processes (systemd gives services a clean environment: test
/// knobs for the VMM double are set here, not in the phyllome process that asks).
#[derive(Clone, Default)]
pub struct UnitEnv(pub Vec<(String, String)>);

/// The fake manager, served on a tokio runtime of its own thread until dropped; on drop every
/// unit still running is killed.
pub struct FakeSystemd {
    state: Arc<Mutex<State>>,
    // Dropped after the units are killed (fields drop after `drop`'s body).
    _served: Served,
}

/// An object served under a well-known name on a private bus, on a tokio runtime of its own
/// thread, until dropped. Panics (naming `name`) when it cannot be served within 10 s.
pub struct Served {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    pub fn start<I: zbus::object_server::Interface>(
        address: &str,
        name: &'static str,
        path: &'static str,
        object: I,
    ) -> Served {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let address = address.to_string();
        let thread = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                let conn = async {
                    zbus::connection::Builder::address(address.as_str())
                        .name(name)
                        .serve_at(path, object)
                        .build()
                        .await
                };
                match conn.await {
                    Ok(conn) => {
                        let _ = ready_tx.send(Ok(()));
                        let _ = stop_rx.await;
                        drop(conn);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                    }
                }
            });
        });
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the stand-in {name} cannot serve on the bus: {e}"),
            Err(_) => panic!("the stand-in {name} did not come up within 10 s"),
        }
        Served {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// systemd's errors for the cases the fake refuses, with systemd's error names.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop")]
enum SdError {
    #[zbus(error)]
    ZBus(zbus::Error),
    #[zbus(name = "systemd1.NoSuchUnit")]
    NoSuchUnit(String),
    #[zbus(name = "systemd1.UnitExists")]
    UnitExists(String),
    #[zbus(name = "DBus.Error.InvalidArgs")]
    InvalidArgs(String),
    #[zbus(name = "DBus.Error.Failed")]
    Failed(String),
}

struct Manager {
    state: Arc<Mutex<State>>,
    env: UnitEnv,
    log_dir: PathBuf,
}

/// The transient properties phyllome may set, with the signatures systemd documents for them.
const KNOWN_PROPERTIES: &[(&str, &str)] = &[
    ("Description", "s"),
    ("ExecStart", "a(sasb)"),
    ("KillMode", "s"),
    ("Type", "s"),
    ("CollectMode", "s"),
    ("TimeoutStopUSec", "t"),
    ("Environment", "as"),
    ("WorkingDirectory", "s"),
    ("Restart", "s"),
];

const JOB_MODES: &[&str] = &[
    "replace",
    "fail",
    "isolate",
    "ignore-dependencies",
    "ignore-requirements",
    "flush",
    "triggering",
    "restart-dependencies",
];

/// systemd's unit_name_is_valid(), for plain (non-template) service names.
fn valid_unit_name(name: &str) -> bool {
    let Some(prefix) = name.strip_suffix(".service") else {
        return false;
    };
    !prefix.is_empty()
        && name.len() <= 255
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\".contains(&b))
}

/// The unit's object path, with the bus-path escaping systemd uses (`_2d` for '-', ...).
fn unit_path(name: &str) -> OwnedObjectPath {
    let mut label = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            label.push(b as char);
        } else {
            label.push_str(&format!("_{b:02x}"));
        }
    }
    OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/unit/{label}"))
        .unwrap_or_else(|_| OwnedObjectPath::try_from("/org/freedesktop/systemd1/unit").unwrap())
}

impl Manager {
    fn job(&self, state: &mut State) -> OwnedObjectPath {
        state.next_job += 1;
        OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/job/{}", state.next_job))
            .unwrap_or_else(|_| OwnedObjectPath::try_from("/org/freedesktop/systemd1/job").unwrap())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, method: &str, unit: &str, args: &[String]) {
        self.lock().calls.push(Call {
            method: method.into(),
            unit: unit.into(),
            args: args.to_vec(),
            properties: Vec::new(),
            strings: BTreeMap::new(),
            exec_start: Vec::new(),
        });
    }

    fn signal(pid: u32, sig: rustix::process::Signal) {
        if let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    /// Runs the unit's command and a thread that waits for it, then marks the unit stopped
    /// (or forgets it, with CollectMode=inactive-or-failed).
    fn spawn(&self, unit: &str, exec: &(String, Vec<String>, bool)) -> Result<u32, SdError> {
        let (path, argv, _) = exec;
        let log = self.log_dir.join(format!("{unit}.log"));
        let out = std::fs::File::create(&log).map_err(|e| SdError::Failed(e.to_string()))?;
        let err = out
            .try_clone()
            .map_err(|e| SdError::Failed(e.to_string()))?;
        let mut cmd = Command::new(path);
        cmd.args(argv.iter().skip(1))
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(self.env.0.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .current_dir("/");
        {
            // Its own process group, as systemd's services are out of any terminal's job
            // control.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| SdError::Failed(format!("Failed to spawn {path}: {e}")))?;
        let pid = child.id();
        let state = self.state.clone();
        let unit = unit.to_string();
        std::thread::spawn(move || {
            let status = child.wait();
            let ok = status.map(|s| s.success()).unwrap_or(false);
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(u) = st.units.get_mut(&unit).filter(|u| u.main_pid == pid) {
                if u.collect {
                    st.units.remove(&unit);
                } else if ok || u.active_state == "deactivating" {
                    u.active_state = "inactive".into();
                    u.sub_state = "dead".into();
                } else {
                    u.active_state = "failed".into();
                    u.sub_state = "failed".into();
                }
            }
        });
        Ok(pid)
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn start_transient_unit(
        &self,
        name: String,
        mode: String,
        properties: Vec<(String, OwnedVariant)>,
        aux: Vec<(String, Vec<(String, OwnedVariant)>)>,
    ) -> Result<OwnedObjectPath, SdError> {
        let mut call = Call {
            method: "StartTransientUnit".into(),
            unit: name.clone(),
            args: vec![mode.clone(), format!("aux={}", aux.len())],
            properties: Vec::new(),
            strings: BTreeMap::new(),
            exec_start: Vec::new(),
        };
        for (key, value) in &properties {
            let sig = value.value_signature().to_string();
            call.properties.push((key.clone(), sig.clone()));
            if let Variant::Str(s) = &**value {
                call.strings.insert(key.clone(), s.to_string());
            }
            if key == "ExecStart" {
                call.exec_start = decode_exec_start(value).unwrap_or_default();
            }
        }
        self.lock().calls.push(call.clone());

        if !valid_unit_name(&name) {
            return Err(SdError::InvalidArgs(format!(
                "Unit name {name} is not valid."
            )));
        }
        if !JOB_MODES.contains(&mode.as_str()) {
            return Err(SdError::InvalidArgs(format!("Job mode {mode} invalid.")));
        }
        for (key, sig) in &call.properties {
            match KNOWN_PROPERTIES.iter().find(|(k, _)| k == key) {
                None => {
                    return Err(SdError::InvalidArgs(format!(
                        "Cannot set property {key}, or unknown property."
                    )))
                }
                Some((_, want)) if want != sig => {
                    return Err(SdError::InvalidArgs(format!(
                        "Property {key} takes {want}, got {sig}."
                    )))
                }
                Some(_) => {}
            }
        }
        let exec = match call.exec_start.as_slice() {
            [one] if !one.1.is_empty() && one.0.starts_with('/') => one.clone(),
            _ => {
                return Err(SdError::InvalidArgs(
                    "Service has no ExecStart= with an absolute path".into(),
                ))
            }
        };
        {
            let st = self.lock();
            if let Some(u) = st.units.get(&name) {
                if u.active_state != "inactive" && u.active_state != "failed" {
                    return Err(SdError::UnitExists(format!(
                        "Unit {name} was already loaded or has a fragment file."
                    )));
                }
            }
        }
        let pid = self.spawn(&name, &exec)?;
        let mut st = self.lock();
        st.units.insert(
            name.clone(),
            UnitState {
                active_state: "active".into(),
                sub_state: "running".into(),
                main_pid: pid,
                description: call.strings.get("Description").cloned().unwrap_or_default(),
                collect: call.strings.get("CollectMode").map(String::as_str)
                    == Some("inactive-or-failed"),
            },
        );
        Ok(self.job(&mut st))
    }

    async fn stop_unit(&self, name: String, mode: String) -> Result<OwnedObjectPath, SdError> {
        self.record("StopUnit", &name, std::slice::from_ref(&mode));
        if !JOB_MODES.contains(&mode.as_str()) {
            return Err(SdError::InvalidArgs(format!("Job mode {mode} invalid.")));
        }
        let mut st = self.lock();
        let Some(u) = st.units.get_mut(&name) else {
            return Err(SdError::NoSuchUnit(format!("Unit {name} not loaded.")));
        };
        if u.active_state == "active" {
            // KillMode=mixed: SIGTERM to the main process only.
            u.active_state = "deactivating".into();
            u.sub_state = "stop-sigterm".into();
            Self::signal(u.main_pid, rustix::process::Signal::TERM);
        }
        Ok(self.job(&mut st))
    }

    async fn kill_unit(&self, name: String, whom: String, signal: i32) -> Result<(), SdError> {
        self.record("KillUnit", &name, &[whom.clone(), signal.to_string()]);
        if !["main", "control", "all"].contains(&whom.as_str()) {
            return Err(SdError::InvalidArgs(format!(
                "Invalid whom argument: {whom}"
            )));
        }
        let sig = rustix::process::Signal::from_named_raw(signal)
            .ok_or_else(|| SdError::InvalidArgs(format!("Signal number out of range: {signal}")))?;
        let st = self.lock();
        let Some(u) = st.units.get(&name) else {
            return Err(SdError::NoSuchUnit(format!("Unit {name} not loaded.")));
        };
        if whom != "control" {
            Self::signal(u.main_pid, sig);
        }
        Ok(())
    }

    async fn reset_failed_unit(&self, name: String) -> Result<(), SdError> {
        self.record("ResetFailedUnit", &name, &[]);
        let mut st = self.lock();
        match st.units.get(&name) {
            None => Err(SdError::NoSuchUnit(format!("Unit {name} not loaded."))),
            Some(u) if u.active_state == "failed" => {
                st.units.remove(&name);
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    #[allow(clippy::type_complexity)]
    async fn list_units_by_patterns(
        &self,
        states: Vec<String>,
        patterns: Vec<String>,
    ) -> Vec<(
        String,
        String,
        String,
        String,
        String,
        String,
        OwnedObjectPath,
        u32,
        String,
        OwnedObjectPath,
    )> {
        self.record(
            "ListUnitsByPatterns",
            &patterns.join(","),
            &[states.join(",")],
        );
        let st = self.lock();
        st.units
            .iter()
            .filter(|(name, u)| {
                (states.is_empty() || states.contains(&u.active_state))
                    && (patterns.is_empty() || patterns.iter().any(|p| glob(p, name)))
            })
            .map(|(name, u)| {
                (
                    name.clone(),
                    u.description.clone(),
                    "loaded".to_string(),
                    u.active_state.clone(),
                    u.sub_state.clone(),
                    String::new(),
                    unit_path(name),
                    0u32,
                    String::new(),
                    OwnedObjectPath::try_from("/").unwrap_or_else(|_| unit_path(name)),
                )
            })
            .collect()
    }
}

/// `a(sasb)` into (path, argv, ignore_failure) triples.
fn decode_exec_start(value: &Variant<'_>) -> Option<Vec<(String, Vec<String>, bool)>> {
    let Variant::Array(items) = value else {
        return None;
    };
    items
        .iter()
        .map(|item| {
            let Variant::Structure(s) = item else {
                return None;
            };
            match s.fields() {
                [Variant::Str(path), Variant::Array(argv), Variant::Bool(ignore)] => {
                    let argv = argv
                        .iter()
                        .map(|a| match a {
                            Variant::Str(s) => Some(s.to_string()),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()?;
                    Some((path.to_string(), argv, *ignore))
                }
                _ => None,
            }
        })
        .collect()
}

/// fnmatch(3) with `*` and `?`, enough for `phyllome-vm-*.service`.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

impl FakeSystemd {
    /// Serves the manager on `address` until dropped. `env` is the units' environment.
    pub fn serve(address: &str, env: UnitEnv, log_dir: &Path) -> FakeSystemd {
        let state = Arc::new(Mutex::new(State::default()));
        let manager = Manager {
            state: state.clone(),
            env,
            log_dir: log_dir.to_path_buf(),
        };
        let served = Served::start(
            address,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            manager,
        );
        FakeSystemd {
            state,
            _served: served,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state
            .lock()
            .map(|s| s.calls.clone())
            .unwrap_or_default()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    pub fn unit(&self, name: &str) -> Option<UnitState> {
        self.state.lock().ok()?.units.get(name).cloned()
    }

    /// Waits until the unit is gone or stopped; true if it is.
    pub fn wait_unit_gone(&self, name: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.unit(name) {
                None => return true,
                Some(u) if u.active_state == "inactive" || u.active_state == "failed" => {
                    return true
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        if let Ok(st) = self.state.lock() {
            for u in st.units.values() {
                if u.active_state != "inactive" && u.active_state != "failed" {
                    Manager::signal(u.main_pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}
