//! Runtime directories of running VMs: `<run root>/vms/NAME/` holds the VMM's API socket, its
//! event log, the guest serial socket, the VMM's own log, a pidfile and what we know about the
//! launch (`meta.json`). Cloud Hypervisor keeps no registry; these directories are ours, and a
//! console started later finds every running VM again by reading them.

use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// `sun_path` is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "No runtime directory: XDG_RUNTIME_DIR is not set; pass --run-dir or set PHYLLOME_RUN_DIR"
    )]
    NoRunDir,
    #[error("VM name {0:?} cannot name a runtime directory: use letters, digits, '.', '_' and '-' (at most 64, not starting with '.' or '-')")]
    BadName(String),
    #[error("Run directory {0} holds a double quote, a control character or bytes that are not UTF-8; Cloud Hypervisor's options cannot carry it: pass another --run-dir")]
    BadRunDir(String),
    #[error("Socket path {0} is longer than the 107 bytes a Unix socket allows; pass a shorter --run-dir")]
    PathTooLong(String),
    #[error("Cannot prepare runtime directory {path}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot use runtime directory {path}")]
    Unsafe {
        path: String,
        #[source]
        source: crate::files::FileError,
    },
    #[error("Cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot take the start lock {path}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Another phyllome is starting or stopping VM {0}; try again in a moment")]
    LockBusy(String),
}

/// The parent of every VM's runtime directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRoot(PathBuf);

impl RunRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// `--run-dir`/`PHYLLOME_RUN_DIR` when given, `/run/phyllome` as root, else
    /// `$XDG_RUNTIME_DIR/phyllome` (a tmpfs the user owns, emptied at logout or boot, like the
    /// VMs it describes).
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, RuntimeError> {
        if let Some(path) = explicit {
            return Ok(Self(path.to_path_buf()));
        }
        if rustix::process::geteuid().is_root() {
            return Ok(Self(PathBuf::from("/run/phyllome")));
        }
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) if !dir.is_empty() => Ok(Self(PathBuf::from(dir).join("phyllome"))),
            _ => Err(RuntimeError::NoRunDir),
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    fn vms_dir(&self) -> PathBuf {
        self.0.join("vms")
    }

    /// Lock files live beside the runtime directories, never inside them, because a runtime
    /// directory is removed when its VM stops while another process may be waiting on the lock.
    fn locks_dir(&self) -> PathBuf {
        self.0.join("locks")
    }

    /// The lock file of VM `name` (see [`RunRoot::lock`]).
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.locks_dir().join(format!("{name}.lock"))
    }

    pub fn vm(&self, name: &str) -> Result<VmRuntime, RuntimeError> {
        check_name(name)?;
        match self.0.to_str() {
            Some(text) if crate::vm::chconfig::is_option_safe(text) => {}
            _ => return Err(RuntimeError::BadRunDir(format!("{:?}", self.0))),
        }
        let dir = self.vms_dir().join(name);
        let rt = VmRuntime {
            name: name.to_string(),
            api_socket: dir.join("api.sock"),
            event_log: dir.join("events.json"),
            serial_socket: dir.join("serial.sock"),
            vmm_log: dir.join("vmm.log"),
            pid_file: dir.join("vmm.pid"),
            meta_file: dir.join("meta.json"),
            dir,
        };
        // The serial keeper's socket is bound as `viewers.sock.new`, the longest name here.
        let viewers = rt.dir.join("viewers.sock.new");
        for socket in [&rt.api_socket, &rt.serial_socket, &viewers] {
            if socket.as_os_str().len() > MAX_SOCKET_PATH {
                return Err(RuntimeError::PathTooLong(socket.display().to_string()));
            }
        }
        Ok(rt)
    }

    /// Names of every VM that has a runtime directory, running or stale.
    pub fn names(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.vms_dir()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        names
    }

    /// Takes the per-VM advisory lock, waiting up to `wait` for another holder. Held during
    /// start and stop, so two consoles (serial and SSH) never start the same VM twice.
    pub async fn lock(&self, name: &str, wait: Duration) -> Result<StartLock, RuntimeError> {
        check_name(name)?;
        let dir = self.locks_dir();
        make_dir_0700(&self.0)?;
        make_dir_0700(&dir)?;
        let path = dir.join(format!("{name}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|source| RuntimeError::Lock {
                path: path.display().to_string(),
                source,
            })?;
        let fd: OwnedFd = file.into();
        let deadline = Instant::now() + wait;
        loop {
            match rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(StartLock { _fd: fd }),
                Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {
                    if Instant::now() >= deadline {
                        return Err(RuntimeError::LockBusy(name.to_string()));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    return Err(RuntimeError::Lock {
                        path: path.display().to_string(),
                        source: e.into(),
                    })
                }
            }
        }
    }
}

/// The advisory lock of one VM; closing the descriptor releases it, also when the process dies.
#[derive(Debug)]
pub struct StartLock {
    _fd: OwnedFd,
}

/// How the VMM of a VM was launched, so stop and discovery know whom to ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupervisorKind {
    /// A detached process in its own session, tracked by its pidfile.
    Process,
    /// A transient systemd unit of this name.
    Systemd { unit: String },
}

