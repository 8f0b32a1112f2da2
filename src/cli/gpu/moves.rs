//! `phyllome gpu detach|reattach`: plan, confirm, apply with each step's result printed as
//! it happens; on failure, what failed and what was restored, and a non-zero exit.

use std::io::IsTerminal;

use super::say;
use crate::cli::doc::{self, version};
use crate::host::SysRoot;
use crate::ops::gpu::{self, GpuError};
use crate::ops::HostPaths;
use crate::vfio::{self, Action, Phase, Plan, StepEvent, StepStatus};

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("Cannot read the confirmation")]
    Read(#[source] std::io::Error),
}

pub fn detach(
    paths: &HostPaths,
    address: &str,
    dry_run: bool,
    yes: bool,
    json: bool,
) -> eyre::Result<()> {
    begin(json, "detach", address, dry_run);
    let host = crate::ops::host::read(paths)?;
    let address = gpu::device_address(&host.inventory, address)?;
    let mut plan = gpu::detach_plan(paths, &host, address)?;
    planned(&plan);
    say(&plan.to_string())?;
    if dry_run {
        say("Dry run: nothing was changed.\n")?;
        return dry_run_done(&plan);
    }
    gpu::refuse_in_use(paths, &host.inventory, &plan)?;
    confirm(&mut plan, yes)?;
    run(paths, &plan, &host.root)?;
    if json {
        return moved("vfio-pci");
    }
    say(&format!(
        "IOMMU group {} is on vfio-pci: {}\n",
        plan.group,
        addresses(&plan)
    ))?;
    Ok(())
}

pub fn reattach(paths: &HostPaths, address: &str, dry_run: bool, json: bool) -> eyre::Result<()> {
    begin(json, "reattach", address, dry_run);
    let host = crate::ops::host::read(paths)?;
    let address = gpu::device_address(&host.inventory, address)?;
    let plan = gpu::reattach_plan(paths, &host, address)?;
    planned(&plan);
    say(&plan.to_string())?;
    if dry_run {
        say("Dry run: nothing was changed.\n")?;
        return dry_run_done(&plan);
    }
    gpu::refuse_in_use(paths, &host.inventory, &plan)?;
    run(paths, &plan, &host.root)?;
    gpu::forget_failed_release(paths, &plan);
    if json {
        return moved("host drivers");
    }
    say(&format!(
        "IOMMU group {} is back on its host drivers: {}\n",
        plan.group,
        addresses(&plan)
    ))?;
    Ok(())
}

/// Starts the `--json` document of a detach or reattach.
fn begin(json: bool, action: &str, address: &str, dry_run: bool) {
    doc::begin(
        json,
        version::GPU_MOVE,
        &[
            ("action", action.into()),
            ("address", address.into()),
            ("dry_run", dry_run.into()),
        ],
    );
}

/// The group and its devices, known once planned (a failure after this still tells them).
pub(super) fn planned(plan: &Plan) {
    doc::set("group", &plan.group);
    let devices: Vec<String> = plan.devices.iter().map(|d| d.address.to_string()).collect();
    doc::set("devices", &devices);
}

/// A dry run's document: the whole plan, nothing done.
fn dry_run_done(plan: &Plan) -> eyre::Result<()> {
    if doc::active() {
        #[derive(serde::Serialize)]
        struct DryRun<'a> {
            plan: &'a Plan,
        }
        doc::finish(version::GPU_MOVE, &DryRun { plan })?;
    }
    Ok(())
}

/// The result of a move that went through: where the devices are now.
fn moved(now_on: &str) -> eyre::Result<()> {
    doc::set("result", &"done");
    doc::set("now_on", &now_on);
    Ok(doc::finish_pending()?)
}

