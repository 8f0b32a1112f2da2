use std::time::{Duration, Instant};

use ratatui_textarea::{Input, Key};

use super::super::{update, Effect};
use crate::tui::action::Action;
use crate::tui::keymap::Keymap;
use crate::tui::state::{State, Theme, View};
use crate::tui::vms::form::FieldKey;
use crate::tui::vms::{ConfirmKind, VmOp, VmRow};
use crate::vmm::manager::{RunState, StopMode, StopOutcome};
use crate::vmm::worker::{ActionError, VmRequest};

pub fn row(name: &str, state: RunState) -> VmRow {
    VmRow {
        name: name.into(),
        state,
        defined: true,
        autostart: false,
        stop_timeout_secs: Some(60),
        vcpus: Some(2),
        memory_bytes: Some(4 << 30),
        uptime_secs: None,
        disks: 1,
        nets: 1,
        vfio: 0,
        error: None,
    }
}

fn state_with(read_only: bool, rows: Vec<VmRow>) -> State {
    let keymap = Keymap::load(None, read_only).unwrap();
    let mut s = State::new(&keymap, Theme::new(true, false), read_only, 80, 24);
    update(&mut s, Action::ViewVms);
    update(&mut s, Action::VmsLoaded(Ok(rows)));
    s
}

fn state(rows: Vec<VmRow>) -> State {
    state_with(false, rows)
}

fn typed(s: &mut State, text: &str, as_action: fn(char) -> Action) {
    for c in text.chars() {
        update(s, as_action(c));
    }
}

fn form_char(c: char) -> Action {
    Action::FormKey(Input {
        key: Key::Char(c),
        ..Input::default()
    })
}

#[test]
fn start_runs_in_the_background_and_shows_progress_then_the_result() {
    let mut s = state(vec![row("web", RunState::Stopped)]);
    let fx = update(&mut s, Action::VmStart);
    assert_eq!(fx, vec![Effect::Vm(VmRequest::Start("web".into()))]);
    assert!(s.vms.pending.contains_key("web"));
    // A second action on the same VM waits for the first.
    assert!(update(&mut s, Action::VmStart).is_empty());
    let fx = update(
        &mut s,
        Action::VmDone {
            op: "start".into(),
            name: "web".into(),
            result: Ok(None),
        },
    );
    assert!(fx.is_empty());
    assert!(s.vms.pending.is_empty());
    assert_eq!(s.vms.results["web"], "start: done");
    assert!(s.vms.error.is_none());
}

#[test]
fn a_failure_opens_a_popup_with_the_causes_and_back_closes_it() {
    let mut s = state(vec![row("web", RunState::Running)]);
    update(&mut s, Action::VmPauseResume);
    let error = ActionError {
        message: "VM web: vm.pause failed: VM is not running".into(),
        causes: vec!["InvalidStateTransition(Running, Paused)".into()],
    };
    update(
        &mut s,
        Action::VmDone {
            op: "pause".into(),
            name: "web".into(),
            result: Err(error.clone()),
        },
    );
    let popup = s.vms.error.clone().unwrap();
    assert_eq!(popup.error, error);
    assert_eq!(popup.title, "Cannot pause web");
    // Keys other than back do nothing while it is open.
    assert!(update(&mut s, Action::VmStart).is_empty());
    update(&mut s, Action::Back);
    assert!(s.vms.error.is_none());
    assert_eq!(s.view, View::Vms);
}

#[test]
fn force_off_wants_the_name_typed() {
    let mut s = state(vec![row("desktop", RunState::Running)]);
    assert!(update(&mut s, Action::VmForceOff).is_empty());
    assert!(s.vms.confirm.is_some());
    typed(&mut s, "deskto", Action::ConfirmInput);
    assert!(update(&mut s, Action::ConfirmAccept).is_empty());
    assert!(s.vms.confirm.is_some(), "a wrong name keeps asking");
    typed(&mut s, "p", Action::ConfirmInput);
    let fx = update(&mut s, Action::ConfirmAccept);
    assert_eq!(
        fx,
        vec![Effect::Vm(VmRequest::Stop {
            name: "desktop".into(),
            mode: StopMode::Force
        })]
    );
    assert!(s.vms.confirm.is_none());
}

