//! What owns the keyboard and what is drawn on top, decided once: input routing, `update`
//! and the views all ask [`modal`] (or [`layers`] for everything open).
//!
//! Several layers can be open at once: an action's error arrives while a GPU operation runs,
//! a "discard your changes?" question sits over the VM form. The first open one in
//! [`Modal`]'s order takes the keys and is drawn last; the others stay beneath it, and
//! background results still reach theirs (a GPU job's outcome lands under an error popup).

use super::state::State;

/// An overlay, in precedence order: earlier ones sit above later ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Modal {
    /// An action's error. Esc or Enter closes it, whatever runs beneath.
    Error,
    /// "Shut down or restart": its buttons, then the stops under way.
    Power,
    /// The serial pane: every key but the detach key goes to the guest.
    Serial,
    /// A VM action's question (or leaving the form with changes).
    Confirm,
    /// The question of a GPU operation or of the boot preview: takes typed answers.
    GpuConfirm,
    /// A GPU operation (pick a VM, review, steps) or the boot preview: keymap keys.
    Gpu,
    /// The VM form takes text.
    Form,
    /// The filter prompt takes text.
    Filter,
    /// The help popup: keymap keys scroll it.
    Help,
}

impl Modal {
    const ALL: [Modal; 9] = [
        Modal::Error,
        Modal::Power,
        Modal::Serial,
        Modal::Confirm,
        Modal::GpuConfirm,
        Modal::Gpu,
        Modal::Form,
        Modal::Filter,
        Modal::Help,
    ];

    fn is_open(self, s: &State) -> bool {
        match self {
            Modal::Error => s.vms.error.is_some(),
            Modal::Power => s.power.is_some(),
            Modal::Serial => s.serial.is_some(),
            Modal::Confirm => s.vms.confirm.is_some(),
            Modal::GpuConfirm => s.gpu.confirm_mode().is_some(),
            Modal::Gpu => s.gpu.is_open(),
            Modal::Form => s.vms.form.is_some(),
            Modal::Filter => s.filter.editing,
            Modal::Help => s.help.is_some(),
        }
    }
}

/// The overlay on top, which takes the keys; `None`: the screen beneath has them.
pub fn modal(state: &State) -> Option<Modal> {
    Modal::ALL.into_iter().find(|m| m.is_open(state))
}

/// Every overlay open, top first.
pub fn layers(state: &State) -> Vec<Modal> {
    Modal::ALL
        .into_iter()
        .filter(|m| m.is_open(state))
        .collect()
}

#[cfg(test)]
mod tests;
