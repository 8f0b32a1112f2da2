//! The guest's serial output on its way to a terminal: how fast the safe-subset filter of
//! `vm console`/`vm log` runs on plain boot text and on escape-heavy output, and what one
//! frame of the console's serial pane costs at 120x40 (a screen full of coloured text).
//! A serial line at 115200 baud carries about 11.5 KB/s; these must be far above that.
//!
//! `cargo bench --bench serial`.
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

use std::time::{Duration, Instant};

use phyllome::serial::attach::Role;
use phyllome::serial::SafeFilter;
use phyllome::tui::vms::VmRow;
use phyllome::tui::{update, view, Action, Keymap, State, Theme};
use phyllome::vmm::manager::RunState;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn throughput(name: &str, input: &[u8]) {
    let mut times = Vec::new();
    let mut out = Vec::with_capacity(input.len());
    for _ in 0..15 {
        out.clear();
        let t = Instant::now();
        SafeFilter::new().push(input, &mut out);
        times.push(t.elapsed());
    }
    let m = median(times);
    let mbs = input.len() as f64 / m.as_secs_f64() / 1e6;
    println!(
        "  filter, {name}: {mbs:.0} MB/s (median of 15 over {} MiB)",
        input.len() >> 20
    );
}

fn main() {
    let plain: Vec<u8> = (0..400_000)
        .flat_map(|i| {
            format!("[{i:>8}.000000] systemd[1]: Started unit number {i}.\r\n").into_bytes()
        })
        .collect();
    let hostile: Vec<u8> = plain
        .chunks(64)
        .flat_map(|c| {
            [
                c,
                b"\x1b[1;32m",
                b"\x1b]52;c;AAAA\x07",
                b"\x1b[6n",
                "é".as_bytes(),
            ]
            .concat()
        })
        .collect();
    println!("serial:");
    throughput("boot text", &plain[..16 << 20]);
    throughput("escape-heavy", &hostile[..16 << 20]);

    let keymap = Keymap::defaults().unwrap();
    let mut state = State::new(&keymap, Theme::new(false, true), false, 120, 40);
    update(&mut state, Action::ViewVms);
    let row = VmRow {
        name: "web".into(),
        state: RunState::Running,
        defined: true,
        autostart: false,
        stop_timeout_secs: None,
        vcpus: Some(1),
        memory_bytes: None,
        uptime_secs: None,
        disks: 0,
        nets: 0,
        vfio: 0,
        error: None,
    };
    update(&mut state, Action::VmsLoaded(Ok(vec![row])));
    update(&mut state, Action::VmConsole);
    update(
        &mut state,
        Action::SerialAttached {
            vm: "web".into(),
            role: Role::Keys,
            direct: false,
        },
    );
    update(
        &mut state,
        Action::SerialOutput {
            vm: "web".into(),
            bytes: hostile[..64 << 10].to_vec(),
        },
    );
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let mut times = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        terminal.draw(|f| view::render(&state, f)).unwrap();
        times.push(t.elapsed());
    }
    println!(
        "  serial pane frame, 120x40: median {:?} (500 frames)",
        median(times)
    );
}
