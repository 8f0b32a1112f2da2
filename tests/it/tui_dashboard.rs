//! `phyllome top`: the console's loop opened on the dashboard alone, with deterministic data
//! (`monitor::synthetic`). Keys go through the keymap and `update` as in the loop; the
//! dashboard and one VM's charts are snapshotted at 80x24 and 120x40, Unicode and ASCII.

use crate::support;

use std::io;
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures::StreamExt;
use phyllome::monitor::dashboard::{Dashboard, SortKey};
use phyllome::monitor::synthetic::Synthetic;
use phyllome::term::TermProfile;
use phyllome::tui::action::MonitorSample;
use phyllome::tui::input::translate;
use phyllome::tui::{run_on, update, view, Action, ConsoleOptions, Effect, Keymap, State, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

struct Top {
    state: State,
    keymap: Keymap,
}

impl Top {
    /// `vms` synthetic VMs, `samples` samples of them delivered as the sampling task does.
    fn new(vms: usize, samples: usize) -> Top {
        let keymap = Keymap::defaults().expect("keymap");
        let mut state = State::new(&keymap, Theme::new(false, false), true, 80, 24);
        state.open_top(&keymap);
        state.dash = Dashboard::new(600, Duration::from_secs(1), false);
        let mut s = Synthetic::new(vms);
        for _ in 0..samples {
            update(
                &mut state,
                Action::MonitorSample(Box::new(MonitorSample(s.sample()))),
            );
        }
        Top { state, keymap }
    }

    /// Types `keys` (single characters, or `<name>` for named keys); the effects of the last.
    fn keys(&mut self, keys: &str) -> Vec<Effect> {
        let mut rest = keys;
        let mut last = Vec::new();
        while let Some(c) = rest.chars().next() {
            let (name, len) = match (c, rest.find('>')) {
                ('<', Some(end)) => (&rest[1..end], end + 1),
                _ => (&rest[..c.len_utf8()], c.len_utf8()),
            };
            rest = &rest[len..];
            let key: phyllome::tui::keymap::Key = name.parse().expect("key name");
            let ev = Event::Key(KeyEvent::new(key.code, key.mods));
            last = match translate(&self.state, &self.keymap, &ev) {
                Some(action) => update(&mut self.state, action),
                None => Vec::new(),
            };
        }
        last
    }

    fn draw(&mut self, ascii: bool, cols: u16, rows: u16) -> String {
        self.state.theme = Theme::new(ascii, false);
        self.state.cols = cols;
        self.state.rows = rows;
        let mut t = Terminal::new(TestBackend::new(cols, rows)).unwrap();
        t.draw(|f| view::render(&self.state, f)).unwrap();
        t.backend().to_string()
    }
}

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_dashboard_{name}"), screen);
}

#[test]
fn dashboard_at_80x24_and_120x40() {
    let mut top = Top::new(8, 30);
    snap("80x24", &top.draw(false, 80, 24));
    snap("120x40", &top.draw(false, 120, 40));
    snap("ascii_80x24", &top.draw(true, 80, 24));
}

#[test]
fn dashboard_sorted_filtered_and_low_bandwidth() {
    let mut top = Top::new(8, 30);
    assert_eq!(top.keys("s"), Vec::<Effect>::new());
    assert_eq!(top.state.dash.sort, SortKey::Cpu);
    let rows = top.state.dash.rows("");
    let cpu: Vec<f64> = rows
        .iter()
        .map(|h| h.stats.cpu_percent.unwrap_or(-1.0))
        .collect();
    assert!(
        cpu.windows(2).all(|w| w[0] >= w[1]),
        "sorted by CPU: {cpu:?}"
    );
    top.keys("/web<enter>");
    assert_eq!(top.state.dash.rows(&top.state.filter.text).len(), 2);
    snap("filtered_80x24", &top.draw(false, 80, 24));
    top.state.dash.low_bandwidth = true;
    // Esc clears the filter before it would quit.
    assert!(!top.keys("<esc>").contains(&Effect::Quit));
    assert_eq!(top.state.filter.text, "");
    snap("low_bandwidth_80x24", &top.draw(true, 80, 24));
}

