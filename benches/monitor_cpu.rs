//! CPU used by the monitor itself (sampler + model + render) while watching 8 and 100 VMs at
//! 1 Hz, API calls included. Each VM is a real Cloud Hypervisor test double
//! (`examples/ch_double`) started by `phyllome vm start`, so every sample makes the real
//! `vm.info` and `vm.counters` HTTP calls over the VMs' API sockets and reads the real procfs
//! files of their processes. Two shared cores do not carry 100 processes well, so past
//! `MONITOR_BENCH_DOUBLES` doubles (default 20) further VMs get runtime directories whose
//! socket, pidfile and launch record point at an existing double: every VM still costs its
//! own two HTTP calls and its own procfs reads. Only this thread's CPU is counted (the
//! console's share), not the doubles'. Prints figures, asserts nothing.
//!
//! `cargo build --example ch_double && cargo bench --bench monitor_cpu`
//! (MONITOR_BENCH_SECS, default 20, per case; MONITOR_BENCH_DOUBLES)
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

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

use phyllome::host::SysRoot;
use phyllome::monitor::dashboard::Dashboard;
use phyllome::monitor::Collector;
use phyllome::tui::{view, Keymap, State, Theme};
use phyllome::vmm::runtime::RunRoot;

/// This thread's CPU time in nanoseconds (`schedstat`).
fn thread_cpu_ns() -> u64 {
    if let Ok(t) = std::fs::read_to_string("/proc/thread-self/schedstat") {
        if let Some(Ok(ns)) = t.split_whitespace().next().map(str::parse::<u64>) {
            return ns;
        }
    }
    0
}

/// The built double: `CH_DOUBLE`, else target/{release,debug}/examples/ch_double.
fn double_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CH_DOUBLE") {
        return Some(PathBuf::from(p));
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("examples/ch_double"))
        .find(|p| p.exists())
}

/// VMs and their doubles; the doubles are killed on drop.
struct Host {
    tmp: tempfile::TempDir,
    pids: Vec<u32>,
}

impl Host {
    fn run(&self) -> PathBuf {
        self.tmp.path().join("run")
    }
    fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    fn start(ch_bin: &Path, vms: usize, doubles: usize) -> Host {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut host = Host {
            tmp,
            pids: Vec::new(),
        };
        let kernel = host.tmp.path().join("vmlinuz");
        std::fs::write(&kernel, b"not a kernel").expect("kernel");
        let defs = host.state().join("vms");
        std::fs::create_dir_all(&defs).expect("state dir");
        let real = vms.min(doubles.max(1));
        for i in 0..real {
            let name = format!("vm-{i:03}");
            let text = format!(
                "[cpus]\nboot = 2\n\n[memory]\nsize = \"512M\"\n\n[boot]\nkernel = {kernel:?}\n\
                 cmdline = \"console=ttyS0\"\n"
            );
            std::fs::write(defs.join(format!("{name}.toml")), text).expect("definition");
            // A start can lose a race for the two cores with whatever else runs: try again.
            let start = || {
                Command::new(env!("CARGO_BIN_EXE_phyllome"))
                    .arg("--state-dir")
                    .arg(host.state())
                    .arg("--run-dir")
                    .arg(host.run())
                    .arg("--ch-bin")
                    .arg(ch_bin)
                    .args(["vm", "start", &name])
                    .env("PHYLLOME_SUPERVISOR", "process")
                    .stdin(Stdio::null())
                    .output()
                    .expect("phyllome vm start")
            };
            let mut out = start();
            for _ in 0..2 {
                if out.status.success() {
                    break;
                }
                out = start();
            }
            if !out.status.success() {
                println!(
                    "vm start {name} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let dir = host.run().join("vms").join(&name);
            if let Some(pid) = std::fs::read_to_string(dir.join("vmm.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                host.pids.push(pid);
            }
        }
        // The rest share the doubles: their own directory, the double's socket and process.
        for i in real..vms {
            let src = host.run().join("vms").join(format!("vm-{:03}", i % real));
            let dir = host.run().join("vms").join(format!("vm-{i:03}"));
            std::fs::create_dir_all(&dir).expect("run dir");
            std::os::unix::fs::symlink(src.join("api.sock"), dir.join("api.sock"))
                .expect("socket link");
            for f in ["vmm.pid", "meta.json"] {
                let _ = std::fs::copy(src.join(f), dir.join(f));
            }
        }
        host
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for pid in &self.pids {
            let pid = i32::try_from(*pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

fn case(ch_bin: &Path, vms: usize, doubles: usize, secs: u64, target: f64) {
    let host = Host::start(ch_bin, vms, doubles);
    let mut collector = Collector::new(
        SysRoot::host(),
        Some(RunRoot::new(host.run())),
        Some(host.state()),
    );
    collector.api_timeout = Duration::from_millis(800);
    // `phyllome top`: the console's state opened on the dashboard alone.
    let keymap = Keymap::defaults().expect("keymap");
    let mut st = State::new(&keymap, Theme::new(false, true), true, 80, 24);
    st.open_top(&keymap);
    st.dash = Dashboard::new(600, Duration::from_secs(1), false);
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
        // Warm up: connections, caches of thread names, the first paint.
        for _ in 0..2 {
            st.dash.apply(collector.sample().await);
            t.draw(|f| view::render(&st, f)).expect("draw");
        }
        let answered = st
            .dash
            .model
            .vms
            .values()
            .filter(|h| h.stats.state == "Running")
            .count();
        let start = Instant::now();
        let cpu0 = thread_cpu_ns();
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        for _ in 0..secs {
            ticker.tick().await;
            st.dash.apply(collector.sample().await);
            t.draw(|f| view::render(&st, f)).expect("draw");
        }
        let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
        let wall = start.elapsed().as_secs_f64();
        let shared = if vms > doubles {
            format!(", {} doubles", doubles.min(vms))
        } else {
            String::new()
        };
        println!(
            "{vms:>4} VMs at 1 Hz ({answered} answering{shared}): {:.3}% of one core \
             (target {target}%), {:.2} ms per sample, {secs} samples",
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
    let doubles = std::env::var("MONITOR_BENCH_DOUBLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let Some(ch_bin) = double_path() else {
        println!("monitor CPU: no test double; run `cargo build --example ch_double` first");
        return;
    };
    println!("monitor CPU (sampler with vm.info + vm.counters over HTTP, model, 80x24 render):");
    case(&ch_bin, 8, doubles, secs, 1.0);
    case(&ch_bin, 100, doubles, secs, 3.0);
}
