//! The GPU screen's operations in `update`: pick a GPU, pick a VM, review the plan, confirm
//! (typed when it takes the host console), watch each step; the boot-configuration
//! preview with install/uninstall. Pure: the work is returned as `Effect::Gpu`.

use phyllome_widgets::ConfirmMode;

use super::super::action::Action;
use super::super::gpus::{
    BootChange, BootFlow, Flow, GpuJob, GpuMsg, GpuOp, Outcome, Progress, Stage,
};
use super::super::state::State;
use super::{vms, Effect};

const READ_ONLY: &str = "read-only console: nothing on the host is changed";

/// The GPU actions of the keymap, on the GPU screen.
pub fn navigate(state: &mut State, action: Action) -> Vec<Effect> {
    let op = match action {
        Action::GpuAssign => GpuOp::Assign,
        Action::GpuDetach => GpuOp::Detach,
        Action::GpuReattach => GpuOp::Reattach,
        Action::GpuUnassign => GpuOp::Unassign,
        Action::GpuPlan => GpuOp::Preview,
        Action::GpuBootConfig => return open_boot(state),
        _ => return Vec::new(),
    };
    if state.read_only && op.changes_host() {
        state.gpu.message = Some(format!("{}: {READ_ONLY}", op.title()));
        return Vec::new();
    }
    let Some((gpu, gpu_name)) = selected(state) else {
        state.gpu.message = Some("No GPU selected".into());
        return Vec::new();
    };
    state.gpu.message = None;
    let stage = if op == GpuOp::Assign {
        Stage::PickVm { selected: 0 }
    } else {
        Stage::Planning
    };
    state.gpu.flow = Some(Flow {
        op,
        gpu,
        gpu_name,
        vm: None,
        stage,
        scroll: 0,
    });
    if op == GpuOp::Assign {
        // The picker lists the VMs as the worker last saw them; fetch them fresh.
        return vms::refresh(state);
    }
    vec![Effect::Gpu(GpuJob::Review { op, gpu, vm: None })]
}

fn selected(state: &State) -> Option<(crate::host::PciAddress, String)> {
    let inv = state.inventory.as_ref()?;
    let gpus = super::super::gpus::visible(inv, &state.filter.text);
    let g = gpus.get(state.gpu_selected)?;
    Some((g.address, g.name.clone()))
}

fn open_boot(state: &mut State) -> Vec<Effect> {
    let Some((gpu, _)) = selected(state) else {
        state.gpu.message = Some("No GPU selected".into());
        return Vec::new();
    };
    state.gpu.boot = Some(BootFlow {
        gpu,
        view: None,
        scroll: 0,
        confirm: None,
        busy: false,
        result: None,
    });
    vec![Effect::Gpu(GpuJob::Boot(gpu))]
}

/// Keys while an operation or the boot preview is open.
pub fn overlay(state: &mut State, action: Action) -> Vec<Effect> {
    if state.gpu.boot.is_some() {
        return boot_input(state, action);
    }
    let in_confirm = matches!(
        state.gpu.flow.as_ref().map(|f| &f.stage),
        Some(Stage::Confirm { .. })
    );
    if in_confirm {
        return confirm(state, action);
    }
    let names: Vec<String> = state
        .vms
        .pickable()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let Some(flow) = state.gpu.flow.as_mut() else {
        return Vec::new();
    };
    let mut done = false;
    match (&mut flow.stage, action) {
        (Stage::Running { .. }, Action::Back) => {
            state.gpu.message = Some("The steps are running: wait for the last one".into());
        }
        (Stage::Running { .. } | Stage::Confirm { .. }, _) => {}
        (_, Action::Back) => done = true,
        (Stage::PickVm { selected }, a) => match a {
            Action::Up => *selected = selected.saturating_sub(1),
            Action::Down => *selected = (*selected + 1).min(names.len().saturating_sub(1)),
            Action::Open => {
                let Some(vm) = names.get(*selected).cloned() else {
                    return Vec::new();
                };
                flow.vm = Some(vm.clone());
                flow.stage = Stage::Planning;
                return vec![Effect::Gpu(GpuJob::Review {
                    op: flow.op,
                    gpu: flow.gpu,
                    vm: Some(vm),
                })];
            }
            _ => {}
        },
        (Stage::Review(_), Action::Open) if flow.op == GpuOp::Preview => done = true,
        (Stage::Review(review), Action::Open) => {
            let mode = match review
                .plan
                .as_ref()
                .and_then(|p| p.needs_confirmation.as_ref())
            {
                Some(c) => ConfirmMode::Typed {
                    expected: c.phrase.clone(),
                    typed: String::new(),
                },
                None => ConfirmMode::YesNo { yes: false },
            };
            flow.stage = Stage::Confirm {
                review: review.clone(),
                mode,
                error: None,
            };
        }
        (Stage::Finished { .. } | Stage::Refused(_), Action::Open) => done = true,
        (_, a) => scroll(&mut flow.scroll, &a),
    }
    if done {
        close(state);
    }
    Vec::new()
}

