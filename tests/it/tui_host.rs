//! The Host view: opened by its keys, read in the background, drawn from a fixed status at
//! 80x24, 120x40 and on the Linux text console; its journal scrolls.

use std::time::Duration;

use phyllome::fixture::presets;
use phyllome::ops::host_status::{
    Address, Family, HostStatus, Journal, JournalLine, Link, Route, TimeStatus,
};
use phyllome::tui::{run_on, Action, Effect, Keymap, State, Theme, View};
use phyllome_widgets::Glyphs;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use crate::support;
use crate::support::ui::{self, Ui};
use futures::StreamExt;

fn addr(family: Family, address: &str, prefix: u8) -> Address {
    Address {
        family,
        address: address.into(),
        prefix,
    }
}

/// A host with a bond of sorts: a wired link with both families, a down link, a bridge for
/// VMs, and a journal of every priority.
pub fn fixed_status(journal_lines: usize) -> HostStatus {
    let link = |name: &str, state: &str, carrier: Option<bool>, mac: &str| Link {
        name: name.into(),
        state: state.into(),
        carrier,
        kind: Some("ether".into()),
        mac: Some(mac.into()),
        mtu: Some(1500),
        speed_mbps: None,
        addresses: Vec::new(),
    };
    let mut lo = link("lo", "unknown", Some(true), "00:00:00:00:00:00");
    lo.kind = Some("loopback".into());
    lo.mtu = Some(65536);
    lo.addresses = vec![
        addr(Family::Ipv4, "127.0.0.1", 8),
        addr(Family::Ipv6, "::1", 128),
    ];
    let mut eno1 = link("eno1", "up", Some(true), "3c:ec:ef:12:34:56");
    eno1.speed_mbps = Some(1000);
    eno1.addresses = vec![
        addr(Family::Ipv4, "192.168.1.20", 24),
        addr(Family::Ipv6, "2001:db8:1::20", 64),
        addr(Family::Ipv6, "fe80::3eec:efff:fe12:3456", 64),
    ];
    let eno2 = link("eno2", "down", None, "3c:ec:ef:12:34:57");
    let mut br0 = link("br-vms", "up", Some(true), "52:54:00:aa:bb:cc");
    br0.addresses = vec![addr(Family::Ipv4, "10.10.0.1", 24)];
    let messages = [
        (
            6,
            "systemd",
            "Started phyllome-console.service - phyllome console on tty1.",
        ),
        (
            4,
            "kernel",
            "vfio-pci 0000:0b:00.0: BAR 0: can't reserve [mem 0xe0000000-0xefffffff 64bit pref]",
        ),
        (
            3,
            "phyllome-vm-win11.service",
            "Failed with result 'exit-code'.",
        ),
        (
            7,
            "sshd",
            "debug1: server_input_channel_req: channel 0 request pty-req",
        ),
        (
            5,
            "kernel",
            "EXT4-fs (nvme0n1p2): mounted filesystem with ordered data mode.",
        ),
        (6, "chronyd", "Selected source 192.168.1.1"),
    ];
    let lines = (0..journal_lines)
        .map(|i| {
            let (priority, unit, message) = messages[i % messages.len()];
            JournalLine {
                time: Some(format!("2026-11-30T04:{:02}:{:02}Z", 10 + i / 60, i % 60)),
                unit: Some(unit.into()),
                priority: Some(priority),
                message: format!("{message} #{i}"),
            }
        })
        .collect();
    HostStatus {
        hostname: Some("tower".into()),
        kernel: Some("6.1.0-28-amd64".into()),
        uptime_seconds: Some(3 * 86_400 + 4 * 3600 + 5 * 60),
        load: Some([0.52, 0.58, 0.61]),
        links: vec![lo, eno1, eno2, br0],
        default_routes: vec![
            Route {
                family: Family::Ipv4,
                gateway: Some("192.168.1.1".into()),
                dev: Some("eno1".into()),
                metric: Some(100),
            },
            Route {
                family: Family::Ipv6,
                gateway: Some("fe80::1".into()),
                dev: Some("eno1".into()),
                metric: Some(1024),
            },
        ],
        time: TimeStatus {
            utc: "2026-11-30T04:47:27Z".into(),
            local: "2026-11-30T05:47:27+01:00".into(),
            zone: Some("Europe/Berlin".into()),
            ntp_synchronized: Some(true),
        },
        journal: Journal {
            available: true,
            reason: None,
            lines,
        },
        warnings: Vec::new(),
    }
}

fn host_view(cols: u16, rows: u16, theme: Theme, status: HostStatus) -> Ui {
    let keymap = Keymap::defaults().expect("keymap");
    let mut state = State::new(&keymap, theme, false, cols, rows);
    state.host_name = Some("tower".into());
    state.load = phyllome::tui::state::Load::Loaded;
    let mut ui = Ui::new(state, keymap);
    ui.keys("7");
    ui.act(Action::HostStatusLoaded(Box::new(Ok(status))));
    ui
}

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_host_{name}"), screen);
}

