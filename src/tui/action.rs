//! Everything that can happen to the console, as one enum.
//!
//! Bindable actions have snake_case names used in `config/keymap.toml`; the others come from
//! the runtime (terminal resizes, results of background work) and cannot be bound.

use serde::{Deserialize, Serialize};

use crate::host::Inventory;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave at once, from anywhere.
    Quit,
    /// Close the popup, go back to the overview, then quit.
    Back,
    Help,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextView,
    PrevView,
    ViewOverview,
    ViewGroups,
    ViewGpus,
    ViewKvm,
    Refresh,
    Filter,
    /// Repaint the whole screen (after line noise on a serial console).
    Redraw,

    #[serde(skip)]
    Resize {
        cols: u16,
        rows: u16,
    },
    #[serde(skip)]
    InventoryLoaded(Box<Loaded>),
    #[serde(skip)]
    InventoryFailed(String),
    /// A printable character typed while the filter prompt is open.
    #[serde(skip)]
    FilterInput(char),
    #[serde(skip)]
    FilterBackspace,
    #[serde(skip)]
    FilterAccept,
}

/// Result of a background inventory read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub inventory: Inventory,
    pub host_name: Option<String>,
}

impl Action {
    /// Actions that change the host. None of the host views' actions do yet; the keymap still
    /// honours the flag so that read-only mode cannot be bypassed by a user keymap.
    pub fn is_dangerous(&self) -> bool {
        false
    }

    /// The snake_case name used in keymap files.
    pub fn name(&self) -> String {
        match toml::Value::try_from(self) {
            Ok(toml::Value::String(s)) => s,
            _ => format!("{self:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_snake_case() {
        assert_eq!(Action::PageDown.name(), "page_down");
        assert_eq!(Action::ViewGpus.name(), "view_gpus");
        let parsed: Action = toml::Value::String("next_view".into()).try_into().unwrap();
        assert_eq!(parsed, Action::NextView);
    }

    #[test]
    fn runtime_actions_cannot_be_bound() {
        let r: Result<Action, _> = toml::Value::String("resize".into()).try_into();
        assert!(r.is_err());
    }
}
