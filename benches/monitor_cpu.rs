//! CPU used by the monitor itself (sampler + model + render) while watching 8 and 100 VMs at
//! 1 Hz. Each VM is a runtime directory whose pidfile names this very process, so the procfs
//! reads are real (stat, status, cgroup, the task list and every thread's name and
//! schedstat); there is no API socket, so the `vm.info`/`vm.counters` calls fail at connect
//! and their HTTP cost is not included. Prints figures, asserts nothing.
//!
//! `cargo bench --bench monitor_cpu` (MONITOR_BENCH_SECS, default 20, per case)

use std::io::{self, Write};
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

use phyllome::host::SysRoot;
use phyllome::monitor::Collector;
use phyllome::tui::dashboard::Dashboard;
use phyllome::tui::state::Theme;
use phyllome::tui::top::{self, TopUi};
use phyllome::vmm::runtime::RunRoot;

/// This thread's CPU time in nanoseconds (`schedstat`), or ticks from `stat` as a fallback.
fn thread_cpu_ns() -> u64 {
    if let Ok(t) = std::fs::read_to_string("/proc/thread-self/schedstat") {
        if let Some(Ok(ns)) = t.split_whitespace().next().map(str::parse::<u64>) {
            return ns;
        }
    }
    0
}

fn case(vms: usize, secs: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    let me = std::process::id();
    for i in 0..vms {
        let dir = run.join("vms").join(format!("vm-{i:03}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("vmm.pid"), format!("{me}\n")).expect("pid");
    }
    let mut collector = Collector::new(
        SysRoot::host(),
        Some(RunRoot::new(&run)),
        Some(tmp.path().join("state")),
    );
    collector.api_timeout = Duration::from_millis(200);
    let mut d = Dashboard::new(600, Duration::from_secs(1), false);
    let theme = Theme::new(false, true);
    let ui = TopUi::default();
    let mut t = Terminal::with_options(
        CrosstermBackend::new(io::sink()),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, 80, 24)),
        },
    )
    .expect("terminal");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Warm up: caches of thread names, the first paint.
        for _ in 0..2 {
            d.apply(collector.sample().await);
            t.draw(|f| top::render(&d, &ui, &theme, f)).expect("draw");
        }
        let start = Instant::now();
        let cpu0 = thread_cpu_ns();
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        for _ in 0..secs {
            ticker.tick().await;
            d.apply(collector.sample().await);
            t.draw(|f| top::render(&d, &ui, &theme, f)).expect("draw");
        }
        let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
        let wall = start.elapsed().as_secs_f64();
        println!(
            "{vms:>4} VMs at 1 Hz: {:.3}% of one core ({:.2} ms per sample, {secs} samples)",
            cpu / wall * 100.0,
            cpu / secs as f64 * 1000.0
        );
    });
    let _ = io::stdout().flush();
}

fn main() {
    let secs = std::env::var("MONITOR_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    println!("monitor CPU (sampler + model + 80x24 render, one thread):");
    case(8, secs);
    case(100, secs);
}
