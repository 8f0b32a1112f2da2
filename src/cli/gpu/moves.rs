//! `phyllome gpu detach|reattach`: plan, confirm, apply with each step's result printed as
//! it happens; on failure, what failed and what was restored, and a non-zero exit.

use std::io::IsTerminal;

use super::say;
use crate::host::SysRoot;
use crate::ops::gpu::{self, GpuError};
use crate::ops::HostPaths;
use crate::vfio::{self, Phase, Plan, StepEvent, StepStatus};

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("Cannot read the confirmation")]
    Read(#[source] std::io::Error),
}

pub fn detach(paths: &HostPaths, address: &str, dry_run: bool, yes: bool) -> eyre::Result<()> {
    let host = crate::ops::host::read(paths)?;
    let address = gpu::device_address(&host.inventory, address)?;
    let mut plan = gpu::detach_plan(paths, &host, address)?;
    say(&plan.to_string())?;
    if dry_run {
        say("Dry run: nothing was changed.\n")?;
        return Ok(());
    }
    gpu::refuse_in_use(paths, &host.inventory, &plan)?;
    confirm(&mut plan, yes)?;
    run(paths, &plan, &host.root)?;
    say(&format!(
        "IOMMU group {} is on vfio-pci: {}\n",
        plan.group,
        addresses(&plan)
    ))?;
    Ok(())
}

pub fn reattach(paths: &HostPaths, address: &str, dry_run: bool) -> eyre::Result<()> {
    let host = crate::ops::host::read(paths)?;
    let address = gpu::device_address(&host.inventory, address)?;
    let plan = gpu::reattach_plan(paths, &host, address)?;
    say(&plan.to_string())?;
    if dry_run {
        say("Dry run: nothing was changed.\n")?;
        return Ok(());
    }
    gpu::refuse_in_use(paths, &host.inventory, &plan)?;
    run(paths, &plan, &host.root)?;
    gpu::forget_failed_release(paths, &plan);
    say(&format!(
        "IOMMU group {} is back on its host drivers: {}\n",
        plan.group,
        addresses(&plan)
    ))?;
    Ok(())
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
        }
    }
    result
}