fn addresses(plan: &Plan) -> String {
    plan.devices
        .iter()
        .map(|d| d.address.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The typed confirmation: `--yes` gives it; on a terminal the phrase is asked for; without
/// one the command refuses, so a script never takes the console GPU by accident.
pub(super) fn confirm(plan: &mut Plan, yes: bool) -> eyre::Result<()> {
    let Some(c) = plan.needs_confirmation.clone() else {
        return Ok(());
    };
    if yes {
        return Ok(gpu::confirm(plan, Some(&c.phrase))?);
    }
    if !std::io::stdin().is_terminal() {
        return Ok(gpu::confirm(plan, None)?);
    }
    crate::cli::output::note(&format!("{}\nType {:?} to go ahead: ", c.reason, c.phrase));
    let mut typed = String::new();
    std::io::stdin()
        .read_line(&mut typed)
        .map_err(MoveError::Read)?;
    Ok(gpu::confirm(plan, Some(&typed))?)
}

/// Applies the plan, printing every step's result as it happens; a failure prints what was
/// restored and what was not, and comes back as the error.
pub(super) fn run(paths: &HostPaths, plan: &Plan, root: &SysRoot) -> Result<(), GpuError> {
    let mut print = |e: &StepEvent| {
        record(plan, e);
        let line = match (&e.phase, &e.status) {
            (_, StepStatus::Running) => return,
            (Phase::Do, StepStatus::Done) => format!("  ok      {}\n", e.description),
            (Phase::Do, StepStatus::Failed(why)) => {
                format!("  FAILED  {}: {why}\n", e.description)
            }
            (Phase::Undo, StepStatus::Done) => format!("  undone  {}\n", e.description),
            (Phase::Undo, StepStatus::Failed(why)) => {
                format!("  NOT UNDONE  {}: {why}\n", e.description)
            }
        };
        let _ = say(&line);
    };
    let result = gpu::apply(paths, plan, root, &mut print);
    if let Err(GpuError::Apply(e)) = &result {
        if let Some(f) = e.failure() {
            let mut s = format!("Failed: step {}: {}\n", f.step + 1, f.description);
            s.push_str(&format!("  because: {}\n", vfio::error_chain(&f.error)));
            for r in &f.restored {
                s.push_str(&format!("  restored: {r}\n"));
            }
            for u in &f.unrestored {
                s.push_str(&format!("  NOT restored: {u}\n"));
            }
            if f.unrestored.is_empty() {
                s.push_str("Everything was restored: the host is as it was.\n");
            }
            let _ = say(&s);
            doc::set("unrestored", &f.unrestored);
        }
    }
    result
}

/// One step's result in a `--json` document.
#[derive(serde::Serialize)]
struct StepDoc {
    /// 1-based, as the plan numbers them.
    step: usize,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    /// `done` or `failed`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A step's result into the pending document: done steps and their failure under `steps`,
/// the undo steps of a rollback under `rolled_back`.
fn record(plan: &Plan, e: &StepEvent) {
    let (result, error) = match &e.status {
        StepStatus::Running => return,
        StepStatus::Done => ("done", None),
        StepStatus::Failed(why) => ("failed", Some(why.to_string())),
    };
    let mut entry = StepDoc {
        step: e.index + 1,
        description: e.description.clone(),
        op: None,
        device: None,
        from: None,
        to: None,
        result,
        error,
    };
    let key = match e.phase {
        Phase::Do => {
            if let Some(step) = plan.steps.get(e.index) {
                let (op, device, from, to) = ends(&step.action);
                (entry.op, entry.device, entry.from, entry.to) = (Some(op), device, from, to);
            }
            "steps"
        }
        Phase::Undo => "rolled_back",
    };
    doc::push(key, &entry);
}

/// What a step does in JSON terms: its operation, the device, the driver it leaves (`from`)
/// and the one it is meant to end on (`to`).
fn ends(a: &Action) -> (String, Option<String>, Option<String>, Option<String>) {
    let op = serde_json::to_value(a)
        .ok()
        .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_string))
        .unwrap_or_default();
    let (device, from, to) = match a {
        Action::BindConsole { vtconsole, bind } => {
            let fbcon = Some("fbcon".to_string());
            let (from, to) = if *bind { (None, fbcon) } else { (fbcon, None) };
            (Some(vtconsole.clone()), from, to)
        }
        Action::UnbindFramebuffer { device, driver } => {
            (Some(device.clone()), Some(driver.clone()), None)
        }
        Action::BindFramebuffer { device, driver } => {
            (Some(device.clone()), None, Some(driver.clone()))
        }
        Action::SetOverride { device, driver } => (Some(device.to_string()), None, driver.clone()),
        Action::Unbind { device, driver } => (Some(device.to_string()), Some(driver.clone()), None),
        Action::Probe { device } => (Some(device.to_string()), None, None),
        Action::Verify { device, driver, .. } => (Some(device.to_string()), None, driver.clone()),
    };
    (op, device, from, to)
}