#[test]
fn seven_and_f8_open_the_host_view_and_read_it_in_the_background() {
    for key in ["7", "<F8>"] {
        let keymap = Keymap::defaults().unwrap();
        let state = State::new(&keymap, Theme::new(false, true), false, 80, 24);
        let mut ui = Ui::new(state, keymap);
        ui.keys(key);
        assert_eq!(ui.state.view, View::Host, "{key}");
        assert_eq!(ui.effects, vec![Effect::LoadHostStatus], "{key}");
        let screen = ui.screen();
        assert!(screen.contains("[Host]"), "{screen}");
        assert!(screen.contains("Reading the host's status..."), "{screen}");
        // The bar says how to scroll the journal.
        assert!(
            screen.lines().last().unwrap().contains("up/down journal"),
            "{screen}"
        );
    }
}

#[test]
fn the_key_is_in_the_help_and_in_a_wide_hint_bar() {
    let keymap = Keymap::defaults().unwrap();
    let state = State::new(&keymap, Theme::new(false, true), false, 160, 40);
    let mut ui = Ui::new(state, keymap);
    let bar = ui.screen().lines().last().unwrap().to_string();
    assert!(bar.contains("7 host status"), "{bar}");
    ui.keys("?");
    let screen = ui.screen();
    assert!(screen.contains("host status"), "{screen}");
    assert!(screen.contains("F8"), "{screen}");
}

#[test]
fn the_view_at_80x24_and_120x40() {
    for (cols, rows) in [(80, 24), (120, 40)] {
        let ui = host_view(cols, rows, Theme::new(false, true), fixed_status(40));
        snap(&format!("{cols}x{rows}"), &ui.screen());
    }
}

#[test]
fn the_view_on_the_linux_console() {
    let theme = Theme::with_glyphs(Glyphs::LINUX_CONSOLE, true);
    let ui = host_view(80, 24, theme, fixed_status(40));
    let screen = ui.screen();
    assert_eq!(
        crate::tui_linux_console::undrawable(&screen),
        Vec::<char>::new(),
        "{screen}"
    );
    snap("linux_80x24", &screen);
    let ascii = host_view(80, 24, Theme::new(true, false), fixed_status(40)).screen();
    assert!(ascii.is_ascii(), "{ascii}");
}

#[test]
fn the_journal_fits_the_height_and_scrolls_back() {
    let mut ui = host_view(80, 24, Theme::new(false, true), fixed_status(40));
    let rows = phyllome::tui::view::host::journal_rows(&ui.state);
    assert_eq!(rows, 8, "the journal gets the rows the status leaves");
    let screen = ui.screen();
    // The newest line is at the bottom; older ones are reached by scrolling.
    assert!(screen.contains("04:10:39"), "{screen}");
    assert!(screen.contains("04:10:32"), "{screen}");
    assert!(!screen.contains("04:10:31"), "{screen}");
    ui.keys("k");
    assert_eq!(ui.state.host.scroll, 1);
    let screen = ui.screen();
    assert!(!screen.contains("04:10:39"), "{screen}");
    assert!(screen.contains("04:10:31"), "{screen}");
    assert!(screen.contains("Journal (UTC), 1 lines back"), "{screen}");
    ui.keys("g");
    let screen = ui.screen();
    assert!(screen.contains("04:10:00"), "{screen}");
    assert!(!screen.contains("04:10:08"), "{screen}");
    // Scrolling stops at the oldest line.
    ui.keys("kk<pgup>");
    assert_eq!(ui.state.host.scroll, 40 - rows);
    ui.keys("G");
    assert_eq!(ui.state.host.scroll, 0);
    assert!(ui.screen().contains("04:10:39"));
}

#[test]
fn r_and_the_tick_read_again_one_read_at_a_time() {
    let mut ui = host_view(80, 24, Theme::new(false, true), fixed_status(3));
    ui.keys("r");
    assert!(
        ui.effects.contains(&Effect::LoadHostStatus),
        "{:?}",
        ui.effects
    );
    // A second `r` while that read runs starts nothing.
    ui.keys("r");
    assert!(!ui.effects.contains(&Effect::LoadHostStatus));
    // The same status again draws nothing.
    ui.act(Action::HostStatusLoaded(Box::new(Ok(fixed_status(3)))));
    assert_eq!(ui.effects, vec![Effect::NoRedraw]);
    let now = std::time::Instant::now();
    let mut reads = 0;
    for _ in 0..4 {
        ui.act(Action::VmTick(now));
        if ui.effects.contains(&Effect::LoadHostStatus) {
            reads += 1;
            ui.act(Action::HostStatusLoaded(Box::new(Ok(fixed_status(4)))));
        }
    }
    assert_eq!(reads, 2, "every other tick reads again");
    assert!(ui.screen().contains("04:10:03"));
    // Elsewhere the tick reads nothing.
    ui.keys("1");
    ui.act(Action::VmTick(now));
    assert!(!ui.effects.contains(&Effect::LoadHostStatus));
}

