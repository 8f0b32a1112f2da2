//! The Host view: reads of the status page (on arrival, on `r`, on the console's tick while
//! shown) and scrolling its journal.

use super::super::action::Action;
use super::super::host::REFRESH_EVERY;
use super::super::state::{State, View};
use super::super::view;
use super::Effect;
use crate::ops::host_status::HostStatus;

/// One read at a time.
pub fn refresh(state: &mut State) -> Vec<Effect> {
    if state.host.loading {
        return Vec::new();
    }
    state.host.loading = true;
    vec![Effect::LoadHostStatus]
}

/// The console's one-second tick (after the VM screens had theirs): every other one reads
/// the host again while the view is shown.
pub fn tick(state: &mut State, mut effects: Vec<Effect>) -> Vec<Effect> {
    if state.view != View::Host {
        return effects;
    }
    let t = state.host.ticks;
    state.host.ticks = t.wrapping_add(1);
    if t.is_multiple_of(REFRESH_EVERY) {
        effects.extend(refresh(state));
    }
    effects
}

pub fn loaded(state: &mut State, result: Result<HostStatus, String>) -> Vec<Effect> {
    state.host.loading = false;
    let changed = match result {
        Ok(status) => {
            let changed = state.host.status.as_ref() != Some(&status) || state.host.error.is_some();
            state.host.status = Some(status);
            state.host.error = None;
            changed
        }
        Err(e) => {
            let changed = state.host.error.as_ref() != Some(&e);
            state.host.error = Some(e);
            changed
        }
    };
    // Nothing new on screen, or not on screen at all: no frame (serial lines pay for each).
    if changed && state.view == View::Host {
        Vec::new()
    } else {
        vec![Effect::NoRedraw]
    }
}

/// Up goes back in the journal, down towards its newest line.
pub fn move_cursor(state: &mut State, action: &Action) {
    let max = max_scroll(state);
    let page = view::host::journal_rows(state).saturating_sub(1).max(1);
    let s = &mut state.host.scroll;
    *s = match action {
        Action::Up => (*s + 1).min(max),
        Action::Down => s.saturating_sub(1),
        Action::PageUp => (*s + page).min(max),
        Action::PageDown => s.saturating_sub(page),
        Action::Top => max,
        _ => 0,
    };
}

pub fn clamp(state: &mut State) {
    state.host.scroll = state.host.scroll.min(max_scroll(state));
}

fn max_scroll(state: &State) -> usize {
    let lines = state
        .host
        .status
        .as_ref()
        .map_or(0, |s| s.journal.lines.len());
    lines.saturating_sub(view::host::journal_rows(state))
}
