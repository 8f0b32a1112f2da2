//! The console's "Shut down or restart" (F12): the popup naming the running VMs, the choice,
//! the live progress and the failures, key by key (snapshots at 80x24 with the Linux
//! console's glyphs, as tty1 of the host draws them); and the loop on VMs of the test double
//! with a stand-in logind, which ends for the power-off only once every VMM is gone.

use std::time::Duration;

use futures::StreamExt;
use phyllome::ops::power::{PlannedVm, PowerAction, Progress, Stopped};
use phyllome::tui::{run_until, Action, Effect, Exit, Keymap, State, Theme};
use phyllome::vmm::manager::RunState;
use phyllome::vmm::worker::ActionError;
use phyllome_widgets::Glyphs;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::support::cli::Cli;
use crate::support::fake_logind::{Answers, FakeLogind};
use crate::support::fake_systemd::{self, Bus};
use crate::support::ui::{self, vm_row, Ui};
use crate::support::{snap, EnvLock};

fn planned(name: &str, secs: u64) -> PlannedVm {
    PlannedVm {
        name: name.into(),
        state: "Running".into(),
        stop_timeout_secs: secs,
    }
}

/// The VMs view on the Linux console's glyphs, two VMs running, one stopped.
fn console(read_only: bool) -> Ui {
    let keymap = Keymap::load(None, read_only).expect("keymap");
    let theme = Theme::with_glyphs(Glyphs::LINUX_CONSOLE, false);
    let mut state = State::new(&keymap, theme, read_only, 80, 24);
    state.host_name = Some("tower".into());
    state.load = phyllome::tui::state::Load::Loaded;
    phyllome::tui::update(&mut state, Action::ViewVms);
    phyllome::tui::update(
        &mut state,
        Action::VmsLoaded(Ok(vec![
            vm_row("win11", RunState::Running),
            vm_row("builder", RunState::Paused),
            vm_row("old", RunState::Stopped),
        ])),
    );
    Ui::new(state, keymap)
}

fn opened() -> Ui {
    let mut ui = console(false);
    ui.keys("<F12>");
    assert_eq!(ui.effects, vec![Effect::PowerPlan]);
    ui.act(Action::PowerPlanned(Ok(vec![
        planned("win11", 120),
        PlannedVm {
            state: "Paused".into(),
            ..planned("builder", 60)
        },
    ])));
    ui
}

fn linux_drawable(screen: &str) {
    let bad = crate::tui_linux_console::undrawable(screen);
    assert!(bad.is_empty(), "not in code page 437: {bad:?}\n{screen}");
}

#[test]
fn f12_names_the_running_vms_and_cancel_is_the_default() {
    let mut ui = opened();
    let screen = ui.screen();
    linux_drawable(&screen);
    snap("tui_power_choose_80x24_linux", &screen);
    // Enter on Cancel: nothing is done.
    ui.keys("<enter>");
    assert!(ui.state.power.is_none());
    assert!(ui.effects.is_empty(), "{:?}", ui.effects);
}

#[test]
fn enter_before_the_list_arrives_does_nothing() {
    let mut ui = console(false);
    ui.keys("<F12>");
    assert!(ui.screen().contains("Looking for running VMs"));
    ui.keys("<left><left><enter>");
    assert!(ui.effects.is_empty(), "{:?}", ui.effects);
    // Esc closes it.
    ui.keys("<esc>");
    assert!(ui.state.power.is_none());
}

#[test]
fn power_off_shows_each_vm_stop_then_hands_over_to_logind() {
    let mut ui = opened();
    ui.keys("<left><left><enter>");
    assert_eq!(ui.effects, vec![Effect::PowerStop(PowerAction::PowerOff)]);
    // Keys do nothing now, Ctrl-C included: nothing can be taken back.
    ui.keys("<esc>q<ctrl-c>");
    assert!(ui.state.power.is_some() && !ui.state.quit);
    assert!(ui.effects.is_empty(), "{:?}", ui.effects);
    ui.act(Action::PowerProgress(Progress::Stopping {
        vm: "win11".into(),
        grace: Duration::from_secs(120),
    }));
    ui.act(Action::PowerProgress(Progress::Stopped {
        vm: "win11".into(),
        how: Stopped::PoweredOff,
    }));
    ui.act(Action::PowerProgress(Progress::Stopping {
        vm: "builder".into(),
        grace: Duration::from_secs(60),
    }));
    ui.act(Action::PowerProgress(Progress::Forcing {
        vm: "builder".into(),
        why: "VM builder: the VMM did not answer within 5s".into(),
    }));
    let screen = ui.screen();
    linux_drawable(&screen);
    snap("tui_power_progress_80x24_linux", &screen);
    ui.act(Action::PowerProgress(Progress::Stopped {
        vm: "builder".into(),
        how: Stopped::Forced,
    }));
    ui.act(Action::PowerStopped(PowerAction::PowerOff));
    assert_eq!(ui.effects, vec![Effect::PowerCall(PowerAction::PowerOff)]);
    let screen = ui.screen();
    snap("tui_power_calling_80x24_linux", &screen);
}

#[test]
fn reboot_is_the_middle_button() {
    let mut ui = opened();
    ui.keys("<left><enter>");
    assert_eq!(ui.effects, vec![Effect::PowerStop(PowerAction::Reboot)]);
    assert!(ui.screen().contains("Rebooting"));
}

