//! Launching a VMM without systemd: a detached process in its own session (no controlling
//! terminal, so a dropped SSH session or a closed console sends it no SIGHUP), stdio on a log
//! file in the runtime directory, and a pidfile.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::runtime::VmRuntime;

pub const CH_BIN_NAME: &str = "cloud-hypervisor";

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("Cloud Hypervisor binary {0} does not exist or is not a file")]
    BinMissing(String),
    #[error("No cloud-hypervisor in PATH, /usr/bin or /usr/local/bin; install it or pass --ch-bin / set PHYLLOME_CH_BIN")]
    NotFound,
    #[error("Cannot open the VMM log {path}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot run {bin}")]
    Spawn {
        bin: String,
        #[source]
        source: std::io::Error,
    },
}

/// `--ch-bin` when given (it must exist), else `cloud-hypervisor` from PATH or the usual places.
pub fn find_ch_bin(explicit: Option<&Path>) -> Result<PathBuf, LaunchError> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(LaunchError::BinMissing(path.display().to_string()))
        };
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(CH_BIN_NAME))
        .find(|p| p.is_file())
        .ok_or(LaunchError::NotFound)
}

/// The full command line: VMM options only (the API socket and the event monitor, both in the
/// runtime directory). Cloud Hypervisor refuses any VM option (`--serial`, `--disk`, …) without a
/// payload on the command line, so everything about the VM, its serial socket included, comes
/// later through `vm.create`.
pub fn vmm_argv(bin: &Path, rt: &VmRuntime) -> Vec<OsString> {
    let path_arg = |prefix: &str, p: &Path| {
        let mut s = OsString::from(prefix);
        s.push(p.as_os_str());
        s
    };
    vec![
        bin.as_os_str().to_owned(),
        "--api-socket".into(),
        path_arg("path=", &rt.api_socket),
        "--event-monitor".into(),
        path_arg("path=", &rt.event_log),
    ]
}

/// `setsid` from util-linux, when present: it calls setsid(2) and execs in place (our child is
/// not a group leader, so it does not fork and the pid stays the VMM's).
fn setsid_bin() -> Option<PathBuf> {
    ["/usr/bin/setsid", "/bin/setsid"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Spawns the VMM detached and returns its pid. A thread waits on it so a VMM that dies while
/// this (long-lived console) process runs is reaped rather than left a zombie; when this
/// process exits first, the VMM is reparented and keeps running.
pub fn spawn_detached(argv: &[OsString], rt: &VmRuntime) -> Result<u32, LaunchError> {
    let bin = argv.first().cloned().unwrap_or_default();
    let log = File::options()
        .create(true)
        .append(true)
        .open(&rt.vmm_log)
        .map_err(|source| LaunchError::Log {
            path: rt.vmm_log.display().to_string(),
            source,
        })?;
    let log2 = log.try_clone().map_err(|source| LaunchError::Log {
        path: rt.vmm_log.display().to_string(),
        source,
    })?;
    let mut cmd = match setsid_bin() {
        Some(setsid) => {
            let mut c = Command::new(setsid);
            c.args(argv);
            c
        }
        None => {
            // Without util-linux: at least its own process group, out of the terminal's
            // job control.
            use std::os::unix::process::CommandExt;
            let mut c = Command::new(&bin);
            c.args(&argv[1..]).process_group(0);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .current_dir(&rt.dir);
    let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn {
        bin: PathBuf::from(&bin).display().to_string(),
        source,
    })?;
    let pid = child.id();
    let _ = std::thread::Builder::new()
        .name(format!("reap-{pid}"))
        .spawn(move || {
            let _ = child.wait();
        });
    Ok(pid)
}

/// Whether `pid` is a live (not zombie) process whose command line mentions `marker` (the API
/// socket path), so a recycled pid is never taken for our VMM.
pub fn pid_is_vmm(pid: u32, marker: &Path) -> bool {
    if !pid_running(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let marker = marker.as_os_str().as_encoded_bytes();
    cmdline.windows(marker.len()).any(|w| w == marker)
}

/// The process exists and is neither a zombie nor dead.
pub fn pid_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Sends a signal; a pid that is gone is not an error.
pub fn signal(pid: u32, sig: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process(pid, sig);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmm::runtime::RunRoot;

    #[test]
    fn argv_points_into_the_runtime_dir() {
        let rt = RunRoot::new("/run/phyllome").vm("t1").unwrap();
        let argv = vmm_argv(Path::new("/usr/bin/cloud-hypervisor"), &rt);
        let argv: Vec<_> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "/usr/bin/cloud-hypervisor",
                "--api-socket",
                "path=/run/phyllome/vms/t1/api.sock",
                "--event-monitor",
                "path=/run/phyllome/vms/t1/events.json",
            ]
        );
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        let err = find_ch_bin(Some(Path::new("/nonexistent/ch"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ch"));
    }

    #[test]
    fn own_pid_is_checked_by_cmdline() {
        let me = std::process::id();
        assert!(!pid_is_vmm(
            me,
            Path::new("/definitely/not/in/cmdline.sock")
        ));
        assert!(!pid_is_vmm(u32::MAX, Path::new("x")));
    }
}
