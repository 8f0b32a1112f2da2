//! What the GPU screen's operations draw from: the flow of one operation (pick a VM, review
//! the plan, confirm, watch each step), the boot-configuration preview, and where every
//! device stands (host driver, vfio-pci, in use by a VM, release failed, needs reboot).
//! Plain data; changed only by `update`, filled by the background jobs of `gpu_runtime`.

use std::collections::BTreeMap;

use phyllome_widgets::ConfirmMode;

use crate::host::{Inventory, PciAddress};
use crate::ops::gpu::DeviceState;
use crate::vfio::{BootConfig, Phase, Plan, StepEvent, StepStatus};

/// An operation started from the GPU screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuOp {
    /// Record the group in a VM's definition; detach and hot-plug it when the VM runs.
    Assign,
    /// Bind the group to vfio-pci, for no VM in particular.
    Detach,
    /// Give the group back to its host drivers.
    Reattach,
    /// Take the group out of the VM that has it (unplug and release when it runs).
    Unassign,
    /// Show the plan of a detach; change nothing.
    Preview,
}

impl GpuOp {
    pub fn title(self) -> &'static str {
        match self {
            GpuOp::Assign => "Give to a VM",
            GpuOp::Detach => "Detach to vfio-pci",
            GpuOp::Reattach => "Back to the host drivers",
            GpuOp::Unassign => "Take back from its VM",
            GpuOp::Preview => "Plan (dry run)",
        }
    }

    /// Whether it changes the host (refused in read-only mode).
    pub fn changes_host(self) -> bool {
        self != GpuOp::Preview
    }
}

/// What the background review found: the plan that would run and what else to know.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Review {
    /// The steps that run now; `None` when nothing on the host moves now (a stopped VM).
    pub plan: Option<Plan>,
    /// The VM involved (assign, unassign).
    pub vm: Option<String>,
    /// Whether that VM runs, so the devices move now.
    pub vm_running: bool,
    /// Whether the plan's steps run when confirmed (not for a stopped VM: they run at its
    /// start).
    pub runs_now: bool,
    /// Lines shown above the steps: what happens, and why.
    pub notes: Vec<String>,
}

/// One line of the progress list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    pub description: String,
    /// `None` until the step starts.
    pub status: Option<StepStatus>,
}

/// Each step's result as it happens, the rollback after a failure, and other progress lines
/// (hot-plug, unplug).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    pub steps: Vec<StepRow>,
    pub rollback: Vec<StepRow>,
    pub log: Vec<String>,
}

