//! The runtime side of the GPU screen: reviews, plans run with each step reported live,
//! assignments through [`crate::ops::gpu`] (the same operations as `phyllome gpu`), the boot
//! configuration, and the device states. Each job runs on a blocking thread and sends its
//! results back as `Action::Gpu`; the loop never waits for one. Every write goes under the
//! console's host root, through the simulated kernel when `simulate` is on.

use std::cell::RefCell;

use tokio::sync::mpsc::UnboundedSender;

use crate::host::{PciAddress, SysRoot};
use crate::ops::gpu::{self as ops, GpuError};
use crate::ops::HostPaths;
use crate::vfio::{self, error_chain, ApplyError, Plan};

use super::action::Action;
use super::gpus::{BootChange, BootView, FailureReport, GpuJob, GpuMsg, GpuOp, Outcome, Review};

pub struct GpuBackend {
    paths: HostPaths,
    tx: UnboundedSender<Action>,
}

type Send<'a> = &'a dyn Fn(GpuMsg);

impl GpuBackend {
    pub fn new(paths: HostPaths, tx: UnboundedSender<Action>) -> GpuBackend {
        GpuBackend { paths, tx }
    }

    /// Runs `job` on a blocking thread; its results come back on the loop's channel.
    pub fn run(&self, job: GpuJob) {
        let (paths, tx) = (self.paths.clone(), self.tx.clone());
        tokio::task::spawn_blocking(move || {
            // The loop may have ended meanwhile; nobody is left to tell.
            let send = |m: GpuMsg| {
                let _ = tx.send(Action::Gpu(Box::new(m)));
            };
            work(&paths, job, &send);
        });
    }
}

/// Runs one job, sending whatever it produces. Public for tests that run jobs without a loop.
pub fn work(paths: &HostPaths, job: GpuJob, send: Send<'_>) {
    match job {
        GpuJob::LoadStates => {
            if let Ok(states) = ops::states(paths) {
                send(GpuMsg::States(states));
            }
        }
        GpuJob::Review { op, gpu, vm } => {
            let result = review(paths, op, gpu, vm.as_deref()).map_err(|e| chain(&e));
            send(GpuMsg::Reviewed { gpu, op, result });
        }
        GpuJob::Run { op, gpu, review } => {
            let outcome = run(paths, op, gpu, &review, send);
            send(GpuMsg::Finished(outcome));
        }
        GpuJob::Boot(gpu) => send(GpuMsg::Boot(boot(paths, gpu).map_err(|e| chain(&e)))),
        GpuJob::BootChange { gpu, change } => send(GpuMsg::BootChanged(
            boot_change(paths, gpu, change).map_err(|e| chain(&e)),
        )),
    }
}

fn chain(e: &GpuError) -> String {
    error_chain(e)
}

