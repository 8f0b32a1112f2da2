use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use phyllome_widgets::ConfirmMode;

use super::*;
use crate::tui::action::Action;
use crate::tui::gpus::{Flow, GpuJob, GpuMsg, GpuOp, Outcome, Stage};
use crate::tui::input::translate;
use crate::tui::keymap::Keymap;
use crate::tui::state::{Theme, View};
use crate::tui::update::{update, Effect};
use crate::tui::vms::{Confirm, ConfirmKind, ErrorPopup, Form};
use crate::vmm::worker::ActionError;

fn state(keymap: &Keymap) -> State {
    State::new(keymap, Theme::new(false, false), false, 80, 24)
}

fn flow(stage: Stage) -> Flow {
    Flow {
        op: GpuOp::Detach,
        gpu: "0000:0b:00.0".parse().unwrap(),
        gpu_name: "GPU".into(),
        vm: None,
        stage,
        scroll: 0,
    }
}

fn error() -> ErrorPopup {
    ErrorPopup {
        title: "Cannot start web".into(),
        error: ActionError {
            message: "VMM error".into(),
            causes: vec!["no such file".into()],
        },
    }
}

/// Each layer opened over the last: the newest, higher one takes over, and `layers` lists
/// them all top first.
#[test]
fn the_layer_on_top_wins_in_precedence_order() {
    let keymap = Keymap::defaults().unwrap();
    let mut s = state(&keymap);
    assert_eq!(modal(&s), None);
    s.help = Some(0);
    assert_eq!(modal(&s), Some(Modal::Help));
    s.filter.editing = true;
    assert_eq!(modal(&s), Some(Modal::Filter));
    s.vms.form = Some(Form::new_vm(Vec::new()));
    assert_eq!(modal(&s), Some(Modal::Form));
    s.gpu.flow = Some(flow(Stage::Planning));
    assert_eq!(modal(&s), Some(Modal::Gpu));
    s.gpu.flow = Some(flow(Stage::Confirm {
        review: Box::default(),
        mode: ConfirmMode::YesNo { yes: false },
        error: None,
    }));
    assert_eq!(modal(&s), Some(Modal::GpuConfirm));
    s.vms.confirm = Some(Confirm {
        kind: ConfirmKind::DiscardForm,
        title: "Discard?".into(),
        message: Vec::new(),
        mode: ConfirmMode::YesNo { yes: false },
    });
    assert_eq!(modal(&s), Some(Modal::Confirm));
    s.vms.error = Some(error());
    assert_eq!(modal(&s), Some(Modal::Error));
    assert_eq!(
        layers(&s),
        vec![
            Modal::Error,
            Modal::Confirm,
            Modal::GpuConfirm,
            Modal::Gpu,
            Modal::Form,
            Modal::Filter,
            Modal::Help
        ]
    );
    // Closing the top one hands the keys down one layer.
    s.vms.error = None;
    assert_eq!(modal(&s), Some(Modal::Confirm));
}

/// A VM action fails while a GPU operation's steps run: its error pops up over the flow,
/// closes with Esc at once, and the operation's result still lands beneath it.
#[test]
fn an_error_popup_closes_while_a_gpu_job_runs() {
    let keymap = Keymap::defaults().unwrap();
    let mut s = state(&keymap);
    s.view = View::Gpus;
    s.gpu.flow = Some(flow(Stage::Review(Box::default())));
    let press = |s: &mut State, code: KeyCode| {
        let ev = Event::Key(KeyEvent::new(code, KeyModifiers::NONE));
        let action = translate(s, &keymap, &ev).expect("the key means something");
        update(s, action)
    };
    // Review, then confirm with `y`: the steps run in the background.
    press(&mut s, KeyCode::Enter);
    assert_eq!(modal(&s), Some(Modal::GpuConfirm));
    let out = press(&mut s, KeyCode::Char('y'));
    assert!(
        matches!(out.as_slice(), [Effect::Gpu(GpuJob::Run { .. })]),
        "{out:?}"
    );
    assert!(matches!(
        s.gpu.flow.as_ref().map(|f| &f.stage),
        Some(Stage::Running { .. })
    ));
    // A VM start started earlier fails meanwhile.
    update(
        &mut s,
        Action::VmDone {
            op: "start".into(),
            name: "web".into(),
            result: Err(error().error),
        },
    );
    assert_eq!(layers(&s), vec![Modal::Error, Modal::Gpu]);
    // Esc closes the popup, not (refused) the running flow.
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.vms.error, None);
    assert_eq!(modal(&s), Some(Modal::Gpu));
    assert!(matches!(
        s.gpu.flow.as_ref().map(|f| &f.stage),
        Some(Stage::Running { .. })
    ));
    // The job's result lands under a popup as well.
    s.vms.error = Some(error());
    update(
        &mut s,
        Action::Gpu(Box::new(GpuMsg::Finished(Outcome::Done(vec![
            "bound".into()
        ])))),
    );
    assert!(matches!(
        s.gpu.flow.as_ref().map(|f| &f.stage),
        Some(Stage::Finished { .. })
    ));
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.vms.error, None, "Enter closes it too");
    assert!(s.gpu.flow.is_some(), "the flow waits to be read");
    press(&mut s, KeyCode::Enter);
    assert_eq!(modal(&s), None);
}
