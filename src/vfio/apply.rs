//! Runs a plan step by step, reporting each result as it happens; on the first failure it
//! takes back every step already taken, in reverse, and says what came back and what did
//! not.

use serde::Serialize;

use crate::host::{PciAddress, SysRoot};

use super::exec::{self, StepError};
use super::plan::{Operation, Plan, PlannedDevice};
use super::state::{driver_of, override_of, Bindings};
use super::SysWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Do,
    Undo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "error", rename_all = "snake_case")]
pub enum StepStatus {
    Running,
    Done,
    Failed(String),
}

/// One step's progress, sent as it happens so a console can draw it live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepEvent {
    /// 0-based index into [`Plan::steps`].
    pub index: usize,
    pub total: usize,
    pub description: String,
    pub phase: Phase,
    pub status: StepStatus,
}

/// A plan that ran to the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub operation: Operation,
    pub group: u32,
    /// The devices as they were before (their `driver` is where they came from).
    pub devices: Vec<PlannedDevice>,
    pub steps: usize,
}

/// A failed step and the rollback that followed.
#[derive(Debug, thiserror::Error)]
#[error("Step {} failed: {description}{}", step + 1, rollback_summary(.restored, .unrestored))]
pub struct Failure {
    /// 0-based index of the failed step.
    pub step: usize,
    pub description: String,
    #[source]
    pub error: StepError,
    /// Undo steps that succeeded, in the order they ran.
    pub restored: Vec<String>,
    /// What could not be put back: undo steps that failed, and any difference left
    /// between the host before and after. Empty means the host is exactly as it was.
    pub unrestored: Vec<String>,
}

fn rollback_summary(restored: &[String], unrestored: &[String]) -> String {
    if unrestored.is_empty() {
        format!(
            "; rolled back ({} undo steps), the host is as it was",
            restored.len()
        )
    } else {
        format!(
            "; ROLLBACK INCOMPLETE, NOT RESTORED: {}",
            unrestored.join("; ")
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("Not confirmed: type {phrase:?} to go ahead")]
    NotConfirmed { phrase: String },
    #[error("The plan is out of date: {device} is now on {found}, not {planned}; plan again")]
    Stale {
        device: PciAddress,
        planned: String,
        found: String,
    },
    #[error("{0}")]
    Failed(#[source] Box<Failure>),
}

impl ApplyError {
    /// The rollback report, when a step failed.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            ApplyError::Failed(f) => Some(f),
            _ => None,
        }
    }
}

/// Runs `plan`, calling `on_step` before and after each step (and each undo).
pub fn apply(
    plan: &Plan,
    writer: &dyn SysWriter,
    root: &SysRoot,
    on_step: &mut dyn FnMut(&StepEvent),
) -> Result<Applied, ApplyError> {
    if !plan.is_confirmed() {
        return Err(ApplyError::NotConfirmed {
            phrase: plan
                .needs_confirmation
                .as_ref()
                .map(|c| c.phrase.clone())
                .unwrap_or_default(),
        });
    }
    check_fresh(plan, root)?;
    let before = Bindings::read(root);
    let total = plan.steps.len();
    let event = |index, description: &str, phase, status| StepEvent {
        index,
        total,
        description: description.to_string(),
        phase,
        status,
    };
    for (i, step) in plan.steps.iter().enumerate() {
        on_step(&event(i, &step.description, Phase::Do, StepStatus::Running));
        match exec::run(&step.action, writer, root) {
            Ok(()) => on_step(&event(i, &step.description, Phase::Do, StepStatus::Done)),
            Err(error) => {
                let failed = StepStatus::Failed(error_chain(&error));
                on_step(&event(i, &step.description, Phase::Do, failed));
                let (restored, mut unrestored) = rollback(plan, i, writer, root, on_step);
                root.forget();
                unrestored.extend(Bindings::read(root).differences_from(&before));
                return Err(ApplyError::Failed(Box::new(Failure {
                    step: i,
                    description: step.description.clone(),
                    error,
                    restored,
                    unrestored,
                })));
            }
        }
    }
    Ok(Applied {
        operation: plan.operation,
        group: plan.group,
        devices: plan.devices.clone(),
        steps: total,
    })
}

/// Undoes steps `failed..=0` in reverse. The failed step is undone too: it may have half
/// happened, and undos only write what differs.
fn rollback(
    plan: &Plan,
    failed: usize,
    writer: &dyn SysWriter,
    root: &SysRoot,
    on_step: &mut dyn FnMut(&StepEvent),
) -> (Vec<String>, Vec<String>) {
    let (mut restored, mut unrestored) = (Vec::new(), Vec::new());
    let total = plan.steps.len();
    for i in (0..=failed).rev() {
        let step = &plan.steps[i];
        let Some(what) = &step.undo_description else {
            continue;
        };
        let event = |status| StepEvent {
            index: i,
            total,
            description: what.clone(),
            phase: Phase::Undo,
            status,
        };
        on_step(&event(StepStatus::Running));
        match exec::undo(&step.undo, writer, root) {
            Ok(()) => {
                on_step(&event(StepStatus::Done));
                restored.push(what.clone());
            }
            Err(e) => {
                let msg = error_chain(&e);
                on_step(&event(StepStatus::Failed(msg.clone())));
                unrestored.push(format!("{what}: {msg}"));
            }
        }
    }
    (restored, unrestored)
}

/// Refuses a plan made against a host that has changed since.
fn check_fresh(plan: &Plan, root: &SysRoot) -> Result<(), ApplyError> {
    let name = |d: &Option<String>| d.clone().unwrap_or_else(|| "no driver".into());
    for d in &plan.devices {
        let (found, over) = (driver_of(root, &d.address), override_of(root, &d.address));
        if found != d.driver || over != d.driver_override {
            return Err(ApplyError::Stale {
                device: d.address,
                planned: format!(
                    "{} (override {})",
                    name(&d.driver),
                    name(&d.driver_override)
                ),
                found: format!("{} (override {})", name(&found), name(&over)),
            });
        }
    }
    Ok(())
}

/// "outer: inner: innermost", for one-line reports: the one formatter of [`crate::error`].
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::error::Chain(e).to_string()
}
