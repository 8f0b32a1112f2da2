//! The runtime side of the GPU screen: reviews, plans run with each step reported live,
//! assignments through the CLI's own assign/hot-plug code, the boot configuration, and the
//! device states. Each job runs on a blocking thread and sends its results back as
//! `Action::Gpu`; the loop never waits for one. Every write goes under the console's host
//! root, through the fake kernel on a fixture tree.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use eyre::eyre;
use tokio::sync::mpsc::UnboundedSender;

use crate::cli::gpu::{assign, list, moves};
use crate::cli::GlobalArgs;
use crate::host::{Inventory, PciAddress, SysRoot};
use crate::vfio::{self, ApplyError, Plan, ReleaseOptions};
use crate::vmm::device_ops;
use crate::vmm::manager::RunState;

use super::action::Action;
use super::gpus::{BootChange, BootView, FailureReport, GpuJob, GpuMsg, GpuOp, Outcome, Review};

/// The console's `--host-root`, `--state-dir`, `--run-dir` and `--ch-bin`.
#[derive(Debug, Clone, Default)]
pub struct GpuPaths {
    pub host_root: PathBuf,
    pub state_dir: Option<PathBuf>,
    pub run_dir: Option<PathBuf>,
    pub ch_bin: Option<PathBuf>,
}

impl GpuPaths {
    /// The CLI's global arguments for the same host, so its functions run unchanged.
    fn global(&self) -> GlobalArgs {
        GlobalArgs {
            host_root: Some(self.host_root.clone()),
            ch_bin: self.ch_bin.clone(),
            state_dir: self.state_dir.clone(),
            run_dir: self.run_dir.clone(),
        }
    }
}

pub struct GpuBackend {
    paths: GpuPaths,
    tx: UnboundedSender<Action>,
}

type Send<'a> = &'a dyn Fn(GpuMsg);

