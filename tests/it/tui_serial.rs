//! The console's serial pane: snapshots of a guest that prints (boot text, colours and every
//! hostile sequence) at 80x24, 120x40 and in ASCII; keys and the detach key; scrollback and
//! resize; and the real loop attached to the test double's guest through its keeper.

use std::io::Write;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures::StreamExt;
use phyllome::serial::attach::Role;
use phyllome::tui::serial::PaneMode;
use phyllome::tui::vms::VmRow;
use phyllome::tui::{run_on, Action, Effect, Keymap};
use phyllome::vmm::manager::RunState;
use ratatui::backend::{CrosstermBackend, TestBackend};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

use crate::support;
use crate::support::cli::Cli;
use crate::support::ui::{self, Ui};

/// What the test guest prints: a boot, a coloured status, then every kind of sequence that
/// must not reach the host's terminal (clipboard, title, queries, DCS, 8-bit C1, mouse mode).
const GUEST: &[u8] = b"Linux version 6.1.0 (guest) #1 SMP\r\n\
[  OK  ] Started \x1b[1;32mnetworking\x1b[0m.\r\n\
hostile-begin\x1b]52;c;cm0gLXJmIC8K\x07\x1b]0;owned-title\x1b\\\x1b[6n\x1b[c\x1b[21t\
\x1bP1$qm\x1b\\\x9b6n\xc2\x9d0;x\x07\x1b[?1000h\x1b[31mred\x1b[0m hostile-end\r\n\
web login: ";

fn pane_ui(cols: u16, rows: u16, ascii: bool, read_only: bool) -> Ui {
    let web = VmRow {
        uptime_secs: Some(3600),
        nets: 1,
        ..ui::vm_row("web", RunState::Running)
    };
    let mut ui = ui::vms_view(cols, rows, ascii, read_only, vec![web]);
    ui.keys("c");
    assert_eq!(
        ui.effects,
        [Effect::SerialOpen {
            vm: "web".into(),
            mode: PaneMode::Console
        }]
    );
    ui
}

fn attach(ui: &mut Ui, role: Role) {
    ui.act(Action::SerialAttached {
        vm: "web".into(),
        role,
        direct: false,
    });
    ui.act(Action::SerialOutput {
        vm: "web".into(),
        bytes: GUEST.to_vec(),
    });
}

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_{name}"), screen);
}

/// A writer whose bytes the test keeps.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bytes the console would write to the host's terminal for the current state.
fn terminal_stream(ui: &Ui) -> Vec<u8> {
    let (cols, rows) = (ui.state.cols, ui.state.rows);
    let out = Shared::default();
    let backend = CrosstermBackend::new(out.clone());
    let mut t = Terminal::with_options(
        backend,
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, cols, rows)),
        },
    )
    .unwrap();
    t.draw(|f| phyllome::tui::view::render(&ui.state, f))
        .unwrap();
    let bytes = out.0.lock().unwrap().clone();
    bytes
}

#[test]
fn the_pane_at_80x24_and_120x40() {
    for (cols, rows) in [(80, 24), (120, 40)] {
        let mut ui = pane_ui(cols, rows, false, false);
        attach(&mut ui, Role::Keys);
        let screen = ui.screen();
        assert!(screen.contains("Ctrl+] detach"), "{screen}");
        assert!(screen.contains("networking") && screen.contains("hostile-end"));
        assert!(!screen.contains("owned-title"), "{screen}");
        snap(&format!("serial_pane_{cols}x{rows}"), &screen);
    }
}

#[test]
fn the_pane_in_ascii_is_pure_ascii() {
    let mut ui = pane_ui(80, 24, true, false);
    attach(&mut ui, Role::Keys);
    ui.act(Action::SerialOutput {
        vm: "web".into(),
        bytes: "\r\nunicode: é ✓ 漢\r\n".as_bytes().to_vec(),
    });
    let screen = ui.screen();
    assert!(screen.is_ascii(), "{screen}");
    snap("serial_pane_ascii_80x24", &screen);
}

