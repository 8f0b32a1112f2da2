//! Terminal events to actions: the keymap, except while the filter prompt takes text.

use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};

use super::action::Action;
use super::keymap::Keymap;
use super::state::State;

pub fn translate(state: &State, keymap: &Keymap, event: &Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            if !state.filter.editing {
                return keymap.action_for(key);
            }
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            match key.code {
                KeyCode::Char('c') if ctrl => Some(Action::Quit),
                KeyCode::Char(c) if !ctrl => Some(Action::FilterInput(c)),
                KeyCode::Backspace => Some(Action::FilterBackspace),
                KeyCode::Enter => Some(Action::FilterAccept),
                KeyCode::Esc => Some(Action::Back),
                _ => None,
            }
        }
        Event::Resize(cols, rows) => Some(Action::Resize {
            cols: *cols,
            rows: *rows,
        }),
        _ => None,
    }
}
