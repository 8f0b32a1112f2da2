//! `phyllome vm list|info|start|stop|reboot|pause|resume|delete` and `phyllome autostart`.
//! Each command builds a current-thread runtime, calls [`VmManager`], and prints; every call
//! to a VMM is bounded, so a hung VMM gives a timeout error, never a hang.

use std::io::Write;
use std::time::Duration;

use color_eyre::eyre::{eyre, WrapErr};

use super::vm::Confirm;
use super::{CliError, GlobalArgs};
use crate::fmt;
use crate::vmm::manager::{
    ManagerConfig, ManagerError, StopMode, StopOutcome, VmManager, VmStatus,
};
use crate::vmm::runtime::RunRoot;

/// Seconds one API call may take (default 5); for slow hosts and for tests.
pub const API_TIMEOUT_ENV: &str = "PHYLLOME_VMM_TIMEOUT";

pub(super) fn manager(global: &GlobalArgs) -> color_eyre::Result<VmManager> {
    let root = RunRoot::resolve(global.run_dir.as_deref())?;
    let mut cfg = ManagerConfig::new(global.state_dir.clone(), root, global.ch_bin.clone());
    if let Some(host_root) = &global.host_root {
        // Managed VFIO moves devices under the same root `phyllome host` reads.
        cfg.host_root = host_root.clone();
    }
    if let Some(secs) = std::env::var(API_TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0)
    {
        cfg.api_timeout = Duration::from_secs_f64(secs);
    }
    Ok(VmManager::new(cfg))
}

fn block_on<T>(
    fut: impl std::future::Future<Output = Result<T, ManagerError>>,
) -> color_eyre::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("Cannot start the runtime")?;
    rt.block_on(fut).map_err(report)
}

/// The error with Cloud Hypervisor's causes listed under it, outermost first.
fn report(e: ManagerError) -> color_eyre::Report {
    let mut msg = e.to_string();
    for cause in e.causes().iter().filter(|c| c.as_str() != "Error from API") {
        msg.push_str("\n  caused by: ");
        msg.push_str(cause);
    }
    eyre!(msg)
}

fn out(text: &str) -> color_eyre::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CliError::Output)?;
    Ok(())
}

fn json(value: &impl serde::Serialize) -> color_eyre::Result<()> {
    let text = serde_json::to_string_pretty(value).wrap_err("Cannot encode JSON")?;
    out(&format!("{text}\n"))
}

pub fn list(global: &GlobalArgs, as_json: bool) -> color_eyre::Result<()> {
    let m = manager(global)?;
    let rows = block_on(m.list())?;
    if as_json {
        return json(&rows);
    }
    out(&table(&rows))
}

fn table(rows: &[VmStatus]) -> String {
    if rows.is_empty() {
        return "No VMs defined; see `phyllome vm define --help`\n".to_string();
    }
    let mut s = format!(
        "{:<20} {:<12} {:>5} {:>8} {:>10}  {}\n",
        "NAME", "STATE", "VCPUS", "MEMORY", "UPTIME", "DEVICES"
    );
    for r in rows {
        let dash = || "-".to_string();
        s.push_str(&format!(
            "{:<20} {:<12} {:>5} {:>8} {:>10}  {}\n",
            r.name,
            r.state.as_str(),
            r.vcpus.map(|v| v.to_string()).unwrap_or_else(dash),
            r.memory_bytes.map(fmt::size).unwrap_or_else(dash),
            r.uptime_secs.map(fmt::uptime).unwrap_or_else(dash),
            if r.devices.is_empty() {
                dash()
            } else {
                r.devices.join(", ")
            },
        ));
        if let Some(e) = &r.error {
            let first = e.lines().next().unwrap_or_default();
            s.push_str(&format!("  ! {first}\n"));
            for line in e.lines().skip(1) {
                s.push_str(&format!("    {line}\n"));
            }
        }
    }
    s
}

