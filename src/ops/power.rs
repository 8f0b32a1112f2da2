//! Rebooting and powering off the host: a plan that names the VMs still running, then each
//! stopped (the power button and its grace period, forced off when that fails), and only
//! when none is left, logind's `PowerOff`/`Reboot` over D-Bus.
//!
//! logind is asked first whether it is there and would do it (`CanPowerOff`), so a host
//! without it stops nothing. [`BUS_ENV`] names another bus serving `org.freedesktop.login1`,
//! as `PHYLLOME_SYSTEMD_BUS` does for systemd's manager: tests run a stand-in on a private bus.

use std::time::Duration;

use serde::Serialize;
use zbus_systemd::zbus;

use crate::vmm::manager::{ManagerError, StopMode, StopOutcome, VmManager};

use super::{HostPaths, PathsError};

/// A D-Bus address (`unix:path=/run/x/bus`) on which to find logind instead of the system bus.
pub const BUS_ENV: &str = "PHYLLOME_LOGIND_BUS";
const BUS_TIMEOUT: Duration = Duration::from_secs(5);
const SYSTEM_BUS: &str = "the system bus (unix:path=/run/dbus/system_bus_socket)";

/// What the host is asked to do once its VMs are stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerAction {
    PowerOff,
    Reboot,
}

impl PowerAction {
    /// "power off", "reboot": for sentences.
    pub fn verb(self) -> &'static str {
        match self {
            PowerAction::PowerOff => "power off",
            PowerAction::Reboot => "reboot",
        }
    }

    /// "powered off", "rebooted".
    pub fn done(self) -> &'static str {
        match self {
            PowerAction::PowerOff => "powered off",
            PowerAction::Reboot => "rebooted",
        }
    }

    /// logind's method.
    pub fn method(self) -> &'static str {
        match self {
            PowerAction::PowerOff => "PowerOff",
            PowerAction::Reboot => "Reboot",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error("{0}")]
    Paths(#[from] PathsError),
    #[error("Cannot start the runtime")]
    Runtime(#[source] std::io::Error),
    // Boxed: ManagerError is large, and every Result here carries this.
    #[error("Cannot list the VMs")]
    List(#[source] Box<ManagerError>),
    // zbus errors are large; boxed so every Result carrying them stays small.
    #[error(
        "Cannot reach logind (org.freedesktop.login1) on {bus}. The host must run \
         systemd-logind (systemctl start systemd-logind), or set {BUS_ENV} to its bus"
    )]
    Unreachable {
        bus: String,
        #[source]
        source: Box<zbus::Error>,
    },
    #[error("logind on {bus} did not answer within {timeout:?}")]
    Timeout { bus: String, timeout: Duration },
    #[error(
        "logind on {bus} will not {verb} this host for this user (Can{method}: {answer}). \
         Run it as root"
    )]
    NotAllowed {
        bus: String,
        verb: &'static str,
        method: &'static str,
        answer: String,
    },
    /// logind cannot do it: found before any VM is touched.
    #[error("Nothing was stopped: the host cannot be asked to {verb}")]
    NothingStopped {
        verb: &'static str,
        #[source]
        source: Box<PowerError>,
    },
    #[error(
        "VM {vms} started again while the others were stopped; the host was not {done}. \
         Stop what starts it (another console, an SSH session, a script) and try again"
    )]
    VmsKeepStarting { vms: String, done: &'static str },
    #[error("VM {vm} did not stop, even forced off; the host was not {done}")]
    VmStillRuns {
        vm: String,
        done: &'static str,
        #[source]
        source: Box<ManagerError>,
    },
    #[error("logind refused to {verb} the host ({method} on {bus})")]
    Call {
        verb: &'static str,
        method: &'static str,
        bus: String,
        #[source]
        source: Box<zbus::Error>,
    },
}

/// A VM whose VMM runs, as `vm list` sees it, and the grace period its stop gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedVm {
    pub name: String,
    pub state: String,
    pub stop_timeout_secs: u64,
}

