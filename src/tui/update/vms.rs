//! The VM screens' part of `update`: list refreshes, selection, detail, actions with their
//! confirmations, results and the error popup.

use std::time::{Duration, Instant};

use phyllome_widgets::ConfirmMode;

use crate::fmt;
use crate::vm::StopTimeout;
use crate::vmm::manager::{RunState, StopMode, StopOutcome};
use crate::vmm::worker::{ActionError, VmRequest};

use super::super::action::Action;
use super::super::state::{State, View};
use super::super::vms::edit::{Edit, Scalar};
use super::super::vms::{
    Confirm, ConfirmKind, Detail, ErrorPopup, Form, Grace, VmDisks, VmOp, VmRow,
};
use super::Effect;

/// The list refreshes on every this many clock ticks (one a second).
const REFRESH_EVERY: u64 = 2;

/// Whether the VM screens are on: the list, or a detail opened from it.
pub fn on_vm_screen(state: &State) -> bool {
    state.view == View::Vms
}

/// Asks for a refresh unless one is running (the worker coalesces too, but the tick should
/// not pile requests up behind a slow one).
pub fn refresh(state: &mut State) -> Vec<Effect> {
    let mut out = Vec::new();
    if state.vms.refreshing {
        state.vms.refresh_queued = true;
    } else {
        state.vms.refreshing = true;
        out.push(Effect::RefreshVms);
    }
    if let Some(name) = &state.vms.detail_of {
        out.push(Effect::LoadVmDetail(name.clone()));
    }
    out
}

pub fn tick(state: &mut State, now: Instant) -> Vec<Effect> {
    let tick = state.vms.ticks;
    state.vms.ticks = tick.wrapping_add(1);
    let mut out = if on_vm_screen(state) && tick.is_multiple_of(REFRESH_EVERY) {
        refresh(state)
    } else {
        Vec::new()
    };
    // Drawn only when a countdown on screen reads differently (serial lines pay per frame).
    let mut changed = false;
    for g in state.vms.grace.values_mut() {
        let left = g.left_at(now);
        changed |= fmt::countdown(left) != fmt::countdown(g.left);
        g.left = left;
    }
    if !(changed && on_vm_screen(state)) {
        out.push(Effect::NoRedraw);
    }
    out
}

/// The worker has the stop: the countdown starts.
pub fn grace_started(state: &mut State, name: &str, at: Instant) -> Vec<Effect> {
    if let Some(g) = state.vms.grace.get_mut(name) {
        g.started = Some(at);
    }
    vec![Effect::NoRedraw]
}

pub fn loaded(state: &mut State, result: Result<Vec<VmRow>, ActionError>) -> Vec<Effect> {
    state.vms.refreshing = false;
    let mut out = Vec::new();
    if std::mem::take(&mut state.vms.refresh_queued) {
        state.vms.refreshing = true;
        out.push(Effect::RefreshVms);
    }
    let before = (
        state.vms.loaded,
        state.vms.rows.clone(),
        state.vms.list_error.clone(),
    );
    let selected = state
        .vms
        .selected_row(&state.filter.text)
        .map(|r| r.name.clone());
    match result {
        Ok(rows) => {
            state.vms.rows = rows;
            state.vms.list_error = None;
        }
        Err(e) => state.vms.list_error = Some(e.message),
    }
    state.vms.loaded = true;
    // Keep the cursor on the same VM when rows come and go around it.
    if let Some(name) = selected {
        if let Some(i) = state
            .vms
            .visible(&state.filter.text)
            .iter()
            .position(|r| r.name == name)
        {
            state.vms.selected = i;
        }
    }
    if before == (true, state.vms.rows.clone(), state.vms.list_error.clone()) {
        out.push(Effect::NoRedraw);
    }
    out
}

pub fn detail_loaded(state: &mut State, detail: Detail) -> Vec<Effect> {
    if state.vms.detail_of.as_deref() != Some(detail.name.as_str()) {
        return vec![Effect::NoRedraw];
    }
    if state.vms.detail.as_ref() == Some(&detail) {
        return vec![Effect::NoRedraw];
    }
    let last = detail.snapshots.len().saturating_sub(1);
    state.vms.snapshot_sel = state.vms.snapshot_sel.min(last);
    state.vms.detail = Some(detail);
    Vec::new()
}

/// The detail's disks; a stale answer (another VM's, or the same again) draws nothing.
pub fn disks_inspected(state: &mut State, disks: VmDisks) -> Vec<Effect> {
    if state.vms.detail_of.as_deref() != Some(disks.name.as_str())
        || state.vms.disks.as_ref() == Some(&disks)
    {
        return vec![Effect::NoRedraw];
    }
    state.vms.disks = Some(disks);
    Vec::new()
}

