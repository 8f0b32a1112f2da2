//! The console with 100 defined VMs: how long one frame of the VM list takes to render into a
//! 120x40 `TestBackend`, and what one list refresh costs (reading 100 definitions from a state
//! directory, asking each one's runtime directory for its state, turning them into rows).
//!
//! `cargo bench --bench console_vms`; `PHYLLOME_BENCH_RUNS` sets the refresh runs (default 30).
//! No VMM runs here, so the refresh measures the definitions and the runtime-directory probe,
//! not Cloud Hypervisor's answer time (bounded by the API timeout in real use).
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

use phyllome::tui::vms::VmRow;
use phyllome::tui::{update, view, Action, Keymap, State, Theme};
use phyllome::vm::EXAMPLE_TOML;
use phyllome::vmm::manager::{ManagerConfig, RunState, VmManager};
use phyllome::vmm::runtime::RunRoot;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const VMS: usize = 100;
const RENDERS: usize = 1000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rows() -> Vec<VmRow> {
    let states = [RunState::Running, RunState::Stopped, RunState::Paused];
    (0..VMS)
        .map(|i| VmRow {
            name: format!("vm-{i:03}"),
            state: states[i % 3],
            defined: true,
            autostart: i % 5 == 0,
            stop_timeout_secs: Some(60),
            vcpus: Some(1 + (i % 16) as u32),
            memory_bytes: Some(((i % 32) as u64 + 1) << 30),
            uptime_secs: (i % 3 != 1).then_some(i as u64 * 97),
            disks: 1 + i % 3,
            nets: 1,
            vfio: i % 4,
            error: (i % 25 == 7).then(|| "memory.size: \"2X\" is not a size".to_string()),
        })
        .collect()
}

fn render_bench() -> (Duration, Duration) {
    let keymap = Keymap::defaults().expect("keymap");
    let mut state = State::new(&keymap, Theme::new(false, true), false, 120, 40);
    update(&mut state, Action::ViewVms);
    update(&mut state, Action::VmsLoaded(Ok(rows())));
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let mut times = Vec::with_capacity(RENDERS);
    for i in 0..RENDERS {
        // Move the cursor so every frame differs, as it does while a user scrolls.
        update(
            &mut state,
            if i % 2 == 0 { Action::Down } else { Action::Up },
        );
        let t = Instant::now();
        terminal.draw(|f| view::render(&state, f)).expect("draw");
        times.push(t.elapsed());
    }
    let first = times[0];
    (median(times), first)
}

fn refresh_bench(runs: usize) -> (Duration, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vms = dir.path().join("state/vms");
    std::fs::create_dir_all(&vms).expect("state dir");
    for i in 0..VMS {
        let name = format!("vm-{i:03}");
        let text = EXAMPLE_TOML.replace("name = \"desktop\"", &format!("name = \"{name}\""));
        std::fs::write(vms.join(format!("{name}.toml")), text).expect("definition");
    }
    let cfg = ManagerConfig::new(
        Some(dir.path().join("state")),
        RunRoot::new(dir.path().join("run")),
        None,
    );
    let manager = VmManager::new(cfg);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut times = Vec::with_capacity(runs);
    let mut count = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let list = rt.block_on(manager.list()).expect("list");
        let rows: Vec<VmRow> = list.iter().map(VmRow::from).collect();
        times.push(t.elapsed());
        count = rows.len();
    }
    (median(times), count)
}

fn main() {
    let runs = std::env::var("PHYLLOME_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(30);
    let (render, first) = render_bench();
    println!(
        "console_vms: frame render, {VMS} VMs, 120x40 TestBackend: median {:.1} us over {RENDERS} frames (first {:.1} us)",
        render.as_secs_f64() * 1e6,
        first.as_secs_f64() * 1e6
    );
    let (refresh, count) = refresh_bench(runs);
    println!(
        "console_vms: list refresh, {count} definitions + runtime probe: median {:.2} ms over {runs} runs",
        refresh.as_secs_f64() * 1e3
    );
}
