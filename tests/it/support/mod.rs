//! What the integration tests share: the CLI runner (`cli`), the console driver (`ui`), the
//! VMMs (`vmm`: the test double, the real Cloud Hypervisor, CH's API spec), the qemu guest
//! with a real kernel (`qemu`), the stand-in systemd (`fake_systemd`), and the two helpers
//! below for what every test file needs once: snapshots and the process environment.

pub mod cli;
pub mod fake_logind;
pub mod fake_systemd;
pub mod pty;
pub mod qemu;
pub mod ui;
pub mod vmm;

use std::ffi::OsString;
use std::fmt::Display;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Checks `value` against `snapshots/NAME.snap` (the workspace's one snapshot folder; the
/// name is used as given, with no module prefix).
pub fn snap(name: &str, value: impl Display) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, value.to_string()));
}

/// All tests run in one process: one that must change this process's environment (because
/// the code under test runs in this process and reads it) holds this for as long as the
/// change matters, and puts the old values back when dropped. Commands are given their
/// settings directly instead (`cli::Cli::set`).
pub struct EnvLock {
    _guard: MutexGuard<'static, ()>,
    saved: Vec<(String, Option<OsString>)>,
}

static ENV: Mutex<()> = Mutex::new(());

impl EnvLock {
    pub fn take() -> EnvLock {
        // A test that failed while holding it left the environment restored (see Drop).
        let guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
        EnvLock {
            _guard: guard,
            saved: Vec::new(),
        }
    }

    pub fn set(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) {
        self.save(key);
        std::env::set_var(key, value);
    }

    pub fn remove(&mut self, key: &str) {
        self.save(key);
        std::env::remove_var(key);
    }

    fn save(&mut self, key: &str) {
        if !self.saved.iter().any(|(k, _)| k == key) {
            self.saved.push((key.to_string(), std::env::var_os(key)));
        }
    }
}

impl Drop for EnvLock {
    fn drop(&mut self) {
        for (key, value) in self.saved.drain(..).rev() {
            match value {
                Some(v) => std::env::set_var(&key, v),
                None => std::env::remove_var(&key),
            }
        }
    }
}

/// CPU figures a test measures (a busy loop must get a good part of a core) mean something
/// only while no other test of this process keeps cores busy: measuring tests hold
/// [`cpu_alone`], tests whose guests spin (the real VMM's, qemu's) hold [`cpu_busy`]. Busy
/// holders run together; a measuring test waits for them to end and goes first after.
struct Gate {
    busy: usize,
    alone: bool,
    waiting_alone: usize,
}

static CPU: (Mutex<Gate>, Condvar) = (
    Mutex::new(Gate {
        busy: 0,
        alone: false,
        waiting_alone: 0,
    }),
    Condvar::new(),
);

fn gate() -> MutexGuard<'static, Gate> {
    CPU.0.lock().unwrap_or_else(|e| e.into_inner())
}

fn wait(g: MutexGuard<'static, Gate>) -> MutexGuard<'static, Gate> {
    CPU.1.wait(g).unwrap_or_else(|e| e.into_inner())
}

/// Held while a test keeps cores busy.
pub struct CpuBusy(());

pub fn cpu_busy() -> CpuBusy {
    let mut g = gate();
    while g.alone || g.waiting_alone > 0 {
        g = wait(g);
    }
    g.busy += 1;
    CpuBusy(())
}

impl Drop for CpuBusy {
    fn drop(&mut self) {
        gate().busy -= 1;
        CPU.1.notify_all();
    }
}

/// Held while a test measures CPU time.
pub struct CpuAlone(());

pub fn cpu_alone() -> CpuAlone {
    let mut g = gate();
    g.waiting_alone += 1;
    while g.alone || g.busy > 0 {
        g = wait(g);
    }
    g.waiting_alone -= 1;
    g.alone = true;
    CpuAlone(())
}

impl Drop for CpuAlone {
    fn drop(&mut self) {
        gate().alone = false;
        CPU.1.notify_all();
    }
}

/// Whether process `pid` is gone within `limit` (a VMM, a supervisor, a keeper).
pub fn wait_gone(pid: u32, limit: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while phyllome::vmm::launch::pid_running(pid) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}