#[test]
fn reboot_asks_yes_or_no_and_defaults_to_no() {
    let mut s = state(vec![row("desktop", RunState::Running)]);
    update(&mut s, Action::VmReboot);
    assert!(update(&mut s, Action::ConfirmAccept).is_empty());
    assert!(s.vms.confirm.is_none());
    update(&mut s, Action::VmReboot);
    update(&mut s, Action::ConfirmToggle);
    assert_eq!(
        update(&mut s, Action::ConfirmAccept),
        vec![Effect::Vm(VmRequest::Reboot("desktop".into()))]
    );
    // And esc cancels.
    let mut s = state(vec![row("desktop", RunState::Running)]);
    update(&mut s, Action::VmReboot);
    assert!(update(&mut s, Action::Back).is_empty());
    assert!(s.vms.confirm.is_none());
}

#[test]
fn pointless_actions_are_refused_with_a_reason() {
    let mut s = state(vec![row("desktop", RunState::Running)]);
    assert!(update(&mut s, Action::VmDelete).is_empty());
    assert!(s.vms.confirm.is_none());
    assert!(s.vms.message.as_deref().unwrap().contains("stop it first"));
    assert!(update(&mut s, Action::VmStart).is_empty());
    let mut s = state(vec![VmRow {
        error: Some("memory.size: bad".into()),
        ..row("bad", RunState::Stopped)
    }]);
    assert!(update(&mut s, Action::VmStart).is_empty());
    assert!(s.vms.message.as_deref().unwrap().contains("invalid"));
}

#[test]
fn read_only_refuses_every_change_even_without_a_binding() {
    let mut s = state_with(true, vec![row("desktop", RunState::Running)]);
    for a in [
        Action::VmStart,
        Action::VmStop,
        Action::VmForceOff,
        Action::VmReboot,
        Action::VmDelete,
        Action::VmNew,
        Action::VmEdit,
        Action::VmPauseResume,
    ] {
        assert!(update(&mut s, a.clone()).is_empty(), "{a:?}");
        assert!(s.vms.confirm.is_none() && s.vms.form.is_none());
        assert!(s.vms.message.as_deref().unwrap().starts_with("read-only"));
    }
    // Looking is fine.
    assert_eq!(
        update(&mut s, Action::Open),
        vec![Effect::LoadVmDetail("desktop".into())]
    );
}

#[test]
fn refreshes_never_pile_up_and_unchanged_lists_draw_nothing() {
    let mut s = state(vec![row("web", RunState::Stopped)]);
    let tick = |s: &mut State| update(s, Action::VmTick(Instant::now()));
    assert_eq!(tick(&mut s), vec![Effect::RefreshVms, Effect::NoRedraw]);
    // The clock ticks every second; the list is asked for on every other tick.
    assert_eq!(tick(&mut s), vec![Effect::NoRedraw]);
    // Due, but one is running: it is queued, not sent.
    assert_eq!(tick(&mut s), vec![Effect::NoRedraw]);
    assert!(s.vms.refresh_queued);
    // The queued one runs once the running one is back.
    let fx = update(
        &mut s,
        Action::VmsLoaded(Ok(vec![row("web", RunState::Stopped)])),
    );
    assert_eq!(fx, vec![Effect::RefreshVms, Effect::NoRedraw]);
    let fx = update(
        &mut s,
        Action::VmsLoaded(Ok(vec![row("web", RunState::Running)])),
    );
    assert!(fx.is_empty(), "a change draws");
    // Off the VM screens the tick does nothing.
    update(&mut s, Action::ViewOverview);
    assert_eq!(tick(&mut s), vec![Effect::NoRedraw]);
    assert_eq!(tick(&mut s), vec![Effect::NoRedraw]);
}

#[test]
fn the_cursor_follows_its_vm_across_refreshes() {
    let mut s = state(vec![
        row("b", RunState::Stopped),
        row("c", RunState::Stopped),
    ]);
    update(&mut s, Action::Down);
    assert_eq!(s.vms.selected_row("").unwrap().name, "c");
    let rows = vec![
        row("a", RunState::Stopped),
        row("b", RunState::Stopped),
        row("c", RunState::Stopped),
    ];
    update(&mut s, Action::VmsLoaded(Ok(rows)));
    assert_eq!(s.vms.selected_row("").unwrap().name, "c");
}

#[test]
fn enter_opens_the_detail_and_back_returns_to_the_list() {
    let mut s = state(vec![row("web", RunState::Running)]);
    assert_eq!(
        update(&mut s, Action::Open),
        vec![Effect::LoadVmDetail("web".into())]
    );
    assert_eq!(s.vms.detail_of.as_deref(), Some("web"));
    let fx = update(&mut s, Action::VmTick(Instant::now()));
    assert!(fx.contains(&Effect::LoadVmDetail("web".into())));
    update(&mut s, Action::Back);
    assert!(s.vms.detail_of.is_none());
    assert_eq!(s.view, View::Vms);
}