#[test]
fn a_failure_closes_it_into_the_error_popup_with_its_causes() {
    let mut ui = opened();
    ui.keys("<left><left><enter>");
    ui.act(Action::PowerFailed {
        action: PowerAction::PowerOff,
        error: ActionError {
            message: "VM win11 did not stop, even forced off; the host was not powered off".into(),
            causes: vec!["The VMM of VM win11 (pid 4242) still runs after SIGKILL".into()],
        },
    });
    assert!(ui.state.power.is_none());
    let screen = ui.screen();
    linux_drawable(&screen);
    snap("tui_power_failed_80x24_linux", &screen);
    ui.keys("<enter>");
    assert!(ui.state.vms.error.is_none());
}

#[test]
fn read_only_has_no_f12() {
    let mut ui = console(true);
    assert_eq!(ui.action_of("F12"), None);
    ui.act(Action::HostPower);
    assert!(ui.state.power.is_none() && ui.effects.is_empty());
    ui.keys("?");
    assert!(!ui.screen().contains("shut down or restart"));
    let ui = console(false).keys("?").screen();
    assert!(
        ui.contains("F12") && ui.contains("shut down or restart the host"),
        "{ui}"
    );
    let ui = console(false);
    assert_eq!(ui.action_of("F12"), Some(Action::HostPower));
}

/// The real loop: F12, Power off, Enter; the VMs of `cli` stop in the background.
async fn drive(cli: &Cli, bus: &str) -> (eyre::Result<Exit>, String) {
    let mut env = EnvLock::take();
    env.set("PHYLLOME_LOGIND_BUS", bus);
    env.set("PHYLLOME_SUPERVISOR", "process");
    let keys = ui::paced(ui::typed("5<F12>"), Duration::from_millis(300))
        .chain(ui::paced(
            ui::typed("<left><left><enter>"),
            Duration::from_millis(700),
        ))
        .chain(ui::pause(15_000))
        .boxed();
    let mut options = ui::console(cli.path(), cli.path());
    options.paths.ch_bin = cli.ch_bin.clone();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let keymap = Keymap::defaults().unwrap();
    let monitor = phyllome::monitor::MonitorConfig::default();
    let r = run_until(&mut terminal, keys, keymap, &options, &monitor, Vec::new()).await;
    drop(env);
    (r, terminal.backend().to_string())
}

fn start(cli: &Cli, name: &str) -> u32 {
    let kernel = cli.fake_kernel();
    cli.define_toml(
        name,
        &format!("[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n[boot]\nkernel = {kernel:?}\n"),
    );
    cli.ok(&["vm", "start", name]);
    crate::support::vmm::double::vmm_pid(&cli.run, name).expect("pidfile")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_ends_for_the_power_off_only_once_every_vmm_is_gone() {
    let Some(bus) = Bus::start() else {
        fake_systemd::skip_without_dbus("tui_power");
        return;
    };
    let logind = FakeLogind::serve(&bus.address, Answers::default());
    let cli = Cli::double();
    let pids = [start(&cli, "web"), start(&cli, "db")];
    let (r, screen) = drive(&cli, &bus.address).await;
    assert_eq!(r.unwrap(), Exit::Power(PowerAction::PowerOff), "{screen}");
    for pid in pids {
        assert!(!phyllome::vmm::launch::pid_running(pid), "VMM {pid} runs");
    }
    assert!(screen.contains("Every VM is stopped"), "{screen}");
    // logind was asked whether it would; the call itself waits for the terminal.
    let calls: Vec<String> = logind.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(calls, ["CanPowerOff"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_logind_the_console_stays_and_the_vm_runs() {
    let Some(bus) = Bus::start() else {
        fake_systemd::skip_without_dbus("tui_power");
        return;
    };
    let cli = Cli::double();
    let pid = start(&cli, "web");
    let (r, screen) = drive(&cli, &bus.address).await;
    assert_eq!(r.unwrap(), Exit::Quit, "{screen}");
    assert!(
        phyllome::vmm::launch::pid_running(pid),
        "the VM was stopped"
    );
    assert!(screen.contains("Cannot power off the host"), "{screen}");
    assert!(screen.contains("Cannot reach logind"), "{screen}");
}

#[test]
fn with_many_vms_the_buttons_and_the_newest_steps_still_show_at_80x24() {
    let mut ui = console(false);
    ui.keys("<F12>");
    let names: Vec<String> = (0..30).map(|i| format!("vm{i:02}")).collect();
    ui.act(Action::PowerPlanned(Ok(names
        .iter()
        .map(|n| planned(n, 30))
        .collect())));
    let screen = ui.screen();
    assert!(
        screen.contains("Power off") && screen.contains("Cancel"),
        "{screen}"
    );
    assert!(screen.contains("left/right: choose"), "{screen}");
    assert!(screen.contains("more"), "{screen}");
    assert!(!screen.contains("vm29"), "{screen}");
    snap("tui_power_many_vms_80x24_linux", &screen);
    ui.keys("<left><left><enter>");
    for n in &names {
        ui.act(Action::PowerProgress(Progress::Stopping {
            vm: n.clone(),
            grace: Duration::from_secs(30),
        }));
        ui.act(Action::PowerProgress(Progress::Stopped {
            vm: n.clone(),
            how: Stopped::PoweredOff,
        }));
    }
    let screen = ui.screen();
    assert!(screen.contains("vm29"), "the newest step is cut:\n{screen}");
    assert!(screen.contains("lines above"), "{screen}");
    assert!(!screen.contains("vm00"), "{screen}");
}
