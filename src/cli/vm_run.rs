//! `phyllome vm list|info|start|stop|reboot|pause|resume|delete` and `phyllome autostart`.
//! Each command builds a current-thread runtime, calls [`VmManager`], and prints; every call
//! to a VMM is bounded, so a hung VMM gives a timeout error, never a hang.

use std::time::Duration;

use eyre::{eyre, WrapErr};

use super::doc::{self, version};
use super::vm::Confirm;
use crate::fmt;
use crate::ops::HostPaths;
use crate::vmm::manager::{ManagerError, StopMode, StopOutcome, VmManager, VmStatus};
use crate::vmm::runtime::SupervisorKind;

pub(super) fn manager(paths: &HostPaths) -> eyre::Result<VmManager> {
    Ok(crate::ops::vm::manager(paths)?)
}

/// Runs one manager call; a failure says what was being done, its cause kept underneath.
pub(super) fn block_on<T>(
    doing: impl FnOnce() -> String,
    fut: impl std::future::Future<Output = Result<T, ManagerError>>,
) -> eyre::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("Cannot start the runtime")?;
    rt.block_on(fut)
        .map_err(|e| eyre::Report::new(e).wrap_err(doing()))
}

fn out(text: &str) -> eyre::Result<()> {
    Ok(super::output::out(text)?)
}

/// Starts the `--json` document of an action on VM `name`.
pub(super) fn begin_action(json: bool, name: &str, action: &str) {
    doc::begin(
        json,
        version::VM_ACTION,
        &[("vm", name.into()), ("action", action.into())],
    );
}

/// The result of an action on VM `name`: its `state`, VMM `pid` and systemd `unit` as the
/// manager and the launch record see them now (null when they cannot tell, or no VMM runs),
/// set on the pending document; the caller may add keys.
pub(super) fn action_state(paths: &HostPaths, m: &VmManager, name: &str) {
    let status = block_on(|| format!("Cannot show VM {name}"), m.info(name)).ok();
    let pid = status.as_ref().and_then(|s| s.pid);
    doc::set("state", &status.as_ref().map(|s| s.state.as_str()));
    doc::set("pid", &pid);
    let meta = paths
        .run_root()
        .ok()
        .and_then(|r| r.vm(name).ok())
        .and_then(|rt| rt.read_meta());
    let unit = match meta.map(|m| m.supervisor) {
        Some(SupervisorKind::Systemd { unit }) if pid.is_some() => Some(unit),
        _ => None,
    };
    doc::set("unit", &unit);
}

/// [`action_state`], then the document.
pub(super) fn action_done(paths: &HostPaths, m: &VmManager, name: &str) -> eyre::Result<()> {
    action_state(paths, m, name);
    Ok(doc::finish_pending()?)
}

#[derive(serde::Serialize)]
struct VmList<'a> {
    vms: &'a [VmStatus],
}