#[test]
fn the_form_validates_saves_and_keeps_what_was_typed_on_failure() {
    let mut s = state(vec![row("web", RunState::Stopped)]);
    update(&mut s, Action::VmNew);
    assert!(s.vms.form.is_some());
    // Untouched: esc closes without asking.
    update(&mut s, Action::Back);
    assert!(s.vms.form.is_none() && s.vms.confirm.is_none());

    update(&mut s, Action::VmNew);
    typed(&mut s, "web", form_char);
    update(&mut s, Action::FormNext);
    let form = s.vms.form.as_ref().unwrap();
    assert!(form.fields[0].error.as_deref().unwrap().contains("exists"));
    // Enter with a problem: no save, the cursor goes to the field.
    assert!(update(&mut s, Action::FormSave).is_empty());
    assert_eq!(s.vms.form.as_ref().unwrap().focus, 0);
    typed(&mut s, "2", form_char);
    let fx = update(&mut s, Action::FormSave);
    let Some(Effect::SaveVm(req)) = fx.first() else {
        panic!("{fx:?}")
    };
    assert!(req.create);
    assert_eq!(req.name, "web2");
    assert!(s.vms.form.as_ref().unwrap().saving);

    let err = ActionError {
        message: "Cannot use /x".into(),
        causes: vec![],
    };
    update(
        &mut s,
        Action::VmSaved {
            name: "web2".into(),
            result: Err(err),
        },
    );
    assert!(s.vms.error.is_some());
    update(&mut s, Action::Back);
    let form = s.vms.form.as_ref().unwrap();
    assert_eq!(form.value(FieldKey::Name), "web2", "nothing typed is lost");
    assert!(!form.saving);

    // Esc with changes asks first.
    update(&mut s, Action::Back);
    assert!(matches!(
        s.vms.confirm.as_ref().map(|c| &c.kind),
        Some(ConfirmKind::DiscardForm)
    ));
    update(&mut s, Action::Back);
    assert!(s.vms.form.is_some(), "esc on the question keeps the form");

    update(&mut s, Action::FormSave);
    let fx = update(
        &mut s,
        Action::VmSaved {
            name: "web2".into(),
            result: Ok(()),
        },
    );
    assert!(s.vms.form.is_none());
    assert_eq!(fx, vec![Effect::RefreshVms]);
}

#[test]
fn vm_keys_do_nothing_on_the_host_views() {
    let mut s = state(vec![row("web", RunState::Stopped)]);
    update(&mut s, Action::ViewGroups);
    assert!(update(&mut s, Action::VmStart).is_empty());
    assert!(s.vms.pending.is_empty());
}

fn stop_done(s: &mut State, outcome: StopOutcome) {
    update(
        s,
        Action::VmDone {
            op: "stop".into(),
            name: "web".into(),
            result: Ok(Some(outcome)),
        },
    );
}

#[test]
fn a_graceful_stop_counts_down_the_vms_grace_period_then_reports_the_fallback() {
    let mut s = state(vec![VmRow {
        stop_timeout_secs: Some(90),
        ..row("web", RunState::Running)
    }]);
    let fx = update(&mut s, Action::VmStop);
    assert_eq!(
        fx,
        vec![Effect::Vm(VmRequest::Stop {
            name: "web".into(),
            mode: StopMode::Graceful {
                timeout: Duration::from_secs(90)
            }
        })]
    );
    assert_eq!(s.vms.progress("web", VmOp::Stop), "stopping 1m30s");
    assert!(s.vms.message.as_deref().unwrap().contains("or now with X"));
    // The countdown starts when the request went out.
    let t0 = Instant::now();
    let fx = update(
        &mut s,
        Action::VmGraceStarted {
            name: "web".into(),
            at: t0,
        },
    );
    assert_eq!(fx, vec![Effect::NoRedraw]);
    let at = |ms: u64| Action::VmTick(t0 + Duration::from_millis(ms));
    // Same second on screen: nothing to draw.
    assert_eq!(
        update(&mut s, at(500)),
        vec![Effect::RefreshVms, Effect::NoRedraw]
    );
    assert_eq!(update(&mut s, at(48_200)), Vec::<Effect>::new(), "redraw");
    assert_eq!(s.vms.progress("web", VmOp::Stop), "stopping 42s");
    assert_eq!(update(&mut s, at(48_700)), vec![Effect::NoRedraw]);
    // Other actions still wait for the stop.
    assert!(update(&mut s, Action::VmReboot).is_empty());
    assert!(s.vms.confirm.is_none());
    update(&mut s, at(90_000));
    assert_eq!(s.vms.progress("web", VmOp::Stop), "forcing off...");
    stop_done(&mut s, StopOutcome::TimedOut);
    assert!(s.vms.pending.is_empty() && s.vms.grace.is_empty());
    assert_eq!(
        s.vms.results["web"],
        "stop: the guest did not power off in 1m30s; forced off (vm.shutdown)"
    );
    assert!(s.vms.message.as_deref().unwrap().contains("forced off"));
}

