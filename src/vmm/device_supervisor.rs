//! `phyllome vm supervise NAME -- VMM ARGV…`: the process launched in place of the
//! VMM of a VM with passthrough devices. It runs the VMM as its child, passes on the signals
//! meant for it, and when the VMM exits — shut down, crashed or SIGKILLed, with or without a
//! console running — gives the devices back to their host drivers.
//!
//! Under systemd the same process is the unit's main process (`KillMode=mixed` sends SIGTERM to
//! it alone; it forwards the signal and releases after the VMM exits). Should the unit be
//! SIGKILLed as a whole, the console's next look at the VM (stop, list) finds the hold with no
//! supervisor and releases it there ([`DeviceHost::settle`]); a unit-native alternative would
//! be an `ExecStopPost=` running the same release, which needs no process of ours to survive.

use std::ffi::OsString;
use std::process::{Command, ExitCode, Stdio};

use super::launch::signal;
use super::managed::{DeviceHost, Holding};
use super::runtime::VmRuntime;

/// The argv that launches `vmm_argv` under a device supervisor (this binary).
pub fn wrap_argv(
    self_exe: &std::path::Path,
    name: &str,
    host_root: &std::path::Path,
    run_root: &std::path::Path,
    state_dir: Option<&std::path::Path>,
    simulate: bool,
    vmm_argv: &[OsString],
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![
        self_exe.as_os_str().to_owned(),
        "--host-root".into(),
        host_root.as_os_str().to_owned(),
        "--run-dir".into(),
        run_root.as_os_str().to_owned(),
    ];
    if let Some(dir) = state_dir {
        argv.push("--state-dir".into());
        argv.push(dir.as_os_str().to_owned());
    }
    if simulate {
        argv.push("--simulate".into());
    }
    argv.extend(["vm".into(), "supervise".into(), name.into(), "--".into()]);
    argv.extend(vmm_argv.iter().cloned());
    argv
}

/// Runs the VMM and releases the devices after it (those the VM's record lists when the VMM
/// exits, hot-plugged ones included); the exit code says whether the release worked (the
/// VMM's own status is in its log).
pub fn supervise(host: &DeviceHost, rt: &VmRuntime, vmm: &[OsString]) -> ExitCode {
    let vm = rt.name.as_str();
    let Some((bin, args)) = vmm.split_first() else {
        host.records.log(vm, "supervise: no VMM command given");
        return ExitCode::from(2);
    };
    let mut rec = host.records.read(vm);
    if let Some(r) = rec.as_mut() {
        r.supervisor_pid = Some(std::process::id());
        r.state = Holding::Held;
        if let Err(e) = host.records.write(r) {
            host.records
                .log(vm, &format!("supervise: {}", crate::error::Chain(&e)));
        }
    }
    let child = Command::new(bin).args(args).stdin(Stdio::null()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            host.records
                .log(vm, &format!("supervise: cannot run the VMM: {e}"));
            return release(host, vm);
        }
    };
    let pid = child.id();
    if let Err(e) = rt.write_pid(pid) {
        host.records
            .log(vm, &format!("supervise: {}", crate::error::Chain(&e)));
    }
    host.records
        .log(vm, &format!("supervise: VMM pid {pid} started"));
    let status = wait_forwarding_signals(&mut child, pid);
    host.records.log(
        vm,
        &format!("supervise: VMM exited ({status}); releasing devices"),
    );
    release(host, vm)
}

fn release(host: &DeviceHost, vm: &str) -> ExitCode {
    let Some(rec) = host.records.read(vm) else {
        host.records
            .log(vm, "supervise: no device record; nothing to release");
        return ExitCode::SUCCESS;
    };
    match host.release(vm, &rec.came_from) {
        Ok(()) => {
            host.records
                .log(vm, "supervise: devices back on their host drivers");
            ExitCode::SUCCESS
        }
        Err(e) => {
            host.records
                .log(vm, &format!("supervise: {}", crate::error::Chain(&e)));
            ExitCode::FAILURE
        }
    }
}

/// Waits for the child; SIGTERM, SIGINT and SIGHUP sent to us go to the VMM instead of ending
/// the supervisor, which must outlive the VMM to release the devices.
fn wait_forwarding_signals(child: &mut std::process::Child, pid: u32) -> String {
    use tokio::signal::unix::{signal as listen, SignalKind};
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return child.wait().map(|s| s.to_string()).unwrap_or_default(),
    };
    rt.block_on(async {
        let mut term = listen(SignalKind::terminate()).ok();
        let mut int = listen(SignalKind::interrupt()).ok();
        let mut hup = listen(SignalKind::hangup()).ok();
        loop {
            // A short poll rather than a blocking wait in another thread: the child handle
            // stays here and a forwarded signal is never racing the reaper.
            match child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Err(e) => return format!("wait failed: {e}"),
                Ok(None) => {}
            }
            let forward = tokio::select! {
                Some(()) = recv(&mut term) => Some(rustix::process::Signal::TERM),
                Some(()) = recv(&mut int) => Some(rustix::process::Signal::INT),
                Some(()) = recv(&mut hup) => Some(rustix::process::Signal::HUP),
                _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => None,
            };
            if let Some(sig) = forward {
                signal(pid, sig);
            }
        }
    })
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vmm_command_line_follows_the_separator() {
        let argv = wrap_argv(
            std::path::Path::new("/usr/bin/phyllome"),
            "win",
            std::path::Path::new("/"),
            std::path::Path::new("/run/phyllome"),
            None,
            false,
            &["/usr/bin/cloud-hypervisor".into(), "--api-socket".into()],
        );
        let argv: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "/usr/bin/phyllome",
                "--host-root",
                "/",
                "--run-dir",
                "/run/phyllome",
                "vm",
                "supervise",
                "win",
                "--",
                "/usr/bin/cloud-hypervisor",
                "--api-socket",
            ]
        );
    }

    #[test]
    fn a_simulated_host_is_supervised_through_the_simulator() {
        let argv = wrap_argv(
            std::path::Path::new("/usr/bin/phyllome"),
            "win",
            std::path::Path::new("/tmp/fixture"),
            std::path::Path::new("/run/phyllome"),
            Some(std::path::Path::new("/var/lib/phyllome")),
            true,
            &["ch".into()],
        );
        let argv: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = |s: &str| argv.iter().position(|a| a == s).unwrap();
        assert!(at("--simulate") < at("supervise"), "{argv:?}");
        assert_eq!(argv[at("--state-dir") + 1], "/var/lib/phyllome");
    }
}
