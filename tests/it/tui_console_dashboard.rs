//! The dashboard inside the console (`phyllome` with no arguments): opened with `6`, fed by
//! synthetic samples delivered as actions exactly as the sampling task delivers them, driven
//! through the keymap and `update` as a user would. Snapshots at 80x24, 120x40 and in ASCII.

use crate::support;
use crate::support::ui::Ui;

use std::time::Duration;

use phyllome::monitor::dashboard::SortKey;
use phyllome::monitor::synthetic::Synthetic;
use phyllome::tui::action::MonitorSample;
use phyllome::tui::state::Load;
use phyllome::tui::{update, Action, Effect, Keymap, State, Theme, View};

/// The console at the overview, its host read long ago.
fn dashboard_ui(cols: u16, rows: u16, ascii: bool) -> Ui {
    let keymap = Keymap::defaults().expect("keymap");
    let mut state = State::new(&keymap, Theme::new(ascii, false), false, cols, rows);
    state.host_name = Some("tower".into());
    // The host was read long ago; the header's "reading..." would only add noise here.
    state.load = Load::Loaded;
    Ui::new(state, keymap)
}

/// `n` samples of `vms` synthetic VMs, as the sampling task sends them; the effects of the
/// last one.
fn feed(ui: &mut Ui, vms: usize, n: usize) -> Vec<Effect> {
    let mut s = Synthetic::new(vms);
    let mut last = Vec::new();
    for _ in 0..n {
        let sample = MonitorSample(s.sample());
        last = update(&mut ui.state, Action::MonitorSample(Box::new(sample)));
    }
    last
}

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_console_dashboard_{name}"), screen);
}

#[test]
fn six_opens_the_dashboard_and_starts_sampling_once() {
    let mut ui = dashboard_ui(80, 24, false);
    assert!(!ui.state.monitor_started, "nothing sampled at start");
    ui.keys("6");
    assert_eq!(ui.state.view, View::Dashboard);
    assert_eq!(ui.all_effects, vec![Effect::StartMonitor]);
    ui.keys("1<F7>5<tab>");
    assert_eq!(ui.state.view, View::Dashboard);
    assert_eq!(
        ui.all_effects
            .iter()
            .filter(|e| **e == Effect::StartMonitor)
            .count(),
        1,
        "{:?}",
        ui.all_effects
    );
    assert!(ui.screen().contains("Sampling..."));
}

#[test]
fn samples_off_screen_feed_the_history_but_draw_nothing() {
    let mut ui = dashboard_ui(80, 24, false);
    ui.keys("6<tab>");
    assert_eq!(ui.state.view, View::Host);
    assert_eq!(feed(&mut ui, 3, 5), vec![Effect::NoRedraw]);
    assert_eq!(ui.state.dash.model.vms.len(), 3);
    ui.keys("6");
    assert_eq!(
        feed(&mut ui, 3, 1),
        Vec::<Effect>::new(),
        "on screen: drawn"
    );
}

#[test]
fn console_dashboard_at_80x24_120x40_and_ascii() {
    for (name, cols, rows, ascii) in [
        ("80x24", 80, 24, false),
        ("120x40", 120, 40, false),
        ("ascii_80x24", 80, 24, true),
    ] {
        let mut ui = dashboard_ui(cols, rows, ascii);
        ui.keys("6");
        feed(&mut ui, 8, 30);
        snap(name, &ui.screen());
    }
}

#[test]
fn s_sorts_here_and_starts_a_vm_on_the_vm_list() {
    let mut ui = dashboard_ui(80, 24, false);
    assert_eq!(
        ui.action_of("s"),
        Some(Action::VmStart),
        "overview: first binding"
    );
    ui.keys("5");
    assert_eq!(ui.action_of("s"), Some(Action::VmStart));
    ui.keys("6");
    assert_eq!(ui.action_of("s"), Some(Action::Sort));
    feed(&mut ui, 8, 10);
    ui.keys("s");
    assert_eq!(ui.state.dash.sort, SortKey::Cpu);
    let cpu: Vec<f64> = ui
        .state
        .dash
        .rows("")
        .iter()
        .map(|h| h.stats.cpu_percent.unwrap_or(-1.0))
        .collect();
    assert!(cpu.windows(2).all(|w| w[0] >= w[1]), "{cpu:?}");
    assert!(ui.screen().contains("sort cpu"));
}

#[test]
fn plus_and_minus_change_the_interval_through_an_effect() {
    let mut ui = dashboard_ui(80, 24, false);
    ui.keys("6");
    feed(&mut ui, 2, 3);
    ui.keys("+");
    assert_eq!(ui.state.dash.interval, Duration::from_secs(2));
    assert_eq!(
        ui.all_effects.last(),
        Some(&Effect::MonitorInterval(Duration::from_secs(2)))
    );
    ui.keys("--");
    assert_eq!(
        ui.all_effects.last(),
        Some(&Effect::MonitorInterval(Duration::from_millis(500)))
    );
    assert!(ui.screen().contains("every 0.5s"), "{}", ui.screen());
}

#[test]
fn filter_then_enter_opens_the_charts_and_esc_comes_back() {
    let mut ui = dashboard_ui(80, 24, false);
    ui.keys("6");
    feed(&mut ui, 8, 90);
    ui.keys("/web<enter>");
    assert_eq!(ui.state.dash.rows(&ui.state.filter.text).len(), 2);
    snap("filtered_80x24", &ui.screen());
    ui.keys("j<enter>");
    assert_eq!(ui.state.dash.detail.as_deref(), Some("web-2"));
    let charts = ui.screen();
    assert!(charts.contains("web-2"), "{charts}");
    snap("charts_80x24", &charts);
    // Cursor keys do nothing under the charts; esc leaves them, then clears the filter.
    ui.keys("k<esc>");
    assert_eq!(ui.state.dash.detail, None);
    assert_eq!(ui.state.view, View::Dashboard);
    ui.keys("<esc>");
    assert!(ui.state.filter.text.is_empty());
    ui.keys("<esc>");
    assert_eq!(ui.state.view, View::Overview);
}

#[test]
fn read_only_still_sorts() {
    let keymap = Keymap::load(None, true).expect("keymap");
    let mut ui = dashboard_ui(80, 24, false);
    ui.state = State::new(&keymap, Theme::new(false, false), true, 80, 24);
    ui.keymap = keymap;
    ui.keys("6");
    assert_eq!(ui.action_of("s"), Some(Action::Sort));
    ui.keys("5");
    // No VM actions in read-only mode: `s` means sort, which the VM list ignores.
    ui.keys("s");
    assert_eq!(ui.state.view, View::Vms);
}