#[test]
fn force_off_during_the_countdown_is_confirmed_then_ends_it() {
    let mut s = state(vec![row("web", RunState::Running)]);
    update(&mut s, Action::VmStop);
    update(
        &mut s,
        Action::VmGraceStarted {
            name: "web".into(),
            at: Instant::now(),
        },
    );
    // X is the one action a stop under way lets through, behind its typed confirmation.
    assert!(update(&mut s, Action::VmForceOff).is_empty());
    assert!(s.vms.confirm.is_some());
    typed(&mut s, "web", Action::ConfirmInput);
    let fx = update(&mut s, Action::ConfirmAccept);
    assert_eq!(
        fx,
        vec![Effect::Vm(VmRequest::Stop {
            name: "web".into(),
            mode: StopMode::Force
        })]
    );
    assert_eq!(s.vms.pending.get("web"), Some(&VmOp::ForceOff));
    assert!(s.vms.grace.is_empty(), "the countdown is over");
    assert_eq!(s.vms.progress("web", VmOp::ForceOff), "powering off...");
    // The graceful stop reports, cut short.
    stop_done(&mut s, StopOutcome::CutShort);
    assert!(s.vms.pending.is_empty());
    assert_eq!(
        s.vms.results["web"],
        "force off: done, during the grace period (vm.shutdown)"
    );
}

#[test]
fn a_guest_that_powers_off_in_time_ends_the_countdown() {
    // No readable definition: the default grace period.
    let mut s = state(vec![VmRow {
        stop_timeout_secs: None,
        ..row("web", RunState::Running)
    }]);
    let fx = update(&mut s, Action::VmStop);
    assert!(matches!(
        fx.as_slice(),
        [Effect::Vm(VmRequest::Stop { mode: StopMode::Graceful { timeout }, .. })]
            if *timeout == Duration::from_secs(60)
    ));
    assert_eq!(s.vms.progress("web", VmOp::Stop), "stopping 1m00s");
    stop_done(&mut s, StopOutcome::PoweredOff);
    assert!(s.vms.grace.is_empty() && s.vms.pending.is_empty());
    assert_eq!(s.vms.results["web"], "stop: done (the guest powered off)");
    // Ticks after the end draw nothing more.
    assert_eq!(
        update(&mut s, Action::VmTick(Instant::now())),
        vec![Effect::RefreshVms, Effect::NoRedraw]
    );
}

#[test]
fn the_autostart_switch_edits_the_definition_and_the_list_follows() {
    use crate::tui::update::SaveRequest;
    use crate::tui::vms::edit::{Edit, Scalar};
    let mut on = row("web", RunState::Running);
    on.autostart = true;
    let mut s = state(vec![row("db", RunState::Stopped), on]);
    let fx = update(&mut s, Action::VmAutostart);
    assert_eq!(
        fx,
        vec![Effect::SaveVm(SaveRequest {
            name: "db".into(),
            create: false,
            edits: vec![Edit::set("autostart", Scalar::Bool(true))],
            force: false,
        })]
    );
    update(&mut s, Action::Down);
    let fx = update(&mut s, Action::VmAutostart);
    assert!(
        matches!(&fx[..], [Effect::SaveVm(r)] if r.edits == vec![Edit::set("autostart", Scalar::Bool(false))]),
        "{fx:?}"
    );
    // Saved: the list is read again; refused: the cause shows and nothing else changes.
    let fx = update(
        &mut s,
        Action::VmSaved {
            name: "web".into(),
            result: Ok(()),
        },
    );
    assert!(fx.contains(&Effect::RefreshVms), "{fx:?}");
    update(
        &mut s,
        Action::VmSaved {
            name: "web".into(),
            result: Err(ActionError::new(&std::io::Error::other("disk full"))),
        },
    );
    assert!(s.vms.error.is_some());
}

#[test]
fn a_read_only_console_has_no_autostart_switch() {
    let mut s = state_with(true, vec![row("db", RunState::Stopped)]);
    assert!(update(&mut s, Action::VmAutostart).is_empty());
}