pub fn info(global: &GlobalArgs, name: &str, as_json: bool) -> color_eyre::Result<()> {
    let m = manager(global)?;
    let status = block_on(m.info(name))?;
    let definition = crate::vmm::defs::Defs::open(global.state_dir.as_deref())
        .ok()
        .and_then(|d| d.get(name).ok());
    if as_json {
        let mut v = serde_json::to_value(&status).wrap_err("Cannot encode JSON")?;
        if let (Some(obj), Some(def)) = (v.as_object_mut(), definition) {
            obj.insert(
                "definition".into(),
                serde_json::to_value(def).unwrap_or_default(),
            );
        }
        return json(&v);
    }
    let mut s = table(std::slice::from_ref(&status));
    if let Some(pid) = status.pid {
        s.push_str(&format!("VMM pid {pid}\n"));
    }
    if let Some(info) = &status.info {
        if let Some(size) = info.get("memory_actual_size").and_then(|v| v.as_u64()) {
            s.push_str(&format!("memory (actual): {}\n", fmt::size(size)));
        }
    }
    out(&s)
}

pub fn start(global: &GlobalArgs, name: &str) -> color_eyre::Result<()> {
    let m = manager(global)?;
    let status = block_on(m.start(name))?;
    let pid = status
        .pid
        .map(|p| format!(" (VMM pid {p})"))
        .unwrap_or_default();
    out(&format!("Started {name}: {}{pid}\n", status.state))
}

pub fn stop(
    global: &GlobalArgs,
    name: &str,
    force: bool,
    timeout_secs: Option<u64>,
    confirm: &Confirm,
) -> color_eyre::Result<()> {
    let mode = if force {
        confirm.ask(&format!("Force off VM {name} (like pulling the plug)"))?;
        StopMode::Force
    } else {
        let timeout = match timeout_secs {
            Some(secs) => Duration::from_secs(secs),
            None => grace_period(global, name),
        };
        StopMode::Graceful { timeout }
    };
    let m = manager(global)?;
    let outcome = block_on(m.stop(name, mode))?;
    if let (StopOutcome::TimedOut, StopMode::Graceful { timeout }) = (outcome, mode) {
        eprintln!(
            "warning: {name} did not power off within {} s of the power button; \
             forced off with vm.shutdown",
            timeout.as_secs()
        );
    }
    out(&format!("Stopped {name}\n"))
}

/// The VM's own `stop_timeout`; the default when its definition is gone or broken (a VMM
/// can outlive its definition, and stopping it must still work).
fn grace_period(global: &GlobalArgs, name: &str) -> Duration {
    crate::vmm::defs::Defs::open(global.state_dir.as_deref())
        .and_then(|d| d.get(name))
        .map(|spec| spec.stop_timeout)
        .unwrap_or_default()
        .duration()
}

pub fn reboot(global: &GlobalArgs, name: &str, confirm: &Confirm) -> color_eyre::Result<()> {
    confirm.ask(&format!("Reboot VM {name}"))?;
    let m = manager(global)?;
    block_on(m.reboot(name))?;
    out(&format!("Rebooting {name}\n"))
}

pub fn pause(global: &GlobalArgs, name: &str) -> color_eyre::Result<()> {
    let m = manager(global)?;
    block_on(m.pause(name))?;
    out(&format!("Paused {name}\n"))
}

pub fn resume(global: &GlobalArgs, name: &str) -> color_eyre::Result<()> {
    let m = manager(global)?;
    block_on(m.resume(name))?;
    out(&format!("Resumed {name}\n"))
}

pub fn delete(global: &GlobalArgs, name: &str, confirm: &Confirm) -> color_eyre::Result<()> {
    confirm.ask(&format!("Delete the definition of VM {name}"))?;
    let m = manager(global)?;
    block_on(m.delete(name))?;
    out(&format!("Deleted {name}\n"))
}

pub fn autostart(global: &GlobalArgs) -> color_eyre::Result<()> {
    let m = manager(global)?;
    let results = block_on(m.autostart())?;
    let mut failed = 0;
    let mut s = String::new();
    if results.is_empty() {
        s.push_str("No VM is marked autostart\n");
    }
    for (name, r) in results {
        match r {
            Ok(()) => s.push_str(&format!("{name}: running\n")),
            Err(e) => {
                failed += 1;
                s.push_str(&format!("{name}: failed: {}\n", report(e)));
            }
        }
    }
    out(&s)?;
    if failed > 0 {
        return Err(eyre!("{failed} VM(s) marked autostart did not start"));
    }
    Ok(())
}
