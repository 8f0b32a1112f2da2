//! Snapshots of the VM screens (list, detail, form, popups) from state built here, driven
//! through the keymap and `update` as a user would; and the real loop on a state directory.

use crate::support;
use crate::support::ui::{self, Ui};

use std::io;
use std::time::{Duration, Instant};

use crossterm::event::Event;
use futures::StreamExt;
use phyllome::ops::HostPaths;
use phyllome::tui::vms::{Detail, LiveInfo, VmRow};
use phyllome::tui::{run_on, update, Action, ConsoleOptions, Keymap, State, Theme, View};
use phyllome::vm::{load, EXAMPLE_TOML};
use phyllome::vmm::error::VmmError;
use phyllome::vmm::manager::{ManagerError, RunState};
use phyllome::vmm::worker::ActionError;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn row(name: &str, state: RunState) -> VmRow {
    VmRow {
        nets: 1,
        ..ui::vm_row(name, state)
    }
}

/// A host with a VM in every state, an invalid definition and a VMM without one.
fn rows() -> Vec<VmRow> {
    vec![
        VmRow {
            autostart: true,
            stop_timeout_secs: Some(120),
            vcpus: Some(8),
            memory_bytes: Some(16 << 30),
            uptime_secs: Some(2 * 86_400 + 3 * 3600),
            vfio: 2,
            ..row("desktop", RunState::Running)
        },
        VmRow {
            uptime_secs: Some(47 * 60),
            ..row("dev", RunState::Paused)
        },
        VmRow {
            error: Some(
                "/var/lib/phyllome/vms/broken.toml is not a valid VM definition:\n\
                 memory.size: \"2X\" is not a size; write e.g. 2G"
                    .into(),
            ),
            vcpus: None,
            memory_bytes: None,
            disks: 0,
            nets: 0,
            ..row("broken", RunState::Stopped)
        },
        VmRow {
            error: Some("vm.info timed out after 5.0 s".into()),
            ..row("hung", RunState::Unresponsive)
        },
        row("router", RunState::Stopped),
        VmRow {
            uptime_secs: Some(3 * 3600 + 5 * 60),
            memory_bytes: Some(512 << 20),
            ..row("web", RunState::Running)
        },
    ]
}

/// The VMs view of a host with [`rows`].
fn vms_ui(cols: u16, rows_: u16, ascii: bool, read_only: bool) -> Ui {
    let keymap = Keymap::load(None, read_only).expect("keymap");
    let mut state = State::new(&keymap, Theme::new(ascii, !ascii), read_only, cols, rows_);
    state.host_name = Some("tower".into());
    // The host inventory is not what these screens show.
    state.load = phyllome::tui::state::Load::Loaded;
    update(&mut state, Action::ViewVms);
    update(&mut state, Action::VmsLoaded(Ok(rows())));
    Ui::new(state, keymap)
}

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_{name}"), screen);
}

#[test]
fn the_list_at_80x24_and_120x40() {
    for (cols, rows) in [(80, 24), (120, 40)] {
        let mut ui = vms_ui(cols, rows, false, false);
        // An action under way shows in its row.
        ui.keys("jjjjs");
        assert_eq!(ui.state.vms.selected_row("").unwrap().name, "router");
        snap(&format!("vms_{cols}x{rows}"), &ui.screen());
    }
}

#[test]
fn the_list_in_ascii_is_pure_ascii() {
    let mut ui = vms_ui(80, 24, true, false);
    ui.keys("j");
    let screen = ui.screen();
    assert!(screen.is_ascii(), "{screen}");
    snap("vms_ascii_80x24", &screen);
}

#[test]
fn read_only_shows_no_action_and_refuses_them() {
    let mut ui = vms_ui(80, 24, true, true);
    ui.keys("jjjjsX");
    let screen = ui.screen();
    assert!(ui.state.vms.pending.is_empty() && ui.state.vms.confirm.is_none());
    assert!(!screen.contains("force off"), "{screen}");
    assert!(!screen.contains(" start"), "{screen}");
    assert!(screen.contains("read-only"), "{screen}");
}

#[test]
fn the_filter_narrows_the_list() {
    let mut ui = vms_ui(80, 24, false, false);
    ui.keys("/run<enter>");
    let names: Vec<String> = ui
        .state
        .vms
        .visible(&ui.state.filter.text)
        .iter()
        .map(|r| r.name.clone())
        .collect();
    // By state (Running); names match too.
    assert_eq!(names, ["desktop", "web"]);
    assert!(ui.screen().contains("filter: run"));
}