pub fn done(
    state: &mut State,
    op: &str,
    name: String,
    result: Result<Option<StopOutcome>, ActionError>,
) -> Vec<Effect> {
    let vms = &mut state.vms;
    let pending = vms.pending.remove(&name);
    let grace = vms.grace.remove(&name);
    let verb = pending.map_or(op.to_string(), |p| p.verb().to_string());
    match result {
        Ok(outcome) => {
            let text = match (outcome, grace) {
                (Some(StopOutcome::PoweredOff), _) => {
                    format!("{verb}: done (the guest powered off)")
                }
                (Some(StopOutcome::TimedOut), g) => {
                    let period = g.map_or(String::new(), |g| {
                        format!(" in {}", StopTimeout(g.period.as_secs()))
                    });
                    format!("{verb}: the guest did not power off{period}; forced off (vm.shutdown)")
                }
                (Some(StopOutcome::CutShort), _) => {
                    format!("{verb}: done, during the grace period (vm.shutdown)")
                }
                _ => format!("{verb}: done"),
            };
            vms.message = Some(format!("{name}: {text}"));
            vms.results.insert(name.clone(), text);
            if pending == Some(VmOp::Delete) && vms.detail_of.as_deref() == Some(name.as_str()) {
                vms.detail_of = None;
                vms.detail = None;
            }
        }
        Err(e) => {
            vms.results
                .insert(name.clone(), format!("{verb} failed: {}", e.message));
            vms.message = Some(format!("{name}: {verb} failed"));
            vms.error = Some(ErrorPopup {
                title: format!("Cannot {verb} {name}"),
                error: e,
            });
        }
    }
    // The worker refreshes the list after every action; the detail is ours to refresh.
    match &state.vms.detail_of {
        Some(n) => vec![Effect::LoadVmDetail(n.clone())],
        None => Vec::new(),
    }
}

/// The VM an action applies to: the open detail's, else the selected row's.
fn target(state: &State) -> Option<VmRow> {
    let vms = &state.vms;
    match &vms.detail_of {
        Some(name) => vms.rows.iter().find(|r| &r.name == name).cloned(),
        None => vms.selected_row(&state.filter.text).cloned(),
    }
}

/// Navigation and actions on the VM screens.
pub fn navigate(state: &mut State, action: Action) -> Vec<Effect> {
    if action.changes_host() && state.read_only {
        state.vms.message = Some(format!(
            "read-only console: {} is not allowed",
            action.name().replace('_', " ").trim_start_matches("vm ")
        ));
        return Vec::new();
    }
    match action {
        Action::Open => open(state),
        Action::VmNew => {
            let taken = state.vms.rows.iter().map(|r| r.name.clone()).collect();
            state.vms.form = Some(Form::new_vm(taken));
            Vec::new()
        }
        Action::VmEdit => match target(state) {
            Some(row) if row.defined => vec![Effect::LoadVmForEdit(row.name)],
            Some(row) => {
                state.vms.message = Some(format!("{}: no definition to edit", row.name));
                Vec::new()
            }
            None => Vec::new(),
        },
        Action::VmAutostart => autostart(state),
        Action::VmConsole => super::serial::open(state, super::super::serial::PaneMode::Console),
        Action::VmLog => super::serial::open(state, super::super::serial::PaneMode::Log),
        Action::VmStart => request(state, VmOp::Start),
        Action::VmStop => request(state, VmOp::Stop),
        Action::VmForceOff => request(state, VmOp::ForceOff),
        Action::VmReboot => request(state, VmOp::Reboot),
        Action::VmDelete => request(state, VmOp::Delete),
        Action::VmNmi => request(state, VmOp::Nmi),
        Action::VmUnlock => request(state, VmOp::Unlock),
        Action::VmRescue => request(state, VmOp::Rescue),
        Action::VmSnapshot => request(state, VmOp::Snapshot),
        Action::VmSnapshotRestore => rescue::snapshot_request(state, VmOp::SnapshotRestore),
        Action::VmSnapshotDelete => rescue::snapshot_request(state, VmOp::SnapshotDelete),
        Action::VmSnapshotNext => rescue::select(state, 1),
        Action::VmSnapshotPrev => rescue::select(state, -1),
        Action::VmPauseResume => match target(state) {
            Some(r) if r.state == RunState::Paused => request(state, VmOp::Resume),
            _ => request(state, VmOp::Pause),
        },
        _ => Vec::new(),
    }
}

