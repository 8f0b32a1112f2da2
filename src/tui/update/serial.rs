//! The serial pane's state changes: opening it on the selected VM, keys for the guest,
//! scrollback, and what the line's task reports.

use super::super::action::Action;
use super::super::serial::{PaneMode, PaneStatus, SerialPane};
use super::super::state::State;
use super::Effect;

/// `VmConsole`/`VmLog` on the VM screens: the pane over the open detail's VM or the
/// selected row's.
pub fn open(state: &mut State, mode: PaneMode) -> Vec<Effect> {
    let vms = &state.vms;
    let name = match &vms.detail_of {
        Some(n) => Some(n.clone()),
        None => vms.selected_row(&state.filter.text).map(|r| r.name.clone()),
    };
    let Some(vm) = name else {
        return Vec::new();
    };
    state.serial = Some(SerialPane::new(
        &vm,
        mode,
        state.cols,
        state.rows,
        state.read_only,
    ));
    vec![Effect::SerialOpen { vm, mode }]
}

/// Keys while the pane is open.
pub fn input(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(pane) = state.serial.as_mut() else {
        return Vec::new();
    };
    match action {
        Action::SerialInput(bytes) if pane.types() => {
            // Typing brings the live screen back.
            pane.scroll_by(-(i32::MAX));
            vec![Effect::SerialSend(bytes)]
        }
        Action::SerialInput(_) => vec![Effect::NoRedraw],
        Action::SerialScroll(lines) => {
            pane.scroll_by(lines);
            Vec::new()
        }
        Action::SerialDetach => {
            state.serial = None;
            vec![Effect::SerialClose]
        }
        _ => vec![Effect::NoRedraw],
    }
}

/// What the line's task reports; a report for a pane closed since is dropped.
pub fn message(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(pane) = state.serial.as_mut() else {
        return vec![Effect::NoRedraw];
    };
    match action {
        Action::SerialAttached { vm, role, direct } if vm == pane.vm => {
            pane.status = PaneStatus::Attached { role, direct };
        }
        Action::SerialOutput { vm, bytes } if vm == pane.vm => pane.feed(&bytes),
        Action::SerialClosed { vm, reason } if vm == pane.vm => {
            pane.status = PaneStatus::Closed(reason);
        }
        _ => return vec![Effect::NoRedraw],
    }
    Vec::new()
}
