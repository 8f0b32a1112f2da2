//! "Shut down or restart" (F12, as on ESXi's DCUI): the running VMs named, a choice of power
//! off, reboot or cancel, then each VM's stop live, then logind. The work is
//! [`crate::ops::power`]'s, as for `phyllome host poweroff|reboot`; the loop in
//! [`super::app`] runs it and, once every VM is down, gives the terminal back before logind
//! is asked.

use crate::ops::power::{PlannedVm, PowerAction, Progress};
use crate::vmm::worker::ActionError;

use super::action::Action;
use super::state::State;
use super::update::Effect;
use super::vms::ErrorPopup;

/// The popup's buttons, left to right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    PowerOff,
    Reboot,
    Cancel,
}

impl Choice {
    pub const ALL: [Choice; 3] = [Choice::PowerOff, Choice::Reboot, Choice::Cancel];

    pub fn label(self) -> &'static str {
        match self {
            Choice::PowerOff => "Power off",
            Choice::Reboot => "Reboot",
            Choice::Cancel => "Cancel",
        }
    }
}

/// One VM's line while the host goes down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub vm: String,
    pub status: String,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PowerPopup {
    /// The running VMs (None while they are listed), and the button under the cursor.
    Choose {
        vms: Option<Vec<PlannedVm>>,
        selected: Choice,
    },
    /// Under way: a line per VM as its stop goes; `calling` once logind is next.
    Running {
        action: PowerAction,
        steps: Vec<Step>,
        calling: bool,
    },
}

/// VMs are being stopped for a power-off or reboot (nothing can be taken back, Ctrl-C
/// included).
pub fn under_way(state: &State) -> bool {
    matches!(state.power, Some(PowerPopup::Running { .. }))
}

/// F12: the popup, Cancel under the cursor (a stray Enter does nothing), the VMs being
/// listed.
pub fn open(state: &mut State) -> Vec<Effect> {
    if state.read_only {
        return Vec::new();
    }
    state.power = Some(PowerPopup::Choose {
        vms: None,
        selected: Choice::Cancel,
    });
    vec![Effect::PowerPlan]
}

/// Keys while the popup is open: move between the buttons, Enter, Esc. While the host goes
/// down nothing can be taken back: keys do nothing.
pub fn input(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(PowerPopup::Choose { vms, selected }) = state.power.as_mut() else {
        return Vec::new();
    };
    let at = Choice::ALL.iter().position(|c| c == selected).unwrap_or(2);
    match action {
        Action::Up | Action::PageUp => *selected = Choice::ALL[at.saturating_sub(1)],
        Action::Down | Action::PageDown => *selected = Choice::ALL[(at + 1).min(2)],
        Action::Top => *selected = Choice::PowerOff,
        Action::Bottom => *selected = Choice::Cancel,
        Action::Back => state.power = None,
        Action::ConfirmAccept => {
            let action = match selected {
                Choice::Cancel => {
                    state.power = None;
                    return Vec::new();
                }
                // The list is not in yet: what would be stopped is not known.
                _ if vms.is_none() => return Vec::new(),
                Choice::PowerOff => PowerAction::PowerOff,
                Choice::Reboot => PowerAction::Reboot,
            };
            state.power = Some(PowerPopup::Running {
                action,
                steps: Vec::new(),
                calling: false,
            });
            tracing::info!(method = action.method(), "host {} asked for", action.verb());
            return vec![Effect::PowerStop(action)];
        }
        _ => {}
    }
    Vec::new()
}

/// Results of the loop's power work.
pub fn message(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::PowerPlanned(Ok(list)) => {
            if let Some(PowerPopup::Choose { vms, .. }) = state.power.as_mut() {
                *vms = Some(list);
            }
        }
        Action::PowerPlanned(Err(error)) => {
            state.power = None;
            state.vms.error = Some(ErrorPopup {
                title: "Cannot list the running VMs".into(),
                error,
            });
        }
        Action::PowerProgress(p) => progress(state, p),
        Action::PowerStopped(action) => {
            if let Some(PowerPopup::Running { calling, .. }) = state.power.as_mut() {
                *calling = true;
                return vec![Effect::PowerCall(action)];
            }
        }
        Action::PowerFailed { action, error } => failed(state, action, error),
        _ => {}
    }
    Vec::new()
}

fn failed(state: &mut State, action: PowerAction, error: ActionError) {
    state.power = None;
    state.vms.error = Some(ErrorPopup {
        title: format!("Cannot {} the host", action.verb()),
        error,
    });
}

fn progress(state: &mut State, p: Progress) {
    let Some(PowerPopup::Running { steps, calling, .. }) = state.power.as_mut() else {
        return;
    };
    let (vm, status, done) = match p {
        Progress::Stopping { vm, grace } => (
            vm,
            format!(
                "stopping (power button, up to {})...",
                crate::fmt::countdown(grace.as_secs())
            ),
            false,
        ),
        Progress::Forcing { vm, why } => (vm, format!("forcing off ({why})..."), false),
        Progress::Stopped { vm, how } => (vm, how.describe().to_string(), true),
        Progress::Calling(_) => {
            *calling = true;
            return;
        }
    };
    match steps.iter_mut().find(|s| s.vm == vm) {
        Some(s) => {
            s.status = status;
            s.done = done;
        }
        None => steps.push(Step { vm, status, done }),
    }
}