fn detail(ui: &mut Ui) {
    let spec = load(EXAMPLE_TOML, "desktop").unwrap();
    ui.act(Action::VmDetailLoaded(Box::new(Detail {
        name: "desktop".into(),
        spec: Ok(spec),
        info: Some(Ok(LiveInfo {
            state: RunState::Running,
            uptime_secs: Some(2 * 86_400 + 3 * 3600),
            memory_actual: Some(12 << 30),
        })),
        snapshots: Vec::new(),
        rescue: None,
    })));
}

#[test]
fn the_detail_view() {
    let mut ui = vms_ui(80, 24, false, false);
    ui.keys("<enter>");
    assert_eq!(ui.state.vms.detail_of.as_deref(), Some("desktop"));
    detail(&mut ui);
    ui.act(Action::VmDone {
        op: "pause".into(),
        name: "desktop".into(),
        result: Ok(None),
    });
    snap("vm_detail_80x24", &ui.screen());
    let mut ui = vms_ui(120, 40, false, false);
    ui.keys("<enter>");
    detail(&mut ui);
    snap("vm_detail_120x40", &ui.screen());
    ui.keys("<esc>");
    assert!(ui.state.vms.detail_of.is_none());
    assert_eq!(ui.state.view, View::Vms);
}

#[test]
fn the_detail_of_an_invalid_definition() {
    let mut ui = vms_ui(80, 24, true, false);
    ui.keys("jj<enter>");
    ui.act(Action::VmDetailLoaded(Box::new(Detail {
        name: "broken".into(),
        spec: Err(rows()[2].error.clone().unwrap()),
        info: None,
        snapshots: Vec::new(),
        rescue: None,
    })));
    let screen = ui.screen();
    assert!(screen.is_ascii());
    snap("vm_detail_invalid_ascii_80x24", &screen);
}

#[test]
fn the_new_vm_form_with_problems_under_their_fields() {
    let mut ui = vms_ui(80, 24, false, false);
    // A name taken, a size that is not one, a kernel beside the firmware, a bad address.
    ui.keys("ndesktop<tab><tab><tab><backspace><backspace>2X<tab><tab><tab>/boot/vmlinuz");
    ui.keys("<tab><tab><tab>/var/lib/phyllome/images/dev.qcow2<tab><tab>0000:01:00.0, gpu");
    ui.keys("<enter>");
    let form = ui.state.vms.form.as_ref().expect("form");
    assert_eq!(form.focus, 0, "enter puts the cursor on the first problem");
    snap("vm_form_errors_80x24", &ui.screen());
    let mut ui2 = vms_ui(120, 40, false, false);
    ui2.keys("ndesktop<tab><tab><tab><backspace><backspace>2X<tab><tab><tab>/boot/vmlinuz<enter>");
    snap("vm_form_errors_120x40", &ui2.screen());
    // Esc asks before throwing the typing away.
    ui.keys("<esc>");
    snap("vm_form_discard_80x24", &ui.screen());
    ui.keys("<esc>");
    assert!(ui.state.vms.form.is_some());
}

#[test]
fn the_edit_form_opens_with_the_definition() {
    let mut ui = vms_ui(80, 24, true, false);
    ui.act(Action::VmEditLoaded(Box::new(Ok(
        phyllome::tui::vms::EditLoaded {
            name: "desktop".into(),
            spec: load(EXAMPLE_TOML, "desktop").unwrap(),
        },
    ))));
    let screen = ui.screen();
    assert!(screen.is_ascii(), "{screen}");
    snap("vm_form_edit_ascii_80x24", &screen);
}

#[test]
fn an_error_popup_lists_the_causes_outermost_first() {
    let mut ui = vms_ui(80, 24, false, false);
    ui.keys("jjjjs");
    ui.act(Action::VmDone {
        op: "start".into(),
        name: "router".into(),
        // As the worker builds it from the manager's error: CH's messages are its causes.
        result: Err(ActionError::from(&ManagerError::Vmm {
            name: "router".into(),
            source: VmmError::api(
                "vm.boot",
                500,
                vec![
                    "Error from API".into(),
                    "The VM could not boot".into(),
                    "Error booting VM: VmBoot(ConfigureSystem(RegisterConsole))".into(),
                    "Failed to open the tap device tap-router: No such device (os error 19)".into(),
                ],
            ),
        })),
    });
    snap("vm_error_popup_80x24", &ui.screen());
    ui.keys("<enter>");
    assert!(ui.state.vms.error.is_none());
    assert!(ui.screen().contains("start failed"));
}