/// Flips the selected VM's `autostart`, an edit of its definition like the form's.
fn autostart(state: &mut State) -> Vec<Effect> {
    let Some(row) = target(state) else {
        return Vec::new();
    };
    if !row.defined {
        state.vms.message = Some(format!("{}: no definition to change", row.name));
        return Vec::new();
    }
    let (name, on) = (row.name.clone(), !row.autostart);
    state.vms.message = Some(format!(
        "{name}: autostart {}…",
        if on { "on" } else { "off" }
    ));
    vec![Effect::SaveVm(super::SaveRequest {
        name,
        create: false,
        edits: vec![Edit::set("autostart", Scalar::Bool(on))],
        force: false,
    })]
}

fn open(state: &mut State) -> Vec<Effect> {
    if state.vms.detail_of.is_some() {
        return Vec::new();
    }
    let Some(row) = state.vms.selected_row(&state.filter.text) else {
        return Vec::new();
    };
    let name = row.name.clone();
    state.vms.detail_of = Some(name.clone());
    state.vms.detail = None;
    state.vms.disks = None;
    state.vms.detail_scroll = 0;
    state.vms.snapshot_sel = 0;
    vec![Effect::LoadVmDetail(name)]
}

/// A VM action: refused when pointless, confirmed when dangerous, else sent.
fn request(state: &mut State, op: VmOp) -> Vec<Effect> {
    let Some(row) = target(state) else {
        return Vec::new();
    };
    let name = row.name.clone();
    if let Some(&p) = state.vms.pending.get(&name) {
        // A guest taking its time to power off can be forced at once: that is what X is for.
        let forcing_a_stop = p == VmOp::Stop && op == VmOp::ForceOff;
        if !forcing_a_stop {
            state.vms.message = Some(format!("{name}: {} wait for it to finish", p.progress()));
            return Vec::new();
        }
    }
    let refusal = match op {
        VmOp::Start if row.error.is_some() && row.state == RunState::Stopped => {
            Some("its definition is invalid; edit it first (e)")
        }
        VmOp::Rescue if row.error.is_some() && row.state == RunState::Stopped => {
            Some("its definition is invalid; edit it first (e)")
        }
        VmOp::Start | VmOp::Rescue if matches!(row.state, RunState::Running | RunState::Paused) => {
            Some("already running")
        }
        VmOp::Unlock if matches!(row.state, RunState::Running | RunState::Paused) => {
            Some("it is running; stop it first (X forces a hung one off)")
        }
        VmOp::Stop | VmOp::ForceOff | VmOp::Reboot | VmOp::Pause | VmOp::Resume | VmOp::Nmi
            if row.state == RunState::Stopped =>
        {
            Some("not running")
        }
        VmOp::Delete if row.state.has_vmm() => Some("still running; stop it first"),
        _ => None,
    };
    if let Some(why) = refusal {
        state.vms.message = Some(format!("{name}: cannot {}: {why}", op.verb()));
        return Vec::new();
    }
    if op.dangerous() {
        state.vms.confirm = Some(confirm_for(op, &name));
        return Vec::new();
    }
    send(state, op, name)
}

fn confirm_for(op: VmOp, name: &str) -> Confirm {
    if let Some(c) = rescue::confirm_for(op, name) {
        return c;
    }
    let (title, message) = match op {
        VmOp::ForceOff => (
            format!("Force off {name}?"),
            "The VM stops at once, like pulling the plug: whatever the guest has not written \
             to disk is lost."
                .to_string(),
        ),
        VmOp::Reboot => (
            format!("Reset {name}?"),
            "The VM resets at once; the guest is not asked to shut down first.".to_string(),
        ),
        _ => (
            format!("Delete {name}?"),
            "Its definition is removed (earlier versions stay in `phyllome vm history`); \
             disk images are kept."
                .to_string(),
        ),
    };
    let mode = if op.typed() {
        ConfirmMode::Typed {
            expected: name.to_string(),
            typed: String::new(),
        }
    } else {
        ConfirmMode::YesNo { yes: false }
    };
    Confirm {
        kind: ConfirmKind::Vm {
            op,
            name: name.to_string(),
        },
        title,
        message: vec![message],
        mode,
    }
}

