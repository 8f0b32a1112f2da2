//! The console's form: a refusal goes under its field; where saving anyway would lift
//! every problem, it asks first (the console's `--force`).

use std::time::Duration;

use futures::StreamExt;
use phyllome::ops::HostPaths;
use phyllome::tui::{run_on, update, Action, Effect, Keymap, State, Theme};
use phyllome::vm::Problem;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::support::ui::{self, Ui};

fn form_ui() -> Ui {
    let keymap = Keymap::load(None, false).expect("keymap");
    let mut state = State::new(&keymap, Theme::new(false, true), false, 80, 24);
    state.load = phyllome::tui::state::Load::Loaded;
    update(&mut state, Action::ViewVms);
    update(&mut state, Action::VmsLoaded(Ok(Vec::new())));
    let mut ui = Ui::new(state, keymap);
    ui.keys("nbig<tab><tab><tab><backspace><backspace>64G<enter>");
    ui
}

fn saves(ui: &Ui) -> Vec<bool> {
    ui.effects
        .iter()
        .filter_map(|e| match e {
            Effect::SaveVm(req) => Some(req.force),
            _ => None,
        })
        .collect()
}

#[test]
fn a_refusal_shows_under_its_field_and_forcing_asks_first() {
    let mut ui = form_ui();
    assert_eq!(saves(&ui), [false], "the first save is never forced");
    let refusal = |forceable| {
        Action::VmSaveRefused {
        name: "big".into(),
        problems: vec![Problem::error(
            "memory.size",
            "64G is more than this host's 4000M of memory; the host would swap or kill processes: give at most 4000M, or save with --force",
        )],
        forceable,
    }
    };
    ui.act(refusal(true));
    crate::support::snap("tui_vm_form_refused_confirm_80x24", ui.screen());
    // No: back in the form, the problem under the memory field, nothing saved.
    ui.keys("n");
    assert!(ui.state.vms.confirm.is_none());
    let form = ui.state.vms.form.as_ref().expect("the form stays");
    let memory = form
        .field(phyllome::tui::vms::form::FieldKey::Memory)
        .expect("memory field");
    assert!(
        memory
            .error
            .as_deref()
            .is_some_and(|e| e.contains("more than this host's")),
        "{:?}",
        memory.error
    );
    crate::support::snap("tui_vm_form_refused_80x24", ui.screen());
    // Yes: the same edits again, forced.
    ui.keys("<enter>");
    ui.act(refusal(true));
    ui.keys("y");
    assert_eq!(saves(&ui), [true]);
    // A refusal no force lifts (a mounted disk) asks nothing.
    let mut ui = form_ui();
    ui.act(refusal(false));
    assert!(ui.state.vms.confirm.is_none());
    assert!(ui
        .state
        .vms
        .form
        .as_ref()
        .and_then(|f| f.first_error())
        .is_some());
}

fn events(
    keys: &str,
) -> futures::stream::BoxStream<'static, std::io::Result<crossterm::event::Event>> {
    ui::paced(
        ui::events(keys).into_iter().map(Ok).collect(),
        Duration::from_millis(150),
    )
    .chain(futures::stream::pending())
    .boxed()
}

/// The real loop and runtime on a host with 4000M of memory: a new VM of 64G is refused
/// until the owner says save anyway.
#[tokio::test]
async fn the_loop_refuses_then_saves_when_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    super::write(&host.join("proc/meminfo"), "MemTotal:        4096000 kB\n");
    let opts = phyllome::tui::ConsoleOptions {
        paths: HostPaths {
            host_root: host,
            ch_bin: Some(dir.path().join("no-cloud-hypervisor")),
            ..ui::console(dir.path(), dir.path()).paths
        },
        ..ui::console(dir.path(), dir.path())
    };
    let file = dir.path().join("state/vms/big.toml");
    let keys = "5nbig<tab><tab><tab><backspace><backspace>64G<enter>";
    for (more, saved) in [("", false), ("y", true)] {
        let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
        let run = run_on(
            &mut terminal,
            events(&format!("{keys}{more}")),
            Keymap::defaults().unwrap(),
            &opts,
        );
        let _ = tokio::time::timeout(Duration::from_secs(5), run).await;
        let screen = terminal.backend().to_string();
        assert_eq!(file.exists(), saved, "{screen}");
        if saved {
            // The line under the list tells what the checks found worth knowing.
            assert!(
                screen.contains("big: defined, 2 warnings: boot.firmware:"),
                "{screen}"
            );
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.contains("size = \"64G\""), "{text}");
        } else {
            assert!(screen.contains("Save anyway?"), "{screen}");
            assert!(screen.contains("more than this host's"), "{screen}");
        }
    }
}
