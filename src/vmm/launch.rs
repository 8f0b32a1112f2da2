//! Launching a VMM without systemd: a detached process in its own session (no controlling
//! terminal, so a dropped SSH session or a closed console sends it no SIGHUP), stdio on a log
//! file in the runtime directory, and a pidfile.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
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
    // `RunRoot::vm` admits only UTF-8 paths CH's options can carry; a `,` or `=` in them
    // is quoted so it can never add an option.
    let path_arg = |prefix: &str, p: &Path| {
        OsString::from(format!(
            "{prefix}{}",
            crate::vm::chconfig::option_value(&p.to_string_lossy())
        ))
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
    spawn_in_session(argv, (log, log2), &rt.dir).map_err(|source| LaunchError::Spawn {
        bin: PathBuf::from(&bin).display().to_string(),
        source,
    })
}

/// Runs `argv` in a session of its own (through util-linux's `setsid`, which execs in place so
/// the pid stays the program's; else at least its own process group, out of the terminal's job
/// control), standard output and error on the two handles of its log, in `dir`. A thread reaps it should it die
/// while this process lives; afterwards init inherits it. Returns its pid.
pub(crate) fn spawn_in_session(
    argv: &[OsString],
    (out, err): (File, File),
    dir: &Path,
) -> std::io::Result<u32> {
    let (bin, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command line"))?;
    let mut cmd = match setsid_bin() {
        Some(setsid) => {
            let mut c = Command::new(setsid);
            c.args(argv);
            c
        }
        None => {
            use std::os::unix::process::CommandExt;
            let mut c = Command::new(bin);
            c.args(args).process_group(0);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .current_dir(dir);
    let mut child = cmd.spawn()?;
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

/// The process exists and is neither a zombie nor dead. A zombie counts as gone: it has
/// closed its descriptors (the API socket, /dev/kvm) and freed the guest's memory.
pub fn pid_running(pid: u32) -> bool {
    !matches!(pid_state(pid), Some('Z') | Some('X') | None)
}

/// Stopped by a signal (SIGSTOP) or a tracer: it cannot exit by itself until continued.
pub fn pid_stopped(pid: u32) -> bool {
    matches!(pid_state(pid), Some('T') | Some('t'))
}

/// The state letter of `/proc/PID/stat` (R, S, D, T, Z, ...).
fn pid_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next()?.chars().next()
}

/// Every live process that is the VMM of `rt`, whatever its pidfile says (it may be missing
/// or garbage). A process counts when it holds the VM's API socket (the listening socket or a
/// connection accepted on it: only the VMM serving that socket has those), or when its command
/// line names the runtime directory and it runs one of `vmm_bins` (the configured Cloud
/// Hypervisor binary, the one recorded at launch). The binary check keeps out processes that
/// merely mention the directory: a `phyllome vm supervise` wrapping the VMM's argv, a CLI.
pub fn find_vmm_pids(rt: &VmRuntime, vmm_bins: &[PathBuf]) -> Vec<u32> {
    let sockets = std::fs::read("/proc/net/unix")
        .map(|table| socket_inodes(&table, &path_forms(&rt.api_socket)))
        .unwrap_or_default();
    let dir_markers: Vec<Vec<u8>> = path_forms(&rt.dir)
        .into_iter()
        .map(|mut d| {
            // `t1/`, so that VM t1 does not claim t10's processes.
            d.push(b'/');
            d
        })
        .collect();
    let bins = bin_forms(vmm_bins);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            let by_argv = || {
                let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    return false;
                };
                names_any(&cmdline, &dir_markers) && runs_one_of(pid, &cmdline, &bins)
            };
            (by_argv() || holds_socket(pid, &sockets)) && pid_running(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// A path as given and made absolute: a relative run directory reaches the VMM's argv and
/// `bind(2)` as written.
fn path_forms(path: &Path) -> Vec<Vec<u8>> {
    let mut forms = vec![path.as_os_str().as_encoded_bytes().to_vec()];
    if let Ok(abs) = std::path::absolute(path) {
        let abs = abs.as_os_str().as_encoded_bytes().to_vec();
        if !forms.contains(&abs) {
            forms.push(abs);
        }
    }
    forms
}

/// Each binary as given, absolute and with its symlinks resolved (`/proc/PID/exe` is resolved).
fn bin_forms(bins: &[PathBuf]) -> Vec<PathBuf> {
    let mut forms = Vec::new();
    for bin in bins {
        let candidates = [
            Some(bin.clone()),
            std::path::absolute(bin).ok(),
            std::fs::canonicalize(bin).ok(),
        ];
        for c in candidates.into_iter().flatten() {
            if !forms.contains(&c) {
                forms.push(c);
            }
        }
    }
    forms
}

/// Whether one NUL-separated argument of `cmdline` contains one of `markers`.
fn names_any(cmdline: &[u8], markers: &[Vec<u8>]) -> bool {
    cmdline.split(|&b| b == 0).any(|arg| {
        markers
            .iter()
            .any(|m| !m.is_empty() && arg.windows(m.len()).any(|w| w == m.as_slice()))
    })
}

/// Whether the process runs one of `bins`, by its argv[0] or its executable. The executable
/// of a binary replaced on disk reads `PATH (deleted)`, hence argv[0] too.
fn runs_one_of(pid: u32, cmdline: &[u8], bins: &[PathBuf]) -> bool {
    if bins.is_empty() {
        return false;
    }
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let argv0 = Path::new(std::ffi::OsStr::from_bytes(argv0));
    if bins.iter().any(|b| b == argv0) {
        return true;
    }
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    let exe = exe.as_os_str().as_encoded_bytes();
    let exe = exe.strip_suffix(b" (deleted)").unwrap_or(exe);
    let exe = Path::new(std::ffi::OsStr::from_bytes(exe));
    bins.iter().any(|b| b == exe)
}

/// Whether the process has a descriptor on one of the socket inodes.
fn holds_socket(pid: u32, inodes: &[u64]) -> bool {
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:[")?.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| inodes.contains(&n))
        })
    })
}

/// Inodes of the Unix sockets bound to one of `paths`, from a `/proc/net/unix` table
/// (`Num RefCount Protocol Flags Type St Inode Path`; the path is the rest of the line).
fn socket_inodes(table: &[u8], paths: &[Vec<u8>]) -> Vec<u64> {
    let mut inodes = Vec::new();
    for line in table.split(|&b| b == b'\n').skip(1) {
        let mut rest = line;
        let mut inode = None;
        for _ in 0..7 {
            let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
            rest = &rest[start..];
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            inode = std::str::from_utf8(&rest[..end])
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            rest = &rest[end..];
        }
        let (Some(inode), Some(path)) = (inode, rest.strip_prefix(b" ")) else {
            continue;
        };
        if paths.iter().any(|p| p.as_slice() == path) {
            inodes.push(inode);
        }
    }
    inodes
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
    fn socket_inodes_come_from_the_path_column() {
        let table = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/p/vms/t1/api.sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03 12346 /run/p/vms/t1/api.sock\n\
0000000000000000: 00000002 00000000 00010000 0001 01   777 /run/p/vms/t10/api.sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03 12347\n\
0000000000000000: 00000002 00000000 00010000 0001 01 888 /run/a b/api.sock\n\
garbage\n";
        let at = |p: &str| socket_inodes(table, &[p.as_bytes().to_vec()]);
        assert_eq!(at("/run/p/vms/t1/api.sock"), [12345, 12346]);
        assert_eq!(at("/run/a b/api.sock"), [888]);
        assert!(at("/run/p/vms/t1").is_empty());
        assert!(at("").is_empty());
    }

    #[test]
    fn the_holder_of_the_api_socket_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let root = RunRoot::new(tmp.path());
        let rt = root.vm("t1").unwrap();
        rt.create_fresh().unwrap();
        let me = std::process::id();
        assert!(!find_vmm_pids(&rt, &[]).contains(&me));
        let listener = std::os::unix::net::UnixListener::bind(&rt.api_socket).unwrap();
        assert!(find_vmm_pids(&rt, &[]).contains(&me));
        let other = root.vm("t10").unwrap();
        assert!(!find_vmm_pids(&other, &[]).contains(&me));
        drop(listener);
        assert!(!find_vmm_pids(&rt, &[]).contains(&me));
    }

    #[test]
    fn a_process_naming_the_run_dir_counts_when_it_runs_the_vmm_binary() {
        let tmp = tempfile::tempdir().unwrap();
        let root = RunRoot::new(tmp.path());
        let rt = root.vm("t1").unwrap();
        let sh = PathBuf::from("/bin/sh");
        // `read` keeps the shell itself waiting (no child of its own to leave behind).
        let mut child = Command::new(&sh)
            .args(["-c", "read x", "sh"])
            .arg(format!("path={}", rt.api_socket.display()))
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = std::time::Instant::now();
        // Until it has exec'd, the child's command line is this test's.
        while !find_vmm_pids(&rt, std::slice::from_ref(&sh)).contains(&pid) {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "child {pid} not found"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let other_bin = PathBuf::from("/usr/bin/cloud-hypervisor");
        assert!(!find_vmm_pids(&rt, &[other_bin]).contains(&pid));
        assert!(!find_vmm_pids(&root.vm("t").unwrap(), std::slice::from_ref(&sh)).contains(&pid));
        let _ = child.kill();
        let _ = child.wait();
        assert!(!find_vmm_pids(&rt, &[sh]).contains(&pid));
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