fn send(state: &mut State, op: VmOp, name: String) -> Vec<Effect> {
    state.vms.pending.insert(name.clone(), op);
    state.vms.message = Some(format!("{name}: {}", op.progress()));
    let req = match op {
        VmOp::Start => VmRequest::Start(name),
        VmOp::Stop => {
            let secs = state
                .vms
                .rows
                .iter()
                .find(|r| r.name == name)
                .and_then(|r| r.stop_timeout_secs)
                .unwrap_or(StopTimeout::DEFAULT.secs());
            let timeout = Duration::from_secs(secs);
            state.vms.grace.insert(name.clone(), Grace::new(timeout));
            state.vms.message = Some(format!(
                "{name}: power button pressed; forced off after {} of grace, or now with X",
                StopTimeout(secs)
            ));
            VmRequest::Stop {
                name,
                mode: StopMode::Graceful { timeout },
            }
        }
        VmOp::ForceOff => {
            // A countdown under way ends here; the worker cuts that stop's grace period short.
            state.vms.grace.remove(&name);
            VmRequest::Stop {
                name,
                mode: StopMode::Force,
            }
        }
        VmOp::Reboot => VmRequest::Reboot(name),
        VmOp::Pause => VmRequest::Pause(name),
        VmOp::Resume => VmRequest::Resume(name),
        VmOp::Delete => VmRequest::Delete(name),
        VmOp::Nmi => VmRequest::Nmi(name),
        VmOp::Unlock => VmRequest::Unlock(name),
        VmOp::Rescue => VmRequest::Rescue(name),
        // Restore and delete go through `rescue::send_snapshot`, which knows the snapshot.
        VmOp::Snapshot | VmOp::SnapshotRestore | VmOp::SnapshotDelete => {
            VmRequest::SnapshotCreate(name)
        }
    };
    vec![Effect::Vm(req)]
}

/// Keys while a confirmation is open.
pub fn confirm(state: &mut State, action: Action) -> Vec<Effect> {
    let Some(c) = state.vms.confirm.as_mut() else {
        return Vec::new();
    };
    let mut accept = false;
    match (&mut c.mode, action) {
        (_, Action::Back) => {
            state.vms.confirm = None;
            return Vec::new();
        }
        (ConfirmMode::Typed { typed, .. }, Action::ConfirmInput(ch)) => typed.push(ch),
        (ConfirmMode::Typed { typed, .. }, Action::ConfirmBackspace) => {
            typed.pop();
        }
        (ConfirmMode::Typed { typed, expected }, Action::ConfirmAccept) => {
            accept = typed == expected;
        }
        (ConfirmMode::YesNo { yes }, Action::ConfirmToggle) => *yes = !*yes,
        (ConfirmMode::YesNo { .. }, Action::ConfirmInput('y' | 'Y')) => accept = true,
        (ConfirmMode::YesNo { .. }, Action::ConfirmInput('n' | 'N')) => {
            state.vms.confirm = None;
            return Vec::new();
        }
        (ConfirmMode::YesNo { yes }, Action::ConfirmAccept) => {
            if !*yes {
                state.vms.confirm = None;
                return Vec::new();
            }
            accept = true;
        }
        _ => {}
    }
    if !accept {
        return Vec::new();
    }
    let Some(c) = state.vms.confirm.take() else {
        return Vec::new();
    };
    match c.kind {
        ConfirmKind::Vm { op, name } => {
            // Checked again: a read-only state cannot be talked into it by a stray dialog.
            if state.read_only {
                return Vec::new();
            }
            send(state, op, name)
        }
        ConfirmKind::Snapshot { op, name, id } => {
            if state.read_only {
                return Vec::new();
            }
            rescue::send_snapshot(state, op, name, id)
        }
        ConfirmKind::DiscardForm => {
            state.vms.form = None;
            Vec::new()
        }
        ConfirmKind::ForceSave { name } => super::form::force_save(state, name),
    }
}

/// Keys while the error popup is open: any of back/enter closes it.
pub fn error_popup(state: &mut State, action: Action) -> Vec<Effect> {
    if matches!(
        action,
        Action::Back | Action::Open | Action::ConfirmAccept | Action::FormSave
    ) {
        state.vms.error = None;
    }
    Vec::new()
}

pub fn move_cursor(state: &mut State, action: &Action, page: usize) {
    if state.vms.detail_of.is_some() {
        let s = &mut state.vms.detail_scroll;
        *s = match action {
            Action::Up => s.saturating_sub(1),
            Action::Down => *s + 1,
            Action::PageUp => s.saturating_sub(page),
            Action::PageDown => *s + page,
            Action::Top => 0,
            _ => usize::MAX / 2,
        };
        return;
    }
    let last = state
        .vms
        .visible(&state.filter.text)
        .len()
        .saturating_sub(1);
    let s = &mut state.vms.selected;
    *s = match action {
        Action::Up => s.saturating_sub(1),
        Action::Down => (*s + 1).min(last),
        Action::PageUp => s.saturating_sub(page),
        Action::PageDown => (*s + page).min(last),
        Action::Top => 0,
        _ => last,
    };
}

mod rescue;

#[cfg(test)]
mod tests;
