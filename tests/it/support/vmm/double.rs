//! Finding and running the Cloud Hypervisor test double (`examples/ch_double.rs`) from a test.
//!
//! `cargo test` builds examples next to the test binaries: `target/<profile>/deps/<test>` runs,
//! the double is `target/<profile>/examples/ch_double`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of the built double; panics with the command that builds it when it is missing.
pub fn ch_double_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // deps/<test binary> → <profile>/examples/ch_double
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary under target/<profile>/deps");
    let path = profile_dir.join("examples").join("ch_double");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds it, a filtered run needs \
         `cargo build --example ch_double` first",
        path.display()
    );
    // A filtered `cargo test --test x` does not rebuild examples: refuse a stale double rather
    // than test against yesterday's behaviour.
    let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/vmm");
    for source in ["ch_double.rs", "ch_double_vm.rs", "openapi.rs"] {
        let changed = std::fs::metadata(support.join(source))
            .and_then(|m| m.modified())
            .ok();
        if let (Some(built), Some(changed)) = (built, changed) {
            assert!(
                changed <= built,
                "{} is older than tests/it/support/vmm/{source}: run `cargo build --example ch_double`",
                path.display()
            );
        }
    }
    path
}

/// A running double in its own temporary directory, killed (SIGTERM, then SIGKILL) on drop.
pub struct Double {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub api_socket: PathBuf,
    pub events: PathBuf,
    pub serial: PathBuf,
    pub request_log: PathBuf,
}

impl Double {
    /// Starts the double with `--api-socket path=…` and `--event-monitor path=…`, plus the
    /// given environment (fault knobs), and waits until its socket exists.
    pub fn spawn(env: &[(&str, &str)]) -> Double {
        Double::spawn_with(env, &[])
    }

    pub fn spawn_with(env: &[(&str, &str)], extra_args: &[&str]) -> Double {
        let dir = tempfile::Builder::new()
            .prefix("ch-double")
            .tempdir()
            .expect("tempdir");
        let api_socket = dir.path().join("api.sock");
        let events = dir.path().join("events.json");
        let serial = dir.path().join("serial.sock");
        let request_log = dir.path().join("requests.jsonl");
        let mut cmd = Command::new(ch_double_path());
        cmd.arg("--api-socket")
            .arg(format!("path={}", api_socket.display()))
            .arg("--event-monitor")
            .arg(format!("path={}", events.display()))
            .args(extra_args)
            .env("CH_DOUBLE_REQUEST_LOG", &request_log)
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn ch_double");
        let d = Double {
            child,
            dir,
            api_socket,
            events,
            serial,
            request_log,
        };
        d.wait_for(&d.api_socket, Duration::from_secs(10));
        d
    }

    /// Waits for a path to appear (the double creates sockets once it listens).
    pub fn wait_for(&self, path: &Path, limit: Duration) {
        let start = Instant::now();
        while !path.exists() {
            assert!(
                start.elapsed() < limit,
                "{} did not appear within {limit:?}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the process to exit by itself; `None` if it is still running after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every request the double received, as (method, route, body).
    pub fn requests(&self) -> Vec<(String, String, serde_json::Value)> {
        let text = std::fs::read_to_string(&self.request_log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                (s("method"), s("route"), v["body"].clone())
            })
            .collect()
    }

    /// The event-monitor events so far, as (source, event).
    pub fn events(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        serde_json::Deserializer::from_str(&text)
            .into_iter::<serde_json::Value>()
            .filter_map(Result::ok)
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                (s("source"), s("event"))
            })
            .collect()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32)?;
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        self.wait_exit(Duration::from_secs(5))
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        if self.terminate().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The VMM pid a VM's run directory records (`<run root>/vms/NAME/vmm.pid`).
pub fn vmm_pid(run_root: &Path, name: &str) -> Option<u32> {
    read_pid(&run_root.join("vms").join(name))
}

fn read_pid(vm_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(vm_dir.join("vmm.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// SIGKILLs every VMM recorded under `run_root`, and every process whose command line names
/// a path under `run_root/vms/` (a VMM whose pidfile is garbled or gone, its device
/// supervisor): what a test's cleanup does so that nothing it started outlives it.
pub fn kill_vmms(run_root: &Path) {
    let kill = |pid| phyllome::vmm::launch::signal(pid, rustix::process::Signal::KILL);
    if let Ok(dirs) = std::fs::read_dir(run_root.join("vms")) {
        for d in dirs.flatten() {
            if let Some(pid) = read_pid(&d.path()) {
                kill(pid);
            }
        }
    }
    processes_naming(&run_root.join("vms"))
        .into_iter()
        .for_each(kill);
}

/// Pids (other than this process) whose command line has an argument containing `dir/`.
pub fn processes_naming(dir: &Path) -> Vec<u32> {
    let mut marker = dir.as_os_str().as_encoded_bytes().to_vec();
    marker.push(b'/');
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline
                .split(|&b| b == 0)
                .any(|arg| arg.windows(marker.len()).any(|w| w == marker.as_slice()))
        })
        .collect()
}