/// What we remember about a launch; written once the VMM answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchMeta {
    pub pid: Option<u32>,
    /// Seconds since the epoch when the VMM was launched.
    pub started_at: u64,
    /// Seconds since the epoch when `vm.boot` returned, for the uptime.
    pub booted_at: Option<u64>,
    pub supervisor: SupervisorKind,
    pub ch_bin: PathBuf,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Paths of one VM's runtime directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmRuntime {
    pub name: String,
    pub dir: PathBuf,
    pub api_socket: PathBuf,
    pub event_log: PathBuf,
    pub serial_socket: PathBuf,
    pub vmm_log: PathBuf,
    pub pid_file: PathBuf,
    pub meta_file: PathBuf,
}

impl VmRuntime {
    /// The paths a VmConfig names inside this directory, with the guest's serial line on
    /// this runtime's socket (so whoever supervises the VM owns it).
    pub fn config_paths(&self) -> crate::vm::RuntimePaths {
        let mut paths = crate::vm::RuntimePaths::in_dir(&self.dir);
        paths.serial_socket = self.serial_socket.clone();
        paths
    }

    /// A fresh, empty directory (mode 0700: the sockets inside control the VM). Leftovers of a
    /// VMM that is gone are removed first; call it only under the lock, after the ping check.
    pub fn create_fresh(&self) -> Result<(), RuntimeError> {
        if self.dir.exists() {
            self.remove();
        }
        if let Some(parent) = self.dir.parent() {
            if let Some(root) = parent.parent() {
                make_dir_0700(root)?;
            }
            make_dir_0700(parent)?;
        }
        make_dir_0700(&self.dir)
    }

    /// Best effort: a directory that cannot be removed is left for the next start to retry.
    pub fn remove(&self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove runtime dir");
            }
        }
    }

    pub fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    pub fn write_pid(&self, pid: u32) -> Result<(), RuntimeError> {
        write_atomic(&self.pid_file, format!("{pid}\n").as_bytes())
    }

    pub fn read_pid(&self) -> Option<u32> {
        self.read_record("vmm.pid")?.trim().parse().ok()
    }

    /// A small file of this directory, never through a link, a FIFO or past a few KiB.
    fn read_record(&self, name: &str) -> Option<String> {
        crate::files::read_beneath(&self.dir, name, crate::files::RECORD_CAP).ok()
    }

    pub fn write_meta(&self, meta: &LaunchMeta) -> Result<(), RuntimeError> {
        let text = serde_json::to_vec_pretty(meta).unwrap_or_default();
        write_atomic(&self.meta_file, &text)
    }

    pub fn read_meta(&self) -> Option<LaunchMeta> {
        let text = self.read_record("meta.json")?;
        serde_json::from_str(&text).ok()
    }
}

/// A VM name is a path component and part of a unit name: keep it to a safe alphabet.
pub fn check_name(name: &str) -> Result<(), RuntimeError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::BadName(name.to_string()))
    }
}

/// Created 0700 whatever the umask (the sockets inside control VMs); one that is a link,
/// belongs to another user or is open to others is refused, never repaired.
fn make_dir_0700(path: &Path) -> Result<(), RuntimeError> {
    crate::files::private_dir(path).map_err(|source| RuntimeError::Unsafe {
        path: path.display().to_string(),
        source,
    })
}

/// Readers (another console) never see half a pidfile.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    let err = |source| RuntimeError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn names_are_checked() {
        for good in ["win11", "a", "dev-box_2.0"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "..",
            "x y",
            "é",
            &"n".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_and_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let root = RunRoot::new(tmp.path().join("run"));
        let rt = root.vm("t1").unwrap();
        assert_eq!(rt.api_socket, tmp.path().join("run/vms/t1/api.sock"));
        rt.create_fresh().unwrap();
        let mode = fs::metadata(&rt.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        rt.write_pid(42).unwrap();
        assert_eq!(rt.read_pid(), Some(42));
        assert_eq!(root.names(), vec!["t1".to_string()]);
        rt.remove();
        assert!(root.names().is_empty());
    }

    #[test]
    fn run_dirs_the_vmm_options_cannot_carry_are_refused() {
        for bad in ["/tmp/a\"b", "/tmp/a\nb", "/tmp/\u{1b}[31m"] {
            let root = RunRoot::new(bad);
            assert!(
                matches!(root.vm("t1"), Err(RuntimeError::BadRunDir(_))),
                "{bad:?}"
            );
        }
        assert!(RunRoot::new("/tmp/run,fd=3").vm("t1").is_ok());
    }

    #[test]
    fn long_socket_paths_are_refused() {
        let root = RunRoot::new(format!("/tmp/{}", "x".repeat(100)));
        assert!(matches!(root.vm("t1"), Err(RuntimeError::PathTooLong(_))));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lock_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let root = RunRoot::new(tmp.path());
        let held = root.lock("t1", Duration::ZERO).await.unwrap();
        let busy = root.lock("t1", Duration::from_millis(50)).await;
        assert!(matches!(busy, Err(RuntimeError::LockBusy(_))));
        drop(held);
        root.lock("t1", Duration::ZERO).await.unwrap();
    }
}
