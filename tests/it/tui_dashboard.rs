//! The monitor screens with deterministic data (`monitor::synthetic`): the dashboard and one
//! VM's charts at 80x24 and 120x40, Unicode and ASCII, plus `phyllome top`'s keys.

use crate::support;

use std::time::Duration;

use crossterm::event::{KeyCode, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use phyllome::monitor::synthetic::Synthetic;
use phyllome::tui::dashboard::{Dashboard, SortKey};
use phyllome::tui::state::Theme;
use phyllome::tui::top::{self, TopOutcome, TopUi};

fn dashboard(vms: usize, samples: usize) -> Dashboard {
    let mut d = Dashboard::new(600, Duration::from_secs(1), false);
    let mut s = Synthetic::new(vms);
    for _ in 0..samples {
        d.apply(s.sample());
    }
    d
}

fn draw(d: &Dashboard, ui: &TopUi, ascii: bool, cols: u16, rows: u16) -> String {
    let theme = Theme::new(ascii, false);
    let mut t = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    t.draw(|f| top::render(d, ui, &theme, f)).unwrap();
    t.backend().to_string()
}

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_dashboard_{name}"), screen);
}

#[test]
fn dashboard_at_80x24_and_120x40() {
    let d = dashboard(8, 30);
    let ui = TopUi::default();
    snap("80x24", &draw(&d, &ui, false, 80, 24));
    snap("120x40", &draw(&d, &ui, false, 120, 40));
    snap("ascii_80x24", &draw(&d, &ui, true, 80, 24));
}

#[test]
fn dashboard_sorted_filtered_and_low_bandwidth() {
    let mut d = dashboard(8, 30);
    let mut ui = TopUi::default();
    let page = 10;
    assert_eq!(
        top::key(
            &mut d,
            &mut ui,
            KeyCode::Char('s'),
            KeyModifiers::NONE,
            page
        ),
        TopOutcome::Redraw
    );
    assert_eq!(d.sort, SortKey::Cpu);
    let rows = d.rows("");
    let cpu: Vec<f64> = rows
        .iter()
        .map(|h| h.stats.cpu_percent.unwrap_or(-1.0))
        .collect();
    assert!(
        cpu.windows(2).all(|w| w[0] >= w[1]),
        "sorted by CPU: {cpu:?}"
    );
    for c in ['/', 'w', 'e', 'b'] {
        top::key(&mut d, &mut ui, KeyCode::Char(c), KeyModifiers::NONE, page);
    }
    top::key(&mut d, &mut ui, KeyCode::Enter, KeyModifiers::NONE, page);
    assert_eq!(d.rows(&ui.filter).len(), 2);
    snap("filtered_80x24", &draw(&d, &ui, false, 80, 24));
    d.low_bandwidth = true;
    ui.filter.clear();
    snap("low_bandwidth_80x24", &draw(&d, &ui, true, 80, 24));
}

#[test]
fn detail_charts_at_80x24_and_120x40() {
    let mut d = dashboard(8, 90);
    let mut ui = TopUi::default();
    // build, db, mail, nas, vpn, web-1: the sixth by name.
    for _ in 0..5 {
        top::key(&mut d, &mut ui, KeyCode::Down, KeyModifiers::NONE, 10);
    }
    top::key(&mut d, &mut ui, KeyCode::Enter, KeyModifiers::NONE, 10);
    assert_eq!(d.detail.as_deref(), Some("web-1"));
    snap("detail_80x24", &draw(&d, &ui, false, 80, 24));
    snap("detail_120x40", &draw(&d, &ui, false, 120, 40));
    snap("detail_ascii_80x24", &draw(&d, &ui, true, 80, 24));
    assert_eq!(
        top::key(&mut d, &mut ui, KeyCode::Esc, KeyModifiers::NONE, 10),
        TopOutcome::Redraw
    );
    assert_eq!(d.detail, None);
    assert_eq!(
        top::key(&mut d, &mut ui, KeyCode::Char('q'), KeyModifiers::NONE, 10),
        TopOutcome::Quit
    );
}

#[test]
fn plus_and_minus_change_the_interval() {
    let mut d = dashboard(2, 3);
    let mut ui = TopUi::default();
    let out = top::key(&mut d, &mut ui, KeyCode::Char('+'), KeyModifiers::NONE, 10);
    assert_eq!(out, TopOutcome::Interval(Duration::from_secs(2)));
    let out = top::key(&mut d, &mut ui, KeyCode::Char('-'), KeyModifiers::NONE, 10);
    assert_eq!(out, TopOutcome::Interval(Duration::from_secs(1)));
}

#[test]
fn waiting_and_empty_screens_do_not_panic_at_any_size() {
    let d = Dashboard::new(600, Duration::from_secs(1), false);
    let ui = TopUi::default();
    assert!(draw(&d, &ui, false, 80, 24).contains("Sampling"));
    let full = dashboard(100, 5);
    for (c, r) in [(1, 1), (10, 3), (20, 5), (40, 10), (200, 60)] {
        draw(&full, &ui, false, c, r);
        draw(&d, &ui, true, c, r);
    }
}