fn close(state: &mut State) {
    state.gpu.flow = None;
}

fn scroll(at: &mut usize, action: &Action) {
    // The view clamps to what there is to see; the page is a few lines short of a screen.
    match action {
        Action::Up => *at = at.saturating_sub(1),
        Action::Down => *at += 1,
        Action::PageUp => *at = at.saturating_sub(10),
        Action::PageDown => *at += 10,
        Action::Top => *at = 0,
        Action::Bottom => *at = usize::MAX / 2,
        _ => {}
    }
}

/// A yes/no or typed answer: the keys the confirm dialog takes.
enum Answer {
    Pending,
    Cancel,
    Accept(Option<String>),
}

fn answer(mode: &mut ConfirmMode, action: Action) -> Answer {
    match (mode, action) {
        (_, Action::Back) => Answer::Cancel,
        (ConfirmMode::Typed { typed, .. }, Action::ConfirmInput(c)) => {
            typed.push(c);
            Answer::Pending
        }
        (ConfirmMode::Typed { typed, .. }, Action::ConfirmBackspace) => {
            typed.pop();
            Answer::Pending
        }
        (ConfirmMode::Typed { typed, .. }, Action::ConfirmAccept) => {
            Answer::Accept(Some(typed.clone()))
        }
        (ConfirmMode::YesNo { yes }, Action::ConfirmToggle) => {
            *yes = !*yes;
            Answer::Pending
        }
        (ConfirmMode::YesNo { .. }, Action::ConfirmInput('y' | 'Y')) => Answer::Accept(None),
        (ConfirmMode::YesNo { .. }, Action::ConfirmInput('n' | 'N')) => Answer::Cancel,
        (ConfirmMode::YesNo { yes }, Action::ConfirmAccept) => {
            if *yes {
                Answer::Accept(None)
            } else {
                Answer::Cancel
            }
        }
        _ => Answer::Pending,
    }
}

fn confirm(state: &mut State, action: Action) -> Vec<Effect> {
    let read_only = state.read_only;
    let Some(flow) = state.gpu.flow.as_mut() else {
        return Vec::new();
    };
    let Stage::Confirm {
        review,
        mode,
        error,
    } = &mut flow.stage
    else {
        return Vec::new();
    };
    match answer(mode, action) {
        Answer::Pending => Vec::new(),
        Answer::Cancel => {
            flow.stage = Stage::Review(review.clone());
            Vec::new()
        }
        Answer::Accept(typed) => {
            if read_only {
                // Unreachable through the keymap; refused here too so no path gets round it.
                *error = Some(READ_ONLY.into());
                return Vec::new();
            }
            let mut review = review.clone();
            if let Some(plan) = review.plan.as_mut() {
                if let Err(e) = plan.confirm(typed.as_deref().unwrap_or_default()) {
                    *error = Some(e.to_string());
                    return Vec::new();
                }
            }
            let progress = Progress::for_plan(review.plan.as_ref().filter(|_| review.runs_now));
            let job = GpuJob::Run {
                op: flow.op,
                gpu: flow.gpu,
                review: review.clone(),
            };
            flow.stage = Stage::Running { review, progress };
            flow.scroll = 0;
            vec![Effect::Gpu(job)]
        }
    }
}