fn review(
    paths: &HostPaths,
    op: GpuOp,
    gpu: PciAddress,
    vm: Option<&str>,
) -> Result<Review, GpuError> {
    let host = crate::ops::host::read(paths)?;
    let mut r = Review {
        runs_now: true,
        ..Review::default()
    };
    match op {
        GpuOp::Assign => {
            let vm = vm.ok_or(GpuError::NoVm)?;
            let p = ops::prepare(paths, &gpu.to_string(), vm)?;
            r.notes.push(if p.new.is_empty() {
                format!(
                    "IOMMU group {} is already assigned to VM {vm}",
                    p.plan.group
                )
            } else if p.running {
                format!("VM {vm} runs: the group moves to vfio-pci now and is hot-plugged into it")
            } else {
                format!(
                    "VM {vm} is stopped: the group is recorded in its definition; these steps \
                     run when it starts"
                )
            });
            r.runs_now = p.running && !p.new.is_empty();
            r.vm_running = p.running;
            r.vm = Some(vm.to_string());
            r.plan = Some(p.plan);
        }
        GpuOp::Detach | GpuOp::Preview => {
            let plan = ops::detach_plan(paths, &host, gpu)?;
            if op == GpuOp::Preview {
                r.notes
                    .push("Dry run: what a detach would do; nothing is changed".into());
            } else {
                ops::refuse_in_use(paths, &host.inventory, &plan)?;
                r.notes.push(format!(
                    "IOMMU group {} moves to vfio-pci for no VM in particular",
                    plan.group
                ));
            }
            r.plan = Some(plan);
        }
        GpuOp::Reattach => {
            let plan = ops::reattach_plan(paths, &host, gpu)?;
            ops::refuse_in_use(paths, &host.inventory, &plan)?;
            r.notes.push(format!(
                "IOMMU group {} goes back to its host drivers",
                plan.group
            ));
            r.plan = Some(plan);
        }
        GpuOp::Unassign => {
            let (vm, entries) =
                ops::holder(paths, &host.inventory, gpu)?.ok_or(GpuError::NotAssigned(gpu))?;
            let state = crate::ops::vm::run_state(paths, &vm)?;
            let running = crate::ops::vm::is_live(state) == Some(true);
            let list = entries
                .iter()
                .map(|v| v.address.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            r.notes.push(if running {
                format!(
                    "VM {vm} runs: {list} are unplugged from it (vm.remove-device) and go back \
                     to their host drivers"
                )
            } else {
                format!("VM {vm} is stopped: {list} leave its definition; nothing else moves")
            });
            r.vm = Some(vm);
            r.vm_running = running;
            r.runs_now = false;
        }
    }
    Ok(r)
}

fn run(paths: &HostPaths, op: GpuOp, gpu: PciAddress, review: &Review, send: Send<'_>) -> Outcome {
    let failure: RefCell<Option<FailureReport>> = RefCell::new(None);
    let mut out = |line: &str| send(GpuMsg::Log(line.trim_end().to_string()));
    // Runs a confirmed plan with each step sent as it happens; a failed step's rollback is
    // kept whole for the screen, not just its message.
    let mut detach = |plan: &Plan, root: &SysRoot| -> Result<(), GpuError> {
        let mut on_step = |e: &vfio::StepEvent| send(GpuMsg::Step(e.clone()));
        let result = ops::apply(paths, plan, root, &mut on_step);
        if let Err(GpuError::Apply(ApplyError::Failed(f))) = &result {
            *failure.borrow_mut() = Some(FailureReport {
                step: f.step,
                description: f.description.clone(),
                error: error_chain(&f.error),
                restored: f.restored.clone(),
                unrestored: f.unrestored.clone(),
            });
        }
        result
    };
    let result: Result<String, GpuError> = (|| match op {
        GpuOp::Preview => Ok("Nothing was changed".to_string()),
        GpuOp::Detach | GpuOp::Reattach => {
            let plan = review.plan.as_ref().ok_or(GpuError::NoPlan)?;
            let root = paths.sys_root()?;
            detach(plan, &root)?;
            if op == GpuOp::Reattach {
                ops::forget_failed_release(paths, plan);
                Ok(format!(
                    "IOMMU group {} is back on its host drivers",
                    plan.group
                ))
            } else {
                Ok(format!("IOMMU group {} is on vfio-pci", plan.group))
            }
        }
        GpuOp::Assign => {
            let vm = review.vm.as_deref().ok_or(GpuError::NoVm)?;
            let shown = review.plan.as_ref().ok_or(GpuError::NoPlan)?;
            let mut p = ops::prepare(paths, &gpu.to_string(), vm)?;
            if p.plan.steps != shown.steps {
                return Err(GpuError::PlanChanged);
            }
            // The plan the owner confirmed (typed phrase included) is the one that runs.
            p.plan = shown.clone();
            ops::finish(paths, &p, &mut out, &mut detach)?;
            Ok(format!("VM {vm} has IOMMU group {}", shown.group))
        }
        GpuOp::Unassign => {
            ops::unassign(paths, &gpu.to_string(), &mut out)?;
            Ok(format!(
                "{} no longer has {gpu}",
                review
                    .vm
                    .as_deref()
                    .map_or("The VM".to_string(), |v| format!("VM {v}"))
            ))
        }
    })();
    match (result, failure.into_inner()) {
        (Ok(line), _) => Outcome::Done(vec![line]),
        (Err(_), Some(f)) => Outcome::Failed(f),
        (Err(e), None) => Outcome::Error(chain(&e)),
    }
}

fn boot(paths: &HostPaths, gpu: PciAddress) -> Result<BootView, GpuError> {
    let boot = ops::boot_config(paths, &gpu.to_string())?;
    let missing = boot.missing();
    Ok(BootView {
        config: boot.config,
        missing,
    })
}

fn boot_change(
    paths: &HostPaths,
    gpu: PciAddress,
    change: BootChange,
) -> Result<Vec<String>, GpuError> {
    let boot = ops::boot_config(paths, &gpu.to_string())?;
    let (changed, verb, then) = match change {
        BootChange::Install => (boot.install()?, "wrote", &boot.config.commands),
        BootChange::Uninstall => (boot.uninstall()?, "removed", &boot.config.undo_commands),
    };
    let mut lines: Vec<String> = changed.iter().map(|p| format!("{verb} {p}")).collect();
    if lines.is_empty() {
        lines.push("no file of phyllome's to remove".into());
    }
    lines.extend(then.iter().map(|c| format!("then: {c}")));
    Ok(lines)
}