#[test]
fn nothing_the_guest_prints_reaches_the_host_terminal_as_a_sequence() {
    let mut ui = pane_ui(80, 24, false, false);
    attach(&mut ui, Role::Keys);
    let stream = terminal_stream(&ui);
    for bad in [
        &b"\x1b]"[..],
        b"\x1bP",
        b"\x1b[6n",
        b"\x1b[c",
        b"\x1b[21t",
        b"\x1b[?1000h",
        b"\x9b",
        b"\x07",
        b"owned-title",
    ] {
        assert!(
            !stream.windows(bad.len()).any(|w| w == bad),
            "{bad:?} reached the terminal"
        );
    }
    // The guest's text and colours do, redrawn by ratatui.
    let text = String::from_utf8_lossy(&stream);
    assert!(text.contains("hostile-end") && text.contains("networking"));
    // Every cell holds printable text only.
    let buf = ui.buffer();
    for cell in buf.content() {
        assert!(!cell.symbol().chars().any(char::is_control), "{cell:?}");
    }
}

#[test]
fn keys_go_to_the_guest_and_ctrl_bracket_detaches() {
    let mut ui = pane_ui(80, 24, false, false);
    attach(&mut ui, Role::Keys);
    ui.all_effects.clear();
    ui.keys("ls<enter>");
    let ctrl = |c| Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
    for ev in [ctrl('c'), ctrl('d')] {
        let a = phyllome::tui::input::translate(&ui.state, &ui.keymap, &ev).unwrap();
        ui.act(a);
    }
    let sent: Vec<Vec<u8>> = ui
        .all_effects
        .iter()
        .filter_map(|e| match e {
            Effect::SerialSend(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [
            b"l".to_vec(),
            b"s".to_vec(),
            b"\r".to_vec(),
            vec![3],
            vec![4]
        ]
    );
    assert!(!ui.state.quit, "Ctrl+C is the guest's");
    let a = phyllome::tui::input::translate(&ui.state, &ui.keymap, &ctrl(']')).unwrap();
    ui.act(a);
    assert!(ui.state.serial.is_none());
    assert_eq!(ui.effects, [Effect::SerialClose]);
    // Back on the VM list.
    assert!(ui.screen().contains("web"));
}

/// Whether any key went to the guest.
fn sent_anything(ui: &Ui) -> bool {
    ui.all_effects
        .iter()
        .any(|e| matches!(e, Effect::SerialSend(_)))
}

#[test]
fn a_watcher_and_a_read_only_console_send_nothing() {
    let mut ui = pane_ui(80, 24, false, false);
    attach(&mut ui, Role::Watch);
    ui.keys("ls<enter>");
    assert!(!sent_anything(&ui));
    assert!(ui.screen().contains("watching: another viewer types"));
    snap("serial_pane_watching_80x24", &ui.screen());

    let mut ui = pane_ui(80, 24, false, true);
    attach(&mut ui, Role::Keys);
    ui.keys("ls<enter>");
    assert!(!sent_anything(&ui));
    assert!(ui.screen().contains("read-only console: watching"));
}

#[test]
fn scrollback_resize_and_the_log_view() {
    let mut ui = pane_ui(80, 24, false, false);
    attach(&mut ui, Role::Keys);
    let lines: String = (0..100).map(|i| format!("boot line {i}\r\n")).collect();
    ui.act(Action::SerialOutput {
        vm: "web".into(),
        bytes: lines.into_bytes(),
    });
    assert!(ui.screen().contains("boot line 99"));
    ui.keys("<shift-pgup>");
    let screen = ui.screen();
    assert!(!screen.contains("boot line 99"), "{screen}");
    assert!(screen.contains("lines back"), "{screen}");
    // Typing brings the live screen back.
    ui.keys("x");
    assert!(ui.screen().contains("boot line 99"));
    // The pane follows the console's size; the guest keeps its own (no size on serial).
    ui.act(Action::Resize {
        cols: 120,
        rows: 40,
    });
    assert!(ui.screen().contains("118x35, stty rows 35 cols 118"));
    ui.keys("<ctrl-]>");
    ui.keys("L");
    assert_eq!(
        ui.effects,
        [Effect::SerialOpen {
            vm: "web".into(),
            mode: PaneMode::Log
        }]
    );
    ui.act(Action::SerialClosed {
        vm: "web".into(),
        reason: "VM web has no serial log yet".into(),
    });
    snap("serial_log_none_80x24", &{
        ui.act(Action::Resize { cols: 80, rows: 24 });
        ui.screen()
    });
    ui.keys("q");
    assert!(ui.state.serial.is_none());
}

/// VM `web` running on the double, its guest printing.
fn web_running() -> Cli {
    let cli = Cli::double();
    let kernel = cli.fake_kernel();
    cli.define_toml(
        "web",
        &format!("[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n[boot]\nkernel = {kernel:?}\n"),
    );
    cli.ok(&["vm", "start", "web"]);
    cli
}

/// The real loop, attached through the keeper to the double's guest: its boot banner shows,
/// typed keys come back echoed, Ctrl+] leaves with the VM still running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_attaches_to_a_running_vm_and_detaches() {
    let cli = web_running();
    let open = ui::paced(ui::typed("5c"), Duration::from_millis(300));
    // Typed at once, so the guest's heartbeat does not land between the echoed keys.
    let keys = ui::paced(ui::typed("echo-me<enter>"), Duration::from_millis(1));
    let detach = ui::paced(ui::typed("<ctrl-]>"), Duration::from_millis(1500));
    let stream = open
        .chain(ui::paced(Vec::new(), Duration::ZERO))
        .chain(
            futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(500)).await;
            })
            .filter_map(|_| async { None }),
        )
        .chain(keys)
        .chain(detach)
        .chain(futures::stream::pending())
        .boxed();
    let mut opts = ui::console(cli.path(), cli.path());
    opts.paths.ch_bin = cli.ch_bin.clone();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let run = run_on(&mut terminal, stream, Keymap::defaults().unwrap(), &opts);
    let _ = tokio::time::timeout(Duration::from_secs(5), run).await;
    let screen = terminal.backend().to_string();
    // After Ctrl+]: the VM list again, the VM still running.
    assert!(
        screen.contains("web") && screen.contains("Running"),
        "{screen}"
    );
    let log = std::fs::read_to_string(cli.state.join("serial/web.log")).unwrap();
    assert!(log.contains("echo-me"), "the keys reached the guest: {log}");
}