/// What a reboot or power-off will do: stop these VMs, in order, then ask logind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub action: PowerAction,
    pub vms: Vec<PlannedVm>,
    /// Where logind was found ("the system bus", or the address of [`BUS_ENV`]).
    pub bus: String,
}

/// One step of the execution, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The power button was pressed; the guest has `grace` to power off.
    Stopping {
        vm: String,
        grace: Duration,
    },
    /// The stop failed; the VM is forced off now.
    Forcing {
        vm: String,
        why: String,
    },
    Stopped {
        vm: String,
        how: Stopped,
    },
    /// Every VM is down: logind is asked now.
    Calling(PowerAction),
}

/// How a VM went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The guest powered off after the power button.
    PoweredOff,
    /// Its grace period ran out: `vm.shutdown`.
    TimedOut,
    /// The graceful stop failed: forced off.
    Forced,
}

impl Stopped {
    /// `powered_off`, `timed_out`, `forced`: as `vm stop --json` spells its outcomes.
    pub fn key(self) -> &'static str {
        match self {
            Stopped::PoweredOff => "powered_off",
            Stopped::TimedOut => "timed_out",
            Stopped::Forced => "forced",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Stopped::PoweredOff => "stopped (the guest powered off)",
            Stopped::TimedOut => "forced off (the grace period ran out; vm.shutdown)",
            Stopped::Forced => "forced off",
        }
    }
}

/// The stops a power-off needs, as the VM manager does them; a trait so the order of events
/// and the refusal can be checked without VMs.
pub trait StopVm {
    fn stop_vm(
        &self,
        name: &str,
        mode: StopMode,
    ) -> impl std::future::Future<Output = Result<StopOutcome, ManagerError>>;
}