#[test]
fn a_failed_read_is_said_and_the_last_status_stays() {
    let mut ui = host_view(80, 24, Theme::new(false, true), fixed_status(3));
    ui.keys("r");
    ui.act(Action::HostStatusLoaded(Box::new(Err(
        "Host root /x is not a directory".into(),
    ))));
    let screen = ui.screen();
    assert!(screen.contains("tower"), "{screen}");
    assert!(screen.contains("refresh failed: Host root /x"), "{screen}");
    let keymap = Keymap::defaults().unwrap();
    let state = State::new(&keymap, Theme::new(false, true), false, 80, 24);
    let mut ui = Ui::new(state, keymap);
    ui.keys("7");
    ui.act(Action::HostStatusLoaded(Box::new(Err("boom".into()))));
    assert!(ui.screen().contains("Cannot read the host's status: boom"));
}

#[test]
fn a_host_without_a_journal_says_why() {
    let mut status = fixed_status(0);
    status.journal = Journal::unavailable("no journal files in /var/log/journal");
    status.warnings = vec!["load unknown: proc/loadavg is not readable".into()];
    status.load = None;
    status.time.ntp_synchronized = None;
    let screen = host_view(80, 24, Theme::new(false, true), status).screen();
    assert!(
        screen.contains("journal not available: no journal files in /var/log/journal"),
        "{screen}"
    );
    assert!(screen.contains("load unknown"), "{screen}");
    assert!(screen.contains("NTP unknown"), "{screen}");
}

/// The real loop on a fixture host: `7` opens the view and the background read fills it.
#[tokio::test]
async fn the_loop_reads_a_fixture_hosts_status() {
    let dir = tempfile::tempdir().unwrap();
    presets::desktop().write(dir.path()).unwrap();
    std::fs::write(
        dir.path().join("proc/sys/kernel/hostname"),
        "fixture-host\n",
    )
    .unwrap();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let stream = ui::paced(ui::typed("7"), Duration::from_millis(100)).chain(ui::pause(1500));
    let opts = ui::console(dir.path(), dir.path());
    run_on(&mut terminal, stream, Keymap::defaults().unwrap(), &opts)
        .await
        .unwrap();
    let screen = terminal.backend().to_string();
    assert!(screen.contains("[Host]"), "{screen}");
    assert!(screen.contains("fixture-host"), "{screen}");
    assert!(screen.contains("6.1.0-fixture"), "{screen}");
    assert!(screen.contains("journal not available"), "{screen}");
}

#[test]
fn a_host_with_many_links_says_what_did_not_fit_and_keeps_the_journal() {
    let mut status = fixed_status(10);
    for i in 0..20 {
        let mut l = status.links[2].clone();
        l.name = format!("tap{i}");
        status.links.push(l);
    }
    let ui = host_view(80, 24, Theme::new(true, false), status);
    let screen = ui.screen();
    assert!(
        screen.contains("more lines: phyllome host status"),
        "{screen}"
    );
    assert_eq!(phyllome::tui::view::host::journal_rows(&ui.state), 5);
    assert!(screen.contains("04:10:09"), "{screen}");
    assert!(screen.contains("04:10:05"), "{screen}");
    assert!(!screen.contains("04:10:04"), "{screen}");
}

/// The real binary on a terminal (a pty, `TERM=linux` as on tty1): `7` opens the Host view,
/// its background read fills it, `q` goes back and quits.
#[test]
fn the_binary_on_a_linux_console_opens_the_host_view() {
    use crate::support::pty::{wait_exit, Pty};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    presets::desktop().write(&root).unwrap();
    std::fs::write(root.join("proc/sys/kernel/hostname"), "pty-host\n").unwrap();
    let mut pty = Pty::open();
    let slave = pty.slave();
    let mut child = Command::new(env!("CARGO_BIN_EXE_phyllome"))
        .arg("--host-root")
        .arg(&root)
        .args(["--size", "80x24", "--log"])
        .arg(dir.path().join("console.log"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .env("TERM", "linux")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    pty.wait_for("GPU passthrough");
    pty.send(b"7");
    pty.wait_for("[Host]");
    pty.wait_for("6.1.0-fixture");
    let seen = pty.wait_for("journal not available");
    assert!(seen.contains("pty-host"), "{seen}");
    pty.send(b"q");
    pty.send(b"q");
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
}