#[test]
fn detail_charts_at_80x24_and_120x40() {
    let mut top = Top::new(8, 90);
    // build, db, mail, nas, vpn, web-1: the sixth by name.
    top.keys("jjjjj<enter>");
    assert_eq!(top.state.dash.detail.as_deref(), Some("web-1"));
    snap("detail_80x24", &top.draw(false, 80, 24));
    snap("detail_120x40", &top.draw(false, 120, 40));
    snap("detail_ascii_80x24", &top.draw(true, 80, 24));
    assert!(!top.keys("<esc>").contains(&Effect::Quit));
    assert_eq!(top.state.dash.detail, None);
    assert!(top.keys("q").contains(&Effect::Quit));
}

#[test]
fn plus_and_minus_change_the_interval() {
    let mut top = Top::new(2, 3);
    assert_eq!(
        top.keys("+"),
        vec![Effect::MonitorInterval(Duration::from_secs(2))]
    );
    assert_eq!(
        top.keys("-"),
        vec![Effect::MonitorInterval(Duration::from_secs(1))]
    );
}

#[test]
fn other_views_are_out_of_reach() {
    let mut top = Top::new(2, 3);
    top.keys("5<tab>3");
    assert_eq!(top.state.view, phyllome::tui::View::Dashboard);
    let help = top.keys("?");
    assert!(help.is_empty());
    // Tall enough for the whole help.
    let screen = top.draw(false, 80, 40);
    assert!(screen.contains("sample less often"), "{screen}");
    assert!(screen.contains("enter"), "{screen}");
    for elsewhere in ["IOMMU groups", "start", "give to VM", "refresh"] {
        assert!(!screen.contains(elsewhere), "{elsewhere}:\n{screen}");
    }
}

#[test]
fn waiting_and_empty_screens_do_not_panic_at_any_size() {
    let mut empty = Top::new(0, 0);
    assert!(empty.draw(false, 80, 24).contains("Sampling"));
    let mut full = Top::new(100, 5);
    for (c, r) in [(1, 1), (10, 3), (20, 5), (40, 10), (200, 60)] {
        full.draw(false, c, r);
        empty.draw(true, c, r);
    }
}

/// The loop itself: `top` samples from the start (no key needed), and `q` ends it while the
/// terminal's stream is still open.
#[tokio::test]
async fn the_loop_opens_on_the_dashboard_and_q_quits() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ConsoleOptions {
        paths: phyllome::ops::HostPaths {
            host_root: dir.path().to_path_buf(),
            state_dir: Some(dir.path().join("state")),
            run_dir: Some(dir.path().join("run")),
            ch_bin: None,
            simulate: false,
        },
        read_only: true,
        profile: TermProfile::detect(|n| (n == "LANG").then(|| "C.UTF-8".into()), false),
        keymap: None,
        requery_size: None,
        top: true,
        esc_delay: phyllome::tui::escape::DEFAULT_ESC_DELAY,
    };
    let q = Ok(Event::Key(KeyEvent::new(
        KeyCode::Char('q'),
        KeyModifiers::NONE,
    )));
    // `q` after the first sample had time to arrive; then a stream that never ends.
    let events = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        q
    })
    .chain(futures::stream::pending::<io::Result<Event>>())
    .boxed();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let keymap = Keymap::defaults().unwrap();
    let run = run_on(&mut terminal, events, keymap, &opts);
    let result = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("q ends top");
    assert!(result.is_ok(), "{result:?}");
    let screen = terminal.backend().to_string();
    assert!(screen.starts_with("\" phyllome top "), "{screen}");
    assert!(screen.contains("NAME"), "never sampled:\n{screen}");
    assert!(screen.contains("q quit"), "{screen}");
}