impl Progress {
    pub fn for_plan(plan: Option<&Plan>) -> Progress {
        let steps = plan
            .map(|p| {
                p.steps
                    .iter()
                    .map(|s| StepRow {
                        description: s.description.clone(),
                        status: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Progress {
            steps,
            ..Progress::default()
        }
    }

    /// Folds one step event in: a plan step's row changes; an undo gets its own row, kept
    /// in the order the rollback ran.
    pub fn record(&mut self, e: &StepEvent) {
        match e.phase {
            Phase::Do => {
                if let Some(row) = self.steps.get_mut(e.index) {
                    row.status = Some(e.status.clone());
                } else {
                    // A plan that grew (another group's steps): keep what happened anyway.
                    self.steps.push(StepRow {
                        description: e.description.clone(),
                        status: Some(e.status.clone()),
                    });
                }
            }
            Phase::Undo => match self.rollback.last_mut() {
                Some(row)
                    if row.description == e.description
                        && row.status == Some(StepStatus::Running) =>
                {
                    row.status = Some(e.status.clone());
                }
                _ => self.rollback.push(StepRow {
                    description: e.description.clone(),
                    status: Some(e.status.clone()),
                }),
            },
        }
    }

    pub fn done(&self) -> usize {
        self.steps
            .iter()
            .filter(|r| r.status == Some(StepStatus::Done))
            .count()
    }
}

/// A failed step and the rollback, as `vfio::Failure` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    /// 0-based index of the failed step.
    pub step: usize,
    pub description: String,
    pub error: String,
    pub restored: Vec<String>,
    pub unrestored: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything went through; one line per result.
    Done(Vec<String>),
    /// A step failed and the plan was rolled back (maybe not all of it).
    Failed(FailureReport),
    /// Refused or failed before or after the steps (stale plan, hot-plug refused, ...).
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Assign: choose the VM (from the VM list).
    PickVm {
        selected: usize,
    },
    /// The review runs in the background.
    Planning,
    Review(Box<Review>),
    /// `error` says why the last answer was not accepted.
    Confirm {
        review: Box<Review>,
        mode: ConfirmMode,
        error: Option<String>,
    },
    Running {
        review: Box<Review>,
        progress: Progress,
    },
    Finished {
        review: Box<Review>,
        progress: Progress,
        outcome: Outcome,
    },
    /// The review refused (guard rail, nothing to release, ...).
    Refused(String),
}

/// One operation on one GPU, from choosing it to its last step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub op: GpuOp,
    pub gpu: PciAddress,
    pub gpu_name: String,
    pub vm: Option<String>,
    pub stage: Stage,
    pub scroll: usize,
}

impl Flow {
    pub fn busy(&self) -> bool {
        matches!(self.stage, Stage::Planning | Stage::Running { .. })
    }
}

/// The boot configuration and how the running kernel compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootView {
    pub config: BootConfig,
    /// Kernel arguments missing from `/proc/cmdline`.
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootChange {
    Install,
    Uninstall,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFlow {
    pub gpu: PciAddress,
    /// `None` while it is read.
    pub view: Option<Result<BootView, String>>,
    pub scroll: usize,
    pub confirm: Option<(BootChange, ConfirmMode)>,
    pub busy: bool,
    /// The last install/uninstall's result.
    pub result: Option<Result<Vec<String>, String>>,
}

/// Results of the GPU screen's background jobs, sent back as `Action::Gpu`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuMsg {
    Reviewed {
        gpu: PciAddress,
        op: GpuOp,
        result: Result<Review, String>,
    },
    Step(StepEvent),
    Log(String),
    Finished(Outcome),
    Boot(Result<BootView, String>),
    BootChanged(Result<Vec<String>, String>),
    /// Where every device stands (managed-mode records, reset marks, drivers).
    States(BTreeMap<PciAddress, DeviceState>),
}

/// Work for `gpu_runtime`, returned by `update` as `Effect::Gpu`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuJob {
    Review {
        op: GpuOp,
        gpu: PciAddress,
        vm: Option<String>,
    },
    /// Run a confirmed review.
    Run {
        op: GpuOp,
        gpu: PciAddress,
        review: Box<Review>,
    },
    LoadStates,
    Boot(PciAddress),
    BootChange {
        gpu: PciAddress,
        change: BootChange,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuState {
    pub flow: Option<Flow>,
    pub boot: Option<BootFlow>,
    /// From the last background read; see [`device_state`].
    pub states: BTreeMap<PciAddress, DeviceState>,
    /// One line under the GPU list: refusals, outcomes.
    pub message: Option<String>,
}

impl GpuState {
    /// The confirmation that takes keystrokes, when one is open.
    pub fn confirm_mode(&self) -> Option<&ConfirmMode> {
        match (&self.flow, &self.boot) {
            (
                Some(Flow {
                    stage: Stage::Confirm { mode, .. },
                    ..
                }),
                _,
            ) => Some(mode),
            (
                _,
                Some(BootFlow {
                    confirm: Some((_, mode)),
                    ..
                }),
            ) => Some(mode),
            _ => None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.flow.is_some() || self.boot.is_some()
    }
}

/// The GPUs the list shows under `filter` (address, name or driver; case-insensitive), in
/// inventory order.
pub fn visible<'a>(inv: &'a Inventory, filter: &str) -> Vec<&'a crate::host::Gpu> {
    let f = filter.to_lowercase();
    inv.gpus
        .iter()
        .filter(|g| {
            f.is_empty()
                || format!("{} {} {:?}", g.address, g.name, g.driver)
                    .to_lowercase()
                    .contains(&f)
        })
        .collect()
}

/// The state in a list row: a host driver by its name alone, the rest as [`DeviceState::words`].
pub fn short_words(s: &DeviceState) -> String {
    match s {
        DeviceState::HostDriver { driver: Some(d) } => d.clone(),
        other => other.words(),
    }
}

/// Where a device stands: a VM's hold, a failed release or a needed reboot from the last
/// background read, else its driver in the inventory on screen (fresher after a refresh).
pub fn device_state(
    states: &BTreeMap<PciAddress, DeviceState>,
    inv: &Inventory,
    a: &PciAddress,
) -> DeviceState {
    match states.get(a) {
        Some(
            s @ (DeviceState::InUse { .. }
            | DeviceState::ReleaseFailed { .. }
            | DeviceState::NeedsReboot { .. }),
        ) => s.clone(),
        _ => match inv.device(a).and_then(|d| d.driver.clone()) {
            Some(d) if d == crate::vfio::VFIO_PCI => DeviceState::VfioPci,
            driver => DeviceState::HostDriver { driver },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfio::Phase;

    fn ev(index: usize, phase: Phase, status: StepStatus, d: &str) -> StepEvent {
        StepEvent {
            index,
            total: 2,
            description: d.into(),
            phase,
            status,
        }
    }

    #[test]
    fn progress_records_steps_and_the_rollback_in_order() {
        let mut p = Progress {
            steps: vec![
                StepRow {
                    description: "a".into(),
                    status: None,
                },
                StepRow {
                    description: "b".into(),
                    status: None,
                },
            ],
            ..Progress::default()
        };
        p.record(&ev(0, Phase::Do, StepStatus::Running, "a"));
        p.record(&ev(0, Phase::Do, StepStatus::Done, "a"));
        p.record(&ev(1, Phase::Do, StepStatus::Failed("EIO".into()), "b"));
        p.record(&ev(0, Phase::Undo, StepStatus::Running, "undo a"));
        p.record(&ev(0, Phase::Undo, StepStatus::Done, "undo a"));
        assert_eq!(p.done(), 1);
        assert_eq!(p.steps[1].status, Some(StepStatus::Failed("EIO".into())));
        assert_eq!(p.rollback.len(), 1);
        assert_eq!(p.rollback[0].status, Some(StepStatus::Done));
        // An event past the plan is kept, not dropped or a panic.
        p.record(&ev(7, Phase::Do, StepStatus::Done, "z"));
        assert_eq!(p.steps.len(), 3);
    }
}