pub fn list(paths: &HostPaths, as_json: bool) -> eyre::Result<()> {
    doc::begin(as_json, version::VM_LIST, &[]);
    let m = manager(paths)?;
    let rows = block_on(|| "Cannot list VMs".into(), m.list())?;
    if as_json {
        return Ok(doc::finish(version::VM_LIST, &VmList { vms: &rows })?);
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
            fmt::printable(&r.name),
            r.state.as_str(),
            r.vcpus.map(|v| v.to_string()).unwrap_or_else(dash),
            r.memory_bytes.map(fmt::size).unwrap_or_else(dash),
            r.uptime_secs.map(fmt::uptime).unwrap_or_else(dash),
            if r.devices.is_empty() {
                dash()
            } else {
                fmt::printable(&r.devices.join(", ")).into_owned()
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

pub fn info(paths: &HostPaths, name: &str, as_json: bool) -> eyre::Result<()> {
    doc::begin(as_json, version::VM_INFO, &[]);
    let m = manager(paths)?;
    let status = block_on(|| format!("Cannot show VM {name}"), m.info(name))?;
    let definition = crate::ops::vm::definition(paths, name);
    if as_json {
        let mut v = serde_json::to_value(&status).wrap_err("Cannot encode JSON")?;
        if let (Some(obj), Some(def)) = (v.as_object_mut(), definition) {
            obj.insert(
                "definition".into(),
                serde_json::to_value(def).unwrap_or_default(),
            );
        }
        return Ok(doc::finish(version::VM_INFO, &v)?);
    }
    let mut s = table(std::slice::from_ref(&status));
    if let Some(line) = definition.as_ref().and_then(placement) {
        s.push_str(&line);
    }
    if let Some(pid) = status.pid {
        s.push_str(&format!("VMM pid {pid}\n"));
    }
    if let Some(r) = &status.rescue_payload {
        let booted = r.kernel.as_ref().or(r.iso.as_ref());
        s.push_str(&format!(
            "rescue boot: {} (disks {}); the next start boots it as defined\n",
            booted.map(|p| p.display().to_string()).unwrap_or_default(),
            if r.rw { "writable" } else { "read-only" }
        ));
    }
    if let Some(info) = &status.info {
        if let Some(size) = info.get("memory_actual_size").and_then(|v| v.as_u64()) {
            s.push_str(&format!("memory (actual): {}\n", fmt::size(size)));
        }
    }
    out(&s)
}

/// Where the definition puts the VM on the host (`cpus.pin`, `memory.host_numa_node`).
fn placement(spec: &crate::vm::VmSpec) -> Option<String> {
    let pin = spec
        .cpus
        .pin
        .as_ref()
        .map(|p| format!("vCPUs pinned to host CPUs {p}"));
    let node = spec
        .memory
        .host_numa_node
        .map(|n| format!("memory on host node {n}"));
    let parts: Vec<String> = pin.into_iter().chain(node).collect();
    (!parts.is_empty()).then(|| format!("placement: {}\n", parts.join(", ")))
}

pub fn start(paths: &HostPaths, name: &str, json: bool) -> eyre::Result<()> {
    begin_action(json, name, "start");
    let m = manager(paths)?;
    let status = block_on(|| format!("Cannot start VM {name}"), m.start(name))?;
    if json {
        return action_done(paths, &m, name);
    }
    let pid = status
        .pid
        .map(|p| format!(" (VMM pid {p})"))
        .unwrap_or_default();
    out(&format!("Started {name}: {}{pid}\n", status.state))
}

pub fn stop(
    paths: &HostPaths,
    name: &str,
    force: bool,
    timeout_secs: Option<u64>,
    confirm: &Confirm,
    json: bool,
) -> eyre::Result<()> {
    begin_action(json, name, "stop");
    let mode = if force {
        confirm.ask(&format!("Force off VM {name} (like pulling the plug)"))?;
        StopMode::Force
    } else {
        let timeout = match timeout_secs {
            Some(secs) => Duration::from_secs(secs),
            None => crate::ops::vm::grace_period(paths, name),
        };
        StopMode::Graceful { timeout }
    };
    let m = manager(paths)?;
    let outcome = block_on(|| format!("Cannot stop VM {name}"), m.stop(name, mode))?;
    if let (StopOutcome::TimedOut, StopMode::Graceful { timeout }) = (outcome, mode) {
        crate::noteln!(
            "warning: {name} did not power off within {} s of the power button; \
             forced off with vm.shutdown",
            timeout.as_secs()
        );
    }
    if json {
        action_state(paths, &m, name);
        doc::set("outcome", &outcome);
        return Ok(doc::finish_pending()?);
    }
    out(&format!("Stopped {name}\n"))
}

/// `vm reset` (alias `vm reboot`): `vm.reboot`, a hard reset the guest is not asked about.
pub fn reboot(paths: &HostPaths, name: &str, confirm: &Confirm, json: bool) -> eyre::Result<()> {
    begin_action(json, name, "reset");
    confirm.ask(&format!(
        "Reset VM {name} (at once, like its reset button; unsaved work in the guest is lost)"
    ))?;
    let m = manager(paths)?;
    block_on(|| format!("Cannot reset VM {name}"), m.reset(name))?;
    if json {
        return action_done(paths, &m, name);
    }
    out(&format!("Reset {name}\n"))
}

pub fn pause(paths: &HostPaths, name: &str, json: bool) -> eyre::Result<()> {
    begin_action(json, name, "pause");
    let m = manager(paths)?;
    block_on(|| format!("Cannot pause VM {name}"), m.pause(name))?;
    if json {
        return action_done(paths, &m, name);
    }
    out(&format!("Paused {name}\n"))
}

pub fn resume(paths: &HostPaths, name: &str, json: bool) -> eyre::Result<()> {
    begin_action(json, name, "resume");
    let m = manager(paths)?;
    block_on(|| format!("Cannot resume VM {name}"), m.resume(name))?;
    if json {
        return action_done(paths, &m, name);
    }
    out(&format!("Resumed {name}\n"))
}

pub fn delete(paths: &HostPaths, name: &str, confirm: &Confirm, json: bool) -> eyre::Result<()> {
    begin_action(json, name, "delete");
    confirm.ask(&format!("Delete the definition of VM {name}"))?;
    let m = manager(paths)?;
    block_on(|| format!("Cannot delete VM {name}"), m.delete(name))?;
    if json {
        // Nothing is left to ask about: the definition is gone.
        doc::set("deleted", &true);
        return Ok(doc::finish_pending()?);
    }
    out(&format!("Deleted {name}\n"))
}

/// One VM of `autostart --json`.
#[derive(serde::Serialize)]
struct Started {
    vm: String,
    /// `running` or `failed`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<doc::ErrorDoc>,
}

#[derive(serde::Serialize)]
struct Autostarted {
    vms: Vec<Started>,
}

pub fn autostart(paths: &HostPaths, json: bool) -> eyre::Result<()> {
    doc::begin(json, version::AUTOSTART, &[]);
    let m = manager(paths)?;
    let results = block_on(|| "Cannot start the autostart VMs".into(), m.autostart())?;
    let mut failed = 0;
    let mut s = String::new();
    let mut vms = Vec::new();
    if results.is_empty() {
        s.push_str("No VM is marked autostart\n");
    }
    for (name, r) in results {
        match r {
            Ok(()) => {
                s.push_str(&format!("{name}: running\n"));
                vms.push(Started {
                    vm: name,
                    result: "running",
                    error: None,
                });
            }
            Err(e) => {
                failed += 1;
                s.push_str(&format!("{name}: failed: {}\n", crate::error::Chain(&e)));
                vms.push(Started {
                    result: "failed",
                    error: Some(doc::ErrorDoc::of(&e)),
                    vm: name,
                });
            }
        }
    }
    if json {
        doc::finish(version::AUTOSTART, &Autostarted { vms })?;
    } else {
        out(&s)?;
    }
    if failed > 0 {
        return Err(eyre!("{failed} VM(s) marked autostart did not start"));
    }
    Ok(())
}
