//! The dashboard inside the console (`phyllome` with no arguments): opened with `6`, fed by
//! synthetic samples delivered as actions exactly as the sampling task delivers them, driven
//! through the keymap and `update` as a user would. Snapshots at 80x24, 120x40 and in ASCII.

use std::time::Duration;

use crossterm::event::{Event, KeyEvent};
use phyllome::monitor::synthetic::Synthetic;
use phyllome::tui::dashboard::{MonitorSample, SortKey};
use phyllome::tui::input::translate;
use phyllome::tui::state::Load;
use phyllome::tui::{update, view, Action, Effect, Keymap, State, Theme, View};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

struct Ui {
    state: State,
    keymap: Keymap,
    /// Every effect `update` returned, in order.
    effects: Vec<Effect>,
}

impl Ui {
    fn new(cols: u16, rows: u16, ascii: bool) -> Ui {
        let keymap = Keymap::defaults().expect("keymap");
        let mut state = State::new(&keymap, Theme::new(ascii, false), false, cols, rows);
        state.host_name = Some("tower".into());
        // The host was read long ago; the header's "reading..." would only add noise here.
        state.load = Load::Loaded;
        Ui {
            state,
            keymap,
            effects: Vec::new(),
        }
    }

    /// Types `keys`: single characters, or `<name>` for named keys.
    fn keys(&mut self, keys: &str) -> &mut Self {
        let mut rest = keys;
        while let Some(c) = rest.chars().next() {
            let (name, len) = match (c, rest.find('>')) {
                ('<', Some(end)) => (&rest[1..end], end + 1),
                _ => (&rest[..c.len_utf8()], c.len_utf8()),
            };
            rest = &rest[len..];
            let key: phyllome::tui::keymap::Key = name.parse().expect("key name");
            let ev = Event::Key(KeyEvent::new(key.code, key.mods));
            if let Some(action) = translate(&self.state, &self.keymap, &ev) {
                let out = update(&mut self.state, action);
                self.effects.extend(out);
            }
        }
        self
    }

    fn action_of(&self, key: &str) -> Option<Action> {
        let key: phyllome::tui::keymap::Key = key.parse().expect("key name");
        translate(
            &self.state,
            &self.keymap,
            &Event::Key(KeyEvent::new(key.code, key.mods)),
        )
    }

    /// `n` samples of `vms` synthetic VMs, as the sampling task sends them.
    fn feed(&mut self, vms: usize, n: usize) -> Vec<Effect> {
        let mut s = Synthetic::new(vms);
        let mut last = Vec::new();
        for _ in 0..n {
            let sample = MonitorSample(s.sample());
            last = update(&mut self.state, Action::MonitorSample(Box::new(sample)));
        }
        last
    }

    fn screen(&self) -> String {
        let mut t = Terminal::new(TestBackend::new(self.state.cols, self.state.rows)).unwrap();
        t.draw(|f| view::render(&self.state, f)).unwrap();
        t.backend().to_string()
    }
}

fn snap(name: &str, screen: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(format!("tui_console_dashboard_{name}"), screen));
}

#[test]
fn six_opens_the_dashboard_and_starts_sampling_once() {
    let mut ui = Ui::new(80, 24, false);
    assert!(!ui.state.monitor_started, "nothing sampled at start");
    ui.keys("6");
    assert_eq!(ui.state.view, View::Dashboard);
    assert_eq!(ui.effects, vec![Effect::StartMonitor]);
    ui.keys("1<F7>5<tab>");
    assert_eq!(ui.state.view, View::Dashboard);
    assert_eq!(
        ui.effects
            .iter()
            .filter(|e| **e == Effect::StartMonitor)
            .count(),
        1,
        "{:?}",
        ui.effects
    );
    assert!(ui.screen().contains("Sampling..."));
}

#[test]
fn samples_off_screen_feed_the_history_but_draw_nothing() {
    let mut ui = Ui::new(80, 24, false);
    ui.keys("6<tab>");
    assert_eq!(ui.state.view, View::Overview);
    assert_eq!(ui.feed(3, 5), vec![Effect::NoRedraw]);
    assert_eq!(ui.state.dash.model.vms.len(), 3);
    ui.keys("6");
    assert_eq!(ui.feed(3, 1), Vec::<Effect>::new(), "on screen: drawn");
}

#[test]
fn console_dashboard_at_80x24_120x40_and_ascii() {
    for (name, cols, rows, ascii) in [
        ("80x24", 80, 24, false),
        ("120x40", 120, 40, false),
        ("ascii_80x24", 80, 24, true),
    ] {
        let mut ui = Ui::new(cols, rows, ascii);
        ui.keys("6");
        ui.feed(8, 30);
        snap(name, &ui.screen());
    }
}

#[test]
fn s_sorts_here_and_starts_a_vm_on_the_vm_list() {
    let mut ui = Ui::new(80, 24, false);
    assert_eq!(
        ui.action_of("s"),
        Some(Action::VmStart),
        "overview: first binding"
    );
    ui.keys("5");
    assert_eq!(ui.action_of("s"), Some(Action::VmStart));
    ui.keys("6");
    assert_eq!(ui.action_of("s"), Some(Action::Sort));
    ui.feed(8, 10);
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
    let mut ui = Ui::new(80, 24, false);
    ui.keys("6");
    ui.feed(2, 3);
    ui.keys("+");
    assert_eq!(ui.state.dash.interval, Duration::from_secs(2));
    assert_eq!(
        ui.effects.last(),
        Some(&Effect::MonitorInterval(Duration::from_secs(2)))
    );
    ui.keys("--");
    assert_eq!(
        ui.effects.last(),
        Some(&Effect::MonitorInterval(Duration::from_millis(500)))
    );
    assert!(ui.screen().contains("every 0.5s"), "{}", ui.screen());
}

#[test]
fn filter_then_enter_opens_the_charts_and_esc_comes_back() {
    let mut ui = Ui::new(80, 24, false);
    ui.keys("6");
    ui.feed(8, 90);
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
    let mut ui = Ui::new(80, 24, false);
    ui.state = State::new(&keymap, Theme::new(false, false), true, 80, 24);
    ui.keymap = keymap;
    ui.keys("6");
    assert_eq!(ui.action_of("s"), Some(Action::Sort));
    ui.keys("5");
    // No VM actions in read-only mode: `s` means sort, which the VM list ignores.
    ui.keys("s");
    assert_eq!(ui.state.view, View::Vms);
}
