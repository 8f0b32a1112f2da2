//! The VM form's part of `update`: typing, moving between fields, inline validation, save
//! and cancel.

use crate::vmm::worker::ActionError;

use super::super::action::Action;
use super::super::state::State;
use super::super::vms::form::FormMode;
use super::super::vms::{Confirm, ConfirmKind, EditLoaded, ErrorPopup, Form};
use super::Effect;

/// What the runtime must do to save a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveRequest {
    pub name: String,
    /// A new definition (refused if the name exists) or field edits of an existing one.
    pub create: bool,
    pub edits: Vec<super::super::vms::edit::Edit>,
    /// Saved over what the host checks would refuse but let the owner decide (an existing
    /// serial file, memory above the host's), as `--force` does on the command line.
    pub force: bool,
}

pub fn edit_loaded(state: &mut State, loaded: Result<EditLoaded, ActionError>) -> Vec<Effect> {
    match loaded {
        Ok(l) => {
            let mut form = Form::edit(l.spec);
            form.validate();
            state.vms.form = Some(form);
        }
        Err(error) => {
            state.vms.error = Some(ErrorPopup {
                title: "Cannot edit this VM".into(),
                error,
            });
        }
    }
    Vec::new()
}

/// An edit made from the list (the autostart switch): the list shows the new value.
fn saved_without_form(
    state: &mut State,
    name: String,
    result: Result<(), ActionError>,
) -> Vec<Effect> {
    match result {
        Ok(()) => {
            state.vms.message = Some(format!("{name}: saved"));
            let mut out = super::vms::refresh(state);
            if state.vms.detail_of.as_deref() == Some(name.as_str()) {
                out.push(Effect::LoadVmDetail(name));
            }
            out
        }
        Err(error) => {
            state.vms.message = None;
            state.vms.error = Some(ErrorPopup {
                title: format!("Cannot save {name}"),
                error,
            });
            Vec::new()
        }
    }
}

pub fn saved(state: &mut State, name: String, result: Result<(), ActionError>) -> Vec<Effect> {
    let Some(form) = state.vms.form.as_mut() else {
        return saved_without_form(state, name, result);
    };
    form.saving = false;
    match result {
        Ok(()) => {
            let verb = match form.mode {
                FormMode::New => "defined",
                FormMode::Edit { .. } => "saved",
            };
            state.vms.form = None;
            state.vms.message = Some(format!("{name}: {verb}"));
            state.vms.results.insert(name.clone(), verb.to_string());
            let mut out = super::vms::refresh(state);
            if state.vms.detail_of.as_deref() == Some(name.as_str()) {
                out.push(Effect::LoadVmDetail(name));
            }
            out.dedup();
            out
        }
        Err(error) => {
            // The form stays as typed: nothing is lost to a failed save.
            state.vms.error = Some(ErrorPopup {
                title: format!("Cannot save {name}"),
                error,
            });
            Vec::new()
        }
    }
}

/// A definition was saved with warnings (a disk not created yet, memory forced above the
/// host's): the line under the list says how many and the first.
pub fn warned(state: &mut State, name: String, warnings: Vec<String>) -> Vec<Effect> {
    let Some(first) = warnings.first() else {
        return Vec::new();
    };
    let verb = state.vms.results.get(&name).map_or("saved", String::as_str);
    let count = match warnings.len() {
        1 => "1 warning".to_string(),
        n => format!("{n} warnings"),
    };
    state.vms.message = Some(format!(
        "{name}: {verb}, {count}: {}",
        crate::fmt::printable(first)
    ));
    Vec::new()
}

/// The host checks refused the save: each problem goes under its field, and when saving
/// anyway would lift them all, the owner is asked (the console's `--force`).
pub fn refused(
    state: &mut State,
    name: String,
    problems: Vec<crate::vm::Problem>,
    forceable: bool,
) -> Vec<Effect> {
    let Some(form) = state.vms.form.as_mut() else {
        // An edit from the list (the autostart switch): the refusal shows as a line there.
        let why: Vec<String> = problems
            .iter()
            .map(|p| crate::fmt::printable(&p.to_string()).into_owned())
            .collect();
        state.vms.message = Some(format!("{name}: not saved: {}", why.join("; ")));
        return Vec::new();
    };
    form.saving = false;
    form.host_refusal(&problems);
    if let Some(i) = form.first_error() {
        form.focus = i;
    }
    if forceable && !state.read_only {
        let mut message: Vec<String> = problems
            .iter()
            .map(|p| crate::fmt::printable(&p.to_string()).into_owned())
            .collect();
        message.push("Save anyway (as --force does)?".into());
        state.vms.confirm = Some(Confirm {
            kind: ConfirmKind::ForceSave { name },
            title: "Save anyway?".into(),
            message,
            mode: phyllome_widgets::ConfirmMode::YesNo { yes: false },
        });
    }
    Vec::new()
}

/// The owner said save anyway: the same edits again, forced.
pub fn force_save(state: &mut State, name: String) -> Vec<Effect> {
    let Some(form) = state.vms.form.as_mut() else {
        return Vec::new();
    };
    if state.read_only || form.saving {
        return Vec::new();
    }
    form.saving = true;
    vec![Effect::SaveVm(SaveRequest {
        create: matches!(form.mode, FormMode::New),
        name,
        edits: form.edits(),
        force: true,
    })]
}

pub fn input(state: &mut State, action: Action) -> Vec<Effect> {
    let read_only = state.read_only;
    let Some(form) = state.vms.form.as_mut() else {
        return Vec::new();
    };
    if form.saving && action != Action::Back {
        return Vec::new();
    }
    match action {
        Action::FormKey(key) if form.input(key.clone()) => {
            form.validate();
        }
        Action::FormNext => {
            form.move_focus(1);
            form.validate();
        }
        Action::FormPrev => {
            form.move_focus(-1);
            form.validate();
        }
        Action::FormSave => {
            form.touch_all();
            if read_only {
                return Vec::new();
            }
            if !form.validate() {
                if let Some(i) = form.first_error() {
                    form.focus = i;
                }
                return Vec::new();
            }
            form.saving = true;
            let (name, create) = match &form.mode {
                FormMode::New => (form.name(), true),
                FormMode::Edit { original } => (original.name.clone(), false),
            };
            return vec![Effect::SaveVm(SaveRequest {
                name,
                create,
                edits: form.edits(),
                force: false,
            })];
        }
        Action::Back => {
            if form.is_dirty() {
                state.vms.confirm = Some(Confirm {
                    kind: ConfirmKind::DiscardForm,
                    title: "Discard changes?".into(),
                    message: vec!["What you typed in this form will be lost.".into()],
                    mode: phyllome_widgets::ConfirmMode::YesNo { yes: false },
                });
            } else {
                state.vms.form = None;
            }
        }
        _ => {}
    }
    Vec::new()
}
