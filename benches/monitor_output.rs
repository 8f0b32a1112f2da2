//! Bytes the dashboard writes to an 80x24 terminal per second with 8 running VMs sampled at
//! 1 Hz: the real render path (a ratatui `Terminal` over crossterm writing to a byte counter)
//! with changing synthetic data. The first full paint is reported apart; the figure is the
//! steady state. Prints figures, asserts nothing.
//!
//! `cargo bench --bench monitor_output`
// A benchmark prints its figures and stops at the first failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::string_slice,
    clippy::exit
)]

#[path = "support/byte_counter.rs"]
mod byte_counter;
use byte_counter::Counter;

use std::sync::atomic::Ordering;
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use ratatui::TerminalOptions;
use ratatui::Viewport;

use phyllome::monitor::dashboard::Dashboard;
use phyllome::monitor::synthetic::Synthetic;
use phyllome::tui::{view, Keymap, State, Theme};

const SECONDS: u64 = 120;

fn run(label: &str, low: bool, color: bool, ascii: bool, detail: bool, exact: bool) {
    let counter = Counter::default();
    let bytes = counter.0.clone();
    let backend = CrosstermBackend::new(counter);
    let mut t = Terminal::with_options(
        backend,
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, 80, 24)),
        },
    )
    .expect("terminal");
    let theme = Theme::new(ascii, color && !low);
    // `phyllome top`: the console's state opened on the dashboard alone.
    let keymap = Keymap::defaults().expect("keymap");
    let mut st = State::new(&keymap, theme, true, 80, 24);
    st.open_top(&keymap);
    st.dash = Dashboard::new(600, Duration::from_secs(1), low);
    let d = &mut st.dash;
    d.exact = exact;
    let mut s = Synthetic::new(8);
    // Ten seconds of history before the screen opens, as when someone opens it later.
    for _ in 0..10 {
        d.apply(s.sample());
    }
    if detail {
        d.detail = Some("win11".into());
    }
    t.draw(|f| view::render(&st, f)).expect("draw");
    let first = bytes.load(Ordering::Relaxed);
    for _ in 0..SECONDS {
        st.dash.apply(s.sample());
        t.draw(|f| view::render(&st, f)).expect("draw");
    }
    let total = bytes.load(Ordering::Relaxed) - first;
    let per_s = total as f64 / SECONDS as f64;
    println!(
        "{label:<44} first paint {first:>6} B   steady {per_s:>7.0} B/s   ({:.1}% of 115200 baud)",
        per_s / 11_520.0 * 100.0
    );
}

fn main() {
    println!("monitor output, 80x24, 8 running VMs at 1 Hz, {SECONDS} s of samples:");
    run(
        "dashboard, colour, Unicode",
        false,
        true,
        false,
        false,
        false,
    );
    run(
        "dashboard, monochrome, ASCII",
        false,
        false,
        true,
        false,
        false,
    );
    run("dashboard --low-bandwidth", true, false, true, false, false);
    run(
        "charts of one VM, colour, Unicode",
        false,
        true,
        false,
        true,
        false,
    );
    run(
        "charts of one VM --low-bandwidth",
        true,
        false,
        true,
        true,
        false,
    );
    println!("figures repainted at every sample (no hold), for comparison:");
    run(
        "dashboard, colour, Unicode, exact",
        false,
        true,
        false,
        false,
        true,
    );
    run(
        "dashboard, monochrome, ASCII, exact",
        false,
        false,
        true,
        false,
        true,
    );
}