impl GpuBackend {
    pub fn new(paths: GpuPaths, tx: UnboundedSender<Action>) -> GpuBackend {
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
pub fn work(paths: &GpuPaths, job: GpuJob, send: Send<'_>) {
    let global = paths.global();
    match job {
        GpuJob::LoadStates => {
            if let Ok(states) = states(&global) {
                send(GpuMsg::States(states));
            }
        }
        GpuJob::Review { op, gpu, vm } => {
            let result = review(&global, op, gpu, vm.as_deref()).map_err(|e| chain(&e));
            send(GpuMsg::Reviewed { gpu, op, result });
        }
        GpuJob::Run { op, gpu, review } => {
            let outcome = run(&global, op, gpu, &review, send);
            send(GpuMsg::Finished(outcome));
        }
        GpuJob::Boot(gpu) => send(GpuMsg::Boot(boot(&global, gpu).map_err(|e| chain(&e)))),
        GpuJob::BootChange { gpu, change } => send(GpuMsg::BootChanged(
            boot_change(&global, gpu, change).map_err(|e| chain(&e)),
        )),
    }
}

fn chain(e: &eyre::Report) -> String {
    crate::error::Chain(e.as_ref()).to_string()
}

fn host(global: &GlobalArgs) -> eyre::Result<(SysRoot, Inventory)> {
    let root = global.sys_root()?;
    let inv = Inventory::collect_with(&root, &global.collect_options());
    Ok((root, inv))
}

fn states(global: &GlobalArgs) -> eyre::Result<BTreeMap<PciAddress, list::DeviceState>> {
    let (root, inv) = host(global)?;
    let records = list::live_records(global);
    let marks = list::reset_marks(global, &root);
    Ok(inv
        .pci_devices
        .iter()
        .map(|d| {
            let s = list::state_of(&inv, &records, marks.as_ref(), &d.address);
            (d.address, s)
        })
        .collect())
}

fn plan_options(global: &GlobalArgs) -> vfio::PlanOptions {
    device_ops::plan_options(global.state_dir.as_deref())
}

fn review(
    global: &GlobalArgs,
    op: GpuOp,
    gpu: PciAddress,
    vm: Option<&str>,
) -> eyre::Result<Review> {
    let (root, inv) = host(global)?;
    let mut r = Review {
        runs_now: true,
        ..Review::default()
    };
    match op {
        GpuOp::Assign => {
            let vm = vm.ok_or_else(|| eyre!("No VM chosen"))?;
            let p = assign::prepare(global, &gpu.to_string(), vm)?;
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
            let plan = vfio::plan(&root, &inv, gpu, &plan_options(global))?;
            if op == GpuOp::Preview {
                r.notes
                    .push("Dry run: what a detach would do; nothing is changed".into());
            } else {
                moves::refuse_in_use(&inv, global, &plan)?;
                r.notes.push(format!(
                    "IOMMU group {} moves to vfio-pci for no VM in particular",
                    plan.group
                ));
            }
            r.plan = Some(plan);
        }
        GpuOp::Reattach => {
            let opts = ReleaseOptions {
                plan: plan_options(global),
                ..ReleaseOptions::default()
            };
            let plan = vfio::release_plan(&root, &inv, gpu, &opts)?;
            moves::refuse_in_use(&inv, global, &plan)?;
            r.notes.push(format!(
                "IOMMU group {} goes back to its host drivers",
                plan.group
            ));
            r.plan = Some(plan);
        }
        GpuOp::Unassign => {
            let (vm, entries) = assign::holder(global, &inv, gpu)?
                .ok_or_else(|| eyre!("{gpu} is not assigned to any VM"))?;
            let running = matches!(
                assign::running_state(global, &vm)?,
                RunState::Running | RunState::Paused
            );
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

fn run(
    global: &GlobalArgs,
    op: GpuOp,
    gpu: PciAddress,
    review: &Review,
    send: Send<'_>,
) -> Outcome {
    let failure: RefCell<Option<FailureReport>> = RefCell::new(None);
    let mut out = |line: &str| send(GpuMsg::Log(line.trim_end().to_string()));
    // Runs a confirmed plan with each step sent as it happens; a failed step's rollback is
    // kept whole for the screen, not just its message.
    let mut detach = |plan: &Plan, root: &SysRoot| -> eyre::Result<()> {
        let writer = device_ops::writer_for(root);
        let mut on_step = |e: &vfio::StepEvent| send(GpuMsg::Step(e.clone()));
        match vfio::apply(plan, writer.as_ref(), root, &mut on_step) {
            Ok(_) => Ok(()),
            Err(ApplyError::Failed(f)) => {
                let report = FailureReport {
                    step: f.step,
                    description: f.description.clone(),
                    error: vfio::error_chain(&f.error),
                    restored: f.restored.clone(),
                    unrestored: f.unrestored.clone(),
                };
                *failure.borrow_mut() = Some(report);
                Err(eyre!(ApplyError::Failed(f)))
            }
            Err(e) => Err(eyre!(e)),
        }
    };
    let result: eyre::Result<String> = (|| match op {
        GpuOp::Preview => Ok("Nothing was changed".to_string()),
        GpuOp::Detach | GpuOp::Reattach => {
            let plan = review
                .plan
                .as_ref()
                .ok_or_else(|| eyre!("No plan to run"))?;
            let root = global.sys_root()?;
            detach(plan, &root)?;
            if op == GpuOp::Reattach {
                moves::forget_failed_release(global, plan);
                Ok(format!(
                    "IOMMU group {} is back on its host drivers",
                    plan.group
                ))
            } else {
                Ok(format!("IOMMU group {} is on vfio-pci", plan.group))
            }
        }
        GpuOp::Assign => {
            let vm = review.vm.as_deref().ok_or_else(|| eyre!("No VM chosen"))?;
            let shown = review
                .plan
                .as_ref()
                .ok_or_else(|| eyre!("No plan to run"))?;
            let mut p = assign::prepare(global, &gpu.to_string(), vm)?;
            if p.plan.steps != shown.steps {
                return Err(eyre!(
                    "The host changed since the plan was shown: close this and plan again"
                ));
            }
            // The plan the owner confirmed (typed phrase included) is the one that runs.
            p.plan = shown.clone();
            assign::finish(global, &p, &mut out, &mut detach)?;
            Ok(format!("VM {vm} has IOMMU group {}", shown.group))
        }
        GpuOp::Unassign => {
            assign::unassign_with(global, &gpu.to_string(), &mut out)?;
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

fn boot(global: &GlobalArgs, gpu: PciAddress) -> eyre::Result<BootView> {
    let (root, inv) = host(global)?;
    let config = vfio::boot_config(&root, &inv, gpu)?;
    let missing = config.missing_from_cmdline(&root);
    Ok(BootView { config, missing })
}

fn boot_change(
    global: &GlobalArgs,
    gpu: PciAddress,
    change: BootChange,
) -> eyre::Result<Vec<String>> {
    let (root, inv) = host(global)?;
    let config = vfio::boot_config(&root, &inv, gpu)?;
    // Under the host root: on a fixture or a copy, never this machine's /etc.
    let paths = match change {
        BootChange::Install => config.install(root.root())?,
        BootChange::Uninstall => config.uninstall(root.root())?,
    };
    let verb = match change {
        BootChange::Install => "wrote",
        BootChange::Uninstall => "removed",
    };
    let mut lines: Vec<String> = paths
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(root.root()).unwrap_or(p);
            format!("{verb} /{}", rel.display()).replace("//", "/")
        })
        .collect();
    if lines.is_empty() {
        lines.push("no file of phyllome's to remove".into());
    }
    let then = match change {
        BootChange::Install => &config.commands,
        BootChange::Uninstall => &config.undo_commands,
    };
    lines.extend(then.iter().map(|c| format!("then: {c}")));
    Ok(lines)
}