impl StopVm for VmManager {
    async fn stop_vm(&self, name: &str, mode: StopMode) -> Result<StopOutcome, ManagerError> {
        match self.stop(name, mode).await {
            // Gone by itself meanwhile: what was wanted.
            Err(ManagerError::NotRunning(_)) => Ok(StopOutcome::VmmOnly),
            other => other,
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, PowerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PowerError::Runtime)
}

/// The plan of `action` on `paths`' host: the VMs whose VMM runs, and logind asked whether
/// it would do it. Fails, stopping nothing, when logind is not there or says no.
pub fn plan(paths: &HostPaths, action: PowerAction) -> Result<Plan, PowerError> {
    let m = super::vm::manager(paths)?;
    runtime()?.block_on(async {
        let ready = async {
            let bus = Logind::connect(bus_address().as_deref()).await?;
            bus.check(action).await?;
            Ok(bus)
        };
        let bus = ready.await.map_err(|e| PowerError::NothingStopped {
            verb: action.verb(),
            source: Box::new(e),
        })?;
        Ok(Plan {
            action,
            vms: running_of(paths, &m).await?,
            bus: bus.bus,
        })
    })
}

/// The VMs whose VMM runs (whatever its state: a paused or hung one is stopped too), as
/// `vm list` sees them.
pub fn running(paths: &HostPaths) -> Result<Vec<PlannedVm>, PowerError> {
    let m = super::vm::manager(paths)?;
    runtime()?.block_on(running_of(paths, &m))
}

async fn running_of(paths: &HostPaths, m: &VmManager) -> Result<Vec<PlannedVm>, PowerError> {
    let rows = m.list().await.map_err(|e| PowerError::List(Box::new(e)))?;
    Ok(rows
        .into_iter()
        .filter(|r| r.state.has_vmm())
        .map(|r| PlannedVm {
            stop_timeout_secs: super::vm::grace_period(paths, &r.name).as_secs(),
            name: r.name,
            state: r.state.as_str().to_string(),
        })
        .collect())
}

/// Stops every VM of the plan, then asks logind. Nothing is asked of logind unless every VM
/// stopped.
pub fn execute(
    paths: &HostPaths,
    plan: &Plan,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), PowerError> {
    stop_all(paths, plan, progress)?;
    progress(Progress::Calling(plan.action));
    call(paths, plan.action)
}

/// How many times VMs started while the others were being stopped are stopped in turn before
/// the power-off gives up.
const LATE_ROUNDS: usize = 3;

/// Stops every VM of the plan (see [`stop_each`]).
pub fn stop_all(
    paths: &HostPaths,
    plan: &Plan,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), PowerError> {
    let m = super::vm::manager(paths)?;
    runtime()?.block_on(async {
        stop_each(&m, plan, progress).await?;
        // Another console (tty1, ttyS0, an SSH login) or a script may have started a VM
        // meanwhile: it is stopped too, and one that keeps coming back ends it.
        for _ in 0..LATE_ROUNDS {
            let late = running_of(paths, &m).await?;
            if late.is_empty() {
                return Ok(());
            }
            let again = Plan {
                vms: late,
                ..plan.clone()
            };
            stop_each(&m, &again, progress).await?;
        }
        none_running(paths, &m, plan.action).await
    })
}

/// An error naming the VMs whose VMM runs, if any does.
async fn none_running(
    paths: &HostPaths,
    m: &VmManager,
    action: PowerAction,
) -> Result<(), PowerError> {
    let late = running_of(paths, m).await?;
    if late.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = late.iter().map(|v| v.name.as_str()).collect();
    Err(PowerError::VmsKeepStarting {
        vms: names.join(", "),
        done: action.done(),
    })
}

/// Each VM in turn: the power button and its grace period (forced off with `vm.shutdown` when
/// it runs out); a stop that fails is forced; a VM still there after that ends it all.
pub async fn stop_each(
    m: &impl StopVm,
    plan: &Plan,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), PowerError> {
    for vm in &plan.vms {
        let grace = Duration::from_secs(vm.stop_timeout_secs.max(1));
        progress(Progress::Stopping {
            vm: vm.name.clone(),
            grace,
        });
        let how = match m
            .stop_vm(&vm.name, StopMode::Graceful { timeout: grace })
            .await
        {
            Ok(StopOutcome::TimedOut | StopOutcome::CutShort) => Stopped::TimedOut,
            Ok(StopOutcome::Forced) => Stopped::Forced,
            Ok(StopOutcome::PoweredOff | StopOutcome::VmmOnly) => Stopped::PoweredOff,
            Err(e) => {
                progress(Progress::Forcing {
                    vm: vm.name.clone(),
                    why: crate::error::Chain(&e).to_string(),
                });
                m.stop_vm(&vm.name, StopMode::Force)
                    .await
                    .map_err(|source| PowerError::VmStillRuns {
                        vm: vm.name.clone(),
                        done: plan.action.done(),
                        source: Box::new(source),
                    })?;
                Stopped::Forced
            }
        };
        tracing::info!(vm = %vm.name, "VM {}: {} for the host's {}", vm.name, how.describe(), plan.action.verb());
        progress(Progress::Stopped {
            vm: vm.name.clone(),
            how,
        });
    }
    Ok(())
}

/// Asks logind to power off or reboot now (`interactive = false`: no polkit prompt), once more
/// making sure no VM runs: one started since the stops would be cut off by the power-off.
pub fn call(paths: &HostPaths, action: PowerAction) -> Result<(), PowerError> {
    let m = super::vm::manager(paths)?;
    runtime()?.block_on(async {
        none_running(paths, &m, action).await?;
        let bus = Logind::connect(bus_address().as_deref()).await?;
        bus.call(action).await
    })
}

/// The address [`BUS_ENV`] gives, if any; else logind is on the system bus.
fn bus_address() -> Option<String> {
    std::env::var(BUS_ENV).ok().filter(|a| !a.trim().is_empty())
}

mod logind;
#[cfg(test)]
mod tests;

use logind::Logind;