#[test]
fn confirmations_for_force_off_and_reboot() {
    let mut ui = vms_ui(80, 24, false, false);
    ui.keys("Xdesk");
    snap("vm_confirm_force_off_80x24", &ui.screen());
    ui.keys("<esc>R");
    snap("vm_confirm_reboot_80x24", &ui.screen());
    ui.keys("<right><enter>");
    assert_eq!(
        ui.state.vms.pending.get("desktop").map(|p| p.verb()),
        Some("reset")
    );
}

#[test]
fn a_graceful_stop_counts_down_with_force_at_hand() {
    for (cols, rows) in [(80, 24), (120, 40)] {
        let mut ui = vms_ui(cols, rows, false, false);
        // desktop's grace period is 2m: 1m18s after the power button, 42s are left.
        ui.keys("x");
        let t0 = Instant::now();
        ui.act(Action::VmGraceStarted {
            name: "desktop".into(),
            at: t0,
        });
        ui.act(Action::VmTick(t0 + Duration::from_millis(78_300)));
        let screen = ui.screen();
        assert!(screen.contains("stopping 42s"), "{screen}");
        assert!(screen.contains("or now with X"), "{screen}");
        snap(&format!("vm_stopping_{cols}x{rows}"), &screen);
        ui.keys("<enter>");
        detail(&mut ui);
        let screen = ui.screen();
        assert!(screen.contains("X forces off now"), "{screen}");
        snap(&format!("vm_stopping_detail_{cols}x{rows}"), &screen);
        // The next second draws the next number.
        ui.act(Action::VmTick(t0 + Duration::from_millis(79_300)));
        assert!(ui.screen().contains("stopping 41s"));
    }
}

fn options(root: &std::path::Path) -> ConsoleOptions {
    ConsoleOptions {
        paths: HostPaths {
            host_root: root.join("host"),
            ch_bin: Some(root.join("no-cloud-hypervisor")),
            ..ui::console(root, root).paths
        },
        ..ui::console(root, root)
    }
}

fn key(name: &str) -> io::Result<Event> {
    Ok(ui::key(name))
}

#[tokio::test]
async fn the_loop_lists_definitions_and_saves_an_edit_keeping_comments() {
    let dir = tempfile::tempdir().unwrap();
    let vms = dir.path().join("state/vms");
    std::fs::create_dir_all(&vms).unwrap();
    std::fs::write(vms.join("desktop.toml"), EXAMPLE_TOML).unwrap();
    std::fs::write(vms.join("broken.toml"), "[memory]\nsize = \"2X\"\n").unwrap();
    // A save is checked against the host: an empty one here.
    std::fs::create_dir_all(dir.path().join("host")).unwrap();
    // 5: VMs; j: desktop; e: edit; memory becomes 8G; enter saves.
    let mut events = vec![key("5"), key("j"), key("e"), key("tab"), key("tab")];
    events.extend((0..3).map(|_| key("backspace")));
    events.extend([key("8"), key("G"), key("enter")]);
    let stream = ui::paced(events, Duration::from_millis(200))
        .chain(futures::stream::pending())
        .boxed();
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let opts = options(dir.path());
    let run = run_on(&mut terminal, stream, Keymap::defaults().unwrap(), &opts);
    // The stream never ends: the loop runs until the timeout, as it would for a user.
    let _ = tokio::time::timeout(Duration::from_secs(4), run).await;
    let screen = terminal.backend().to_string();
    assert!(screen.contains("desktop"), "{screen}");
    assert!(screen.contains("invalid"), "{screen}");
    assert!(screen.contains("desktop: saved"), "{screen}");
    let text = std::fs::read_to_string(vms.join("desktop.toml")).unwrap();
    assert!(text.contains("size = \"8G\""), "{text}");
    assert!(
        text.contains("# Start this VM when the host boots"),
        "{text}"
    );
    assert!(
        text.contains("boot = 8                 # vCPUs at boot"),
        "{text}"
    );
}