fn boot_input(state: &mut State, action: Action) -> Vec<Effect> {
    let read_only = state.read_only;
    let Some(boot) = state.gpu.boot.as_mut() else {
        return Vec::new();
    };
    if let Some((change, mode)) = boot.confirm.as_mut() {
        let change = *change;
        return match answer(mode, action) {
            Answer::Pending => Vec::new(),
            Answer::Cancel => {
                boot.confirm = None;
                Vec::new()
            }
            Answer::Accept(_) => {
                boot.confirm = None;
                boot.busy = true;
                vec![Effect::Gpu(GpuJob::BootChange {
                    gpu: boot.gpu,
                    change,
                })]
            }
        };
    }
    let change = match action {
        Action::Back => {
            if !boot.busy {
                state.gpu.boot = None;
            }
            return Vec::new();
        }
        Action::GpuBootInstall => BootChange::Install,
        Action::GpuBootUninstall => BootChange::Uninstall,
        a => {
            scroll(&mut boot.scroll, &a);
            return Vec::new();
        }
    };
    if read_only {
        boot.result = Some(Err(READ_ONLY.into()));
    } else if matches!(boot.view, Some(Ok(_))) && !boot.busy {
        boot.confirm = Some((change, ConfirmMode::YesNo { yes: false }));
    }
    Vec::new()
}

/// Results of the background jobs.
pub fn message(state: &mut State, msg: GpuMsg) -> Vec<Effect> {
    match msg {
        GpuMsg::States(states) => {
            if states == state.gpu.states {
                return vec![Effect::NoRedraw];
            }
            state.gpu.states = states;
        }
        GpuMsg::Reviewed { gpu, op, result } => {
            let Some(flow) = state.gpu.flow.as_mut() else {
                return vec![Effect::NoRedraw];
            };
            // A review for an operation closed meanwhile is dropped.
            if flow.gpu != gpu || flow.op != op || flow.stage != Stage::Planning {
                return vec![Effect::NoRedraw];
            }
            flow.stage = match result {
                Ok(review) => Stage::Review(Box::new(review)),
                Err(e) => Stage::Refused(e),
            };
        }
        GpuMsg::Step(e) => {
            if let Some(Stage::Running { progress, .. }) = running(state) {
                progress.record(&e);
            }
        }
        GpuMsg::Log(line) => {
            if let Some(Stage::Running { progress, .. }) = running(state) {
                progress.log.push(line);
            }
        }
        GpuMsg::Finished(outcome) => return finished(state, outcome),
        GpuMsg::Boot(view) => {
            if let Some(b) = state.gpu.boot.as_mut() {
                b.view = Some(view);
            }
        }
        GpuMsg::BootChanged(result) => {
            if let Some(b) = state.gpu.boot.as_mut() {
                b.busy = false;
                b.result = Some(result);
            }
        }
    }
    Vec::new()
}

fn running(state: &mut State) -> Option<&mut Stage> {
    state.gpu.flow.as_mut().map(|f| &mut f.stage)
}

fn finished(state: &mut State, outcome: Outcome) -> Vec<Effect> {
    let Some(flow) = state.gpu.flow.as_mut() else {
        return Vec::new();
    };
    let Stage::Running { review, progress } = &flow.stage else {
        return Vec::new();
    };
    state.gpu.message = Some(match &outcome {
        Outcome::Done(_) => format!("{} {}: done", flow.op.title(), flow.gpu),
        Outcome::Failed(f) if f.unrestored.is_empty() => format!(
            "{} {}: step {} failed, rolled back",
            flow.op.title(),
            flow.gpu,
            f.step + 1
        ),
        Outcome::Failed(_) => format!(
            "{} {}: FAILED, ROLLBACK INCOMPLETE",
            flow.op.title(),
            flow.gpu
        ),
        Outcome::Error(_) => format!("{} {}: failed", flow.op.title(), flow.gpu),
    });
    flow.stage = Stage::Finished {
        review: review.clone(),
        progress: progress.clone(),
        outcome,
    };
    // Drivers and holds changed: read the host again.
    let mut out = super::refresh(state);
    out.push(Effect::Gpu(GpuJob::LoadStates));
    out
}