/// Keys whose ESC came alone, as a serial line splits them, reach the guest as the bytes the
/// terminal sent once the escape stage put them back together (Down, Shift-Tab).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_arrow_reaches_the_guest_as_its_bytes() {
    let cli = web_running();
    let open = ui::paced(ui::typed("5c"), Duration::from_millis(300));
    // crossterm's events for `x ESC [ B ESC [ Z y` when each ESC was read alone.
    let mut split = ui::typed("x");
    for last in ['B', 'Z'] {
        split.extend(ui::typed("<esc>["));
        split.push(Ok(Event::Key(KeyEvent::new(
            KeyCode::Char(last),
            KeyModifiers::SHIFT,
        ))));
    }
    split.extend(ui::typed("y<enter>"));
    let keys = ui::paced(split, Duration::from_millis(1));
    let stream = open
        .chain(
            futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(500)).await;
            })
            .filter_map(|_| async { None }),
        )
        .chain(keys)
        .chain(futures::stream::pending())
        .boxed();
    let mut opts = ui::console(cli.path(), cli.path());
    opts.paths.ch_bin = cli.ch_bin.clone();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let run = run_on(&mut terminal, stream, Keymap::defaults().unwrap(), &opts);
    let _ = tokio::time::timeout(Duration::from_secs(3), run).await;
    let log = std::fs::read(cli.state.join("serial/web.log")).unwrap();
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("x\x1b[B\x1b[Zy"), "the guest echoed {log:?}");
}
