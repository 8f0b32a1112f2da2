//! Terminal events to actions: the keymap, except while the overlay on top (see
//! [`modal`]) takes text (the filter, a confirmation, the VM form) or waits to be closed.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use phyllome_widgets::ConfirmMode;

use super::action::Action;
use super::keymap::Keymap;
use super::modal::{modal, Modal};
use super::state::State;

pub fn translate(state: &State, keymap: &Keymap, event: &Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            // The serial pane takes every key, Ctrl+C included: it is the guest's.
            if modal(state) == Some(Modal::Serial) {
                return serial_key(state, key);
            }
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            if ctrl && key.code == KeyCode::Char('c') {
                return Some(Action::Quit);
            }
            match modal(state) {
                Some(Modal::Error) => popup_key(key),
                Some(Modal::Power) => power_key(key),
                // Handled above; kept for the match to be whole.
                Some(Modal::Serial) => None,
                Some(Modal::Confirm) => state
                    .vms
                    .confirm
                    .as_ref()
                    .and_then(|c| confirm_key(&c.mode, key)),
                Some(Modal::GpuConfirm) => state
                    .gpu
                    .confirm_mode()
                    .and_then(|mode| confirm_key(mode, key)),
                Some(Modal::Form) => form_key(key),
                Some(Modal::Filter) => filter_key(key),
                Some(Modal::Gpu | Modal::Help) | None => {
                    // A key bound on several screens (`p`: pause a VM, plan a GPU; `s`: start
                    // a VM, sort the dashboard) means the current screen's action.
                    let on_gpus = state.view == super::state::View::Gpus;
                    let on_dash = state.view == super::state::View::Dashboard;
                    keymap.action_for_in(key, |a| {
                        a.is_gpu_action() == on_gpus && a.is_dashboard_action() == on_dash
                    })
                }
            }
        }
        Event::Resize(cols, rows) => Some(Action::Resize {
            cols: *cols,
            rows: *rows,
        }),
        _ => None,
    }
}

fn serial_key(state: &State, key: &KeyEvent) -> Option<Action> {
    use super::serial::{is_detach, key_bytes, PaneMode};
    if is_detach(key) {
        return Some(Action::SerialDetach);
    }
    let shift = key.modifiers.contains(KeyModifiers::SHIFT);
    let page = i32::from(state.rows / 2).max(1);
    let log = state.serial.as_ref().map(|p| p.mode) == Some(PaneMode::Log);
    match key.code {
        KeyCode::PageUp if shift || log => Some(Action::SerialScroll(page)),
        KeyCode::PageDown if shift || log => Some(Action::SerialScroll(-page)),
        KeyCode::Up if log => Some(Action::SerialScroll(1)),
        KeyCode::Down if log => Some(Action::SerialScroll(-1)),
        // The log takes no input: the usual keys close it.
        KeyCode::Esc | KeyCode::Char('q') if log => Some(Action::SerialDetach),
        _ => key_bytes(key).map(Action::SerialInput),
    }
}

fn filter_key(key: &KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char(c) if !ctrl => Some(Action::FilterInput(c)),
        KeyCode::Backspace => Some(Action::FilterBackspace),
        KeyCode::Enter => Some(Action::FilterAccept),
        KeyCode::Esc => Some(Action::Back),
        _ => None,
    }
}

/// The power popup's buttons: arrows, Tab, Enter, Esc (no keymap: its keys mean nothing
/// else while it is open).
fn power_key(key: &KeyEvent) -> Option<Action> {
    match key.code {
        KeyCode::Left | KeyCode::Up | KeyCode::BackTab | KeyCode::Char('h' | 'k') => {
            Some(Action::Up)
        }
        KeyCode::Right | KeyCode::Down | KeyCode::Tab | KeyCode::Char('l' | 'j') => {
            Some(Action::Down)
        }
        KeyCode::Enter => Some(Action::ConfirmAccept),
        KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
        _ => None,
    }
}

fn popup_key(key: &KeyEvent) -> Option<Action> {
    match key.code {
        KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q' | ' ') => Some(Action::Back),
        _ => None,
    }
}

fn confirm_key(mode: &ConfirmMode, key: &KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match (mode, key.code) {
        (_, KeyCode::Esc) => Some(Action::Back),
        (_, KeyCode::Enter) => Some(Action::ConfirmAccept),
        (ConfirmMode::Typed { .. }, KeyCode::Backspace) => Some(Action::ConfirmBackspace),
        (ConfirmMode::YesNo { .. }, KeyCode::Left | KeyCode::Right | KeyCode::Tab) => {
            Some(Action::ConfirmToggle)
        }
        (ConfirmMode::YesNo { .. }, KeyCode::BackTab) => Some(Action::ConfirmToggle),
        (_, KeyCode::Char(c)) if !ctrl => Some(Action::ConfirmInput(c)),
        _ => None,
    }
}

fn form_key(key: &KeyEvent) -> Option<Action> {
    let shift = key.modifiers.contains(KeyModifiers::SHIFT);
    match key.code {
        KeyCode::Esc => Some(Action::Back),
        KeyCode::Enter => Some(Action::FormSave),
        KeyCode::BackTab => Some(Action::FormPrev),
        KeyCode::Tab if shift => Some(Action::FormPrev),
        KeyCode::Tab | KeyCode::Down => Some(Action::FormNext),
        KeyCode::Up => Some(Action::FormPrev),
        _ => Some(Action::FormKey((*key).into())),
    }
}
