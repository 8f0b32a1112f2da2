//! `phyllome gpu detach|reattach`: plan, confirm, apply with each step's result printed as
//! it happens; on failure, what failed and what was restored, and a non-zero exit.

use std::io::IsTerminal;

use eyre::eyre;

use super::super::GlobalArgs;
use super::list::{live_records, state_of, DeviceState};
use super::{device_address, say};
use crate::host::{Inventory, SysRoot};
use crate::vfio::{self, Phase, Plan, PlanOptions, ReleaseOptions, StepEvent, StepStatus};

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("Refusing to take {address} without confirmation: {reason}. There is no terminal to type the confirmation on; pass --yes if you can reach this host over serial or SSH")]
    NoTerminal { address: String, reason: String },
    #[error("Not confirmed: the phrase typed was not {phrase:?}; nothing was changed")]
    Declined { phrase: String },
    #[error("Cannot read the confirmation")]
    Read(#[source] std::io::Error),
    #[error("{address} is in use by VM {vm}; stop the VM or run `phyllome gpu unassign {address}` first")]
    InUse { address: String, vm: String },
}

fn plan_options(global: &GlobalArgs) -> PlanOptions {
    crate::vmm::device_ops::plan_options(global.state_dir.as_deref())
}

pub fn detach(global: &GlobalArgs, address: &str, dry_run: bool, yes: bool) -> eyre::Result<()> {
    let root = global.sys_root()?;
    let inv = Inventory::collect_with(&root, &global.collect_options());
    let address = device_address(&inv, address)?;
    let mut plan = vfio::plan(&root, &inv, address, &plan_options(global))?;
    say(&plan.to_string())?;
    if dry_run {
        say("Dry run: nothing was changed.\n")?;
        return Ok(());
    }
    refuse_in_use(&inv, global, &plan)?;
    confirm(&mut plan, yes)?;
    run(&plan, &root)?;
    say(&format!(
        "IOMMU group {} is on vfio-pci: {}\n",
        plan.group,
        addresses(&plan)
    ))?;
    Ok(())
}

pub fn reattach(global: &GlobalArgs, address: &str, dry_run: bool) -> eyre::Result<()> {
    let root = global.sys_root()?;
    let inv = Inventory::collect_with(&root, &global.collect_options());
    let address = device_address(&inv, address)?;
    // Without a record of where they came from, probing finds each device its host driver.
    let opts = ReleaseOptions {
        plan: plan_options(global),
        ..ReleaseOptions::default()
    };
    let plan = vfio::release_plan(&root, &inv, address, &opts)?;
    say(&plan.to_string())?;
    if dry_run {
        say("Dry run: nothing was changed.\n")?;
        return Ok(());
    }
    refuse_in_use(&inv, global, &plan)?;
    run(&plan, &root)?;
    forget_failed_release(global, &plan);
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

/// A device a running VM holds is never moved under it.
pub(crate) fn refuse_in_use(
    inv: &Inventory,
    global: &GlobalArgs,
    plan: &Plan,
) -> Result<(), MoveError> {
    let records = live_records(global);
    for d in &plan.devices {
        if let DeviceState::InUse { vm } = state_of(inv, &records, None, &d.address) {
            return Err(MoveError::InUse {
                address: d.address.to_string(),
                vm,
            });
        }
    }
    Ok(())
}

/// A successful reattach settles a release that failed earlier for these devices.
pub(crate) fn forget_failed_release(global: &GlobalArgs, plan: &Plan) {
    let Ok(run_root) = crate::vmm::runtime::RunRoot::resolve(global.run_dir.as_deref()) else {
        return;
    };
    let records = crate::vmm::managed::Records::new(&run_root);
    for mut rec in records.all() {
        let before = rec.devices.len();
        rec.devices
            .retain(|a| !plan.devices.iter().any(|d| d.address == *a));
        if rec.devices.len() == before {
            continue;
        }
        if rec.devices.is_empty() {
            records.remove(&rec.vm);
        } else {
            let _ = records.write(&rec);
        }
        records.log(&rec.vm, "devices reattached by hand");
    }
}

/// The typed confirmation: `--yes` gives it; on a terminal the phrase is asked for; without
/// one the command refuses, so a script never takes the console GPU by accident.
pub(super) fn confirm(plan: &mut Plan, yes: bool) -> eyre::Result<()> {
    let Some(c) = plan.needs_confirmation.clone() else {
        return Ok(());
    };
    if yes {
        plan.confirm(&c.phrase)?;
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(MoveError::NoTerminal {
            address: plan.target.to_string(),
            reason: c.reason,
        }
        .into());
    }
    eprint!("{}\nType {:?} to go ahead: ", c.reason, c.phrase);
    let mut typed = String::new();
    std::io::stdin()
        .read_line(&mut typed)
        .map_err(MoveError::Read)?;
    if plan.confirm(&typed).is_err() {
        return Err(MoveError::Declined { phrase: c.phrase }.into());
    }
    Ok(())
}

/// Applies the plan, printing every step's result as it happens; a failure becomes an
/// error that lists what was restored and what was not.
pub(super) fn run(plan: &Plan, root: &SysRoot) -> eyre::Result<()> {
    let writer = crate::vmm::device_ops::writer_for(root);
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
    match vfio::apply(plan, writer.as_ref(), root, &mut print) {
        Ok(_) => Ok(()),
        Err(e) => {
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
            Err(eyre!(e))
        }
    }
}
