//! phyllome on the real Cloud Hypervisor (`../shared/cloud-hypervisor/bin/` or `CH_BIN`, with
//! the Debian kernel of `host-image/test-kernel/prepare.sh` as the payload). Prints figures,
//! asserts nothing:
//! - `vm start`: `phyllome vm start` next to the same start by hand (`cloud-hypervisor
//!   --api-socket`, wait for the socket, `ch-remote create`, `ch-remote boot`), both as
//!   processes, medians over RUNS starts, and their ratio (target <= 1.1);
//! - with 8 and 32 running VMs: `phyllome vm list --json` wall time, the CPU time one sample of
//!   `phyllome top --batch` costs, and the bytes per second the dashboard writes at 80x24.
//!
//! `cargo bench --bench real_vmm` (REAL_VMM_COUNTS=8,32 and REAL_VMM_RUNS=10 by default).
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

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use phyllome::host::SysRoot;
use phyllome::monitor::collect::Collector;
use phyllome::monitor::dashboard::Dashboard;
use phyllome::tui::{view, Keymap, State, Theme};
use phyllome::vmm::runtime::RunRoot;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

struct Setup {
    bin: PathBuf,
    ch_remote: PathBuf,
    kernel: PathBuf,
    phyllome: PathBuf,
}

fn setup() -> Result<Setup, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = std::env::var_os("CH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/cloud-hypervisor/bin/cloud-hypervisor"));
    if !bin.is_file() {
        return Err(format!("no Cloud Hypervisor at {}", bin.display()));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("/dev/kvm: {e}"))?;
    let kernel = root.join(".cache/test-kernel/vmlinuz");
    if !kernel.is_file() {
        return Err(format!(
            "no payload kernel at {} (run host-image/test-kernel/prepare.sh)",
            kernel.display()
        ));
    }
    Ok(Setup {
        ch_remote: bin.with_file_name("ch-remote"),
        bin,
        kernel,
        phyllome: PathBuf::from(env!("CARGO_BIN_EXE_phyllome")),
    })
}

struct Env<'a> {
    s: &'a Setup,
    dir: tempfile::TempDir,
}

impl Env<'_> {
    fn new(s: &Setup) -> Env<'_> {
        Env {
            s,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn run(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn define(&self, name: &str) {
        let vms = self.state().join("vms");
        std::fs::create_dir_all(&vms).expect("state dir");
        let disk = self.dir.path().join(format!("{name}.img"));
        std::fs::write(&disk, vec![0u8; 1 << 20]).expect("disk");
        std::fs::write(
            vms.join(format!("{name}.toml")),
            format!(
                "[cpus]\nboot = 1\n[memory]\nsize = \"128M\"\n[boot]\nkernel = {:?}\n\
                 cmdline = \"console=ttyS0 panic=0\"\n[[disks]]\npath = {disk:?}\n",
                self.s.kernel
            ),
        )
        .expect("definition");
    }

    fn phyllome(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.s.phyllome);
        c.arg("--state-dir")
            .arg(self.state())
            .arg("--run-dir")
            .arg(self.run())
            .arg("--ch-bin")
            .arg(&self.s.bin)
            .args(args)
            .env("PHYLLOME_SUPERVISOR", "process")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.phyllome(args).output().expect("phyllome");
        assert!(
            out.status.success(),
            "phyllome {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Env<'_> {
    fn drop(&mut self) {
        // Whatever the bench did, no VMM of its run dir outlives it.
        let marker = self.run().display().to_string();
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &marker])
            .status();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The same start as `phyllome vm start`, by hand: the VMM, its socket, `ch-remote create` and
/// `ch-remote boot`, from the JSON `phyllome vm export` gives.
fn by_hand(s: &Setup, dir: &Path, config: &Path) -> Duration {
    let socket = dir.join("api.sock");
    let t = Instant::now();
    let mut vmm = Command::new(&s.bin)
        .arg("--api-socket")
        .arg(format!("path={}", socket.display()))
        .arg("--event-monitor")
        .arg(format!("path={}", dir.join("events.json").display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cloud-hypervisor");
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let remote = |args: &[&str]| {
        let ok = Command::new(&s.ch_remote)
            .arg("--api-socket")
            .arg(&socket)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("ch-remote")
            .success();
        assert!(ok, "ch-remote {args:?}");
    };
    remote(&["create", config.to_str().expect("utf-8 path")]);
    remote(&["boot"]);
    let took = t.elapsed();
    let _ = vmm.kill();
    let _ = vmm.wait();
    let _ = std::fs::remove_file(&socket);
    took
}

fn bench_start(s: &Setup, runs: usize) {
    let env = Env::new(s);
    env.define("bench");
    // The export names the VM's runtime dir for its serial socket: run the hand start there.
    let export = env.ok(&["vm", "export", "bench"]).stdout;
    let config = env.dir.path().join("bench.json");
    std::fs::write(&config, export).expect("export");
    let hand_dir = env.run().join("vms/bench");
    let (mut ours, mut hand) = (Vec::new(), Vec::new());
    for i in 0..runs + 1 {
        let t = Instant::now();
        env.ok(&["vm", "start", "bench"]);
        let took = t.elapsed();
        env.ok(&["vm", "stop", "bench", "--force", "--yes"]);
        std::fs::create_dir_all(&hand_dir).expect("dir");
        let h = by_hand(s, &hand_dir, &config);
        let _ = std::fs::remove_dir_all(&hand_dir);
        // The first of each warms the page cache.
        if i > 0 {
            ours.push(took);
            hand.push(h);
        }
    }
    let (o, h) = (median(ours), median(hand));
    println!("vm start on the real VMM, {runs} runs:");
    println!(
        "  phyllome vm start:                                   median {}",
        ms(o)
    );
    println!(
        "  cloud-hypervisor + ch-remote create + boot by hand:  median {}",
        ms(h)
    );
    println!(
        "  ratio phyllome / by hand: {:.2} (target <= 1.1)",
        o.as_secs_f64() / h.as_secs_f64()
    );
}

/// CPU time (user + system) of the waited-for children of this process so far, from
/// `/proc/self/stat` (cutime, cstime; in clock ticks of 10 ms).
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<i64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            // The state letter first, then numbers (tpgid may be -1).
            rest.split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // ppid is index 0 of the numbers; cutime and cstime are 12 and 13.
    let ticks = fields.get(12).copied().unwrap_or(0) + fields.get(13).copied().unwrap_or(0);
    Duration::from_millis(ticks.max(0) as u64 * 10)
}

fn bench_scale(s: &Setup, n: usize, seconds: u64) {
    let env = Env::new(s);
    let names: Vec<String> = (0..n).map(|i| format!("vm{i:02}")).collect();
    let t = Instant::now();
    for name in &names {
        env.define(name);
        env.ok(&["vm", "start", name]);
    }
    let started = t.elapsed();

    let mut lists = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = env.ok(&["vm", "list", "--json"]);
        lists.push(t.elapsed());
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let running = rows["vms"]
            .as_array()
            .map_or(0, |r| r.iter().filter(|v| v["state"] == "Running").count());
        assert_eq!(running, n, "all {n} VMs running");
    }

    // top --batch: CPU time per sample, from two runs whose only difference is the samples.
    let cpu_of = |iterations: &str| {
        let before = children_cpu();
        env.ok(&[
            "top",
            "--batch",
            "--json",
            "--interval",
            "0.2",
            "--iterations",
            iterations,
        ]);
        children_cpu() - before
    };
    let (one, eleven) = (cpu_of("1"), cpu_of("11"));
    let per_sample = eleven.saturating_sub(one) / 10;

    // The dashboard at 80x24 on the real samples, one a second.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut collector = Collector::new(
        SysRoot::host(),
        Some(RunRoot::new(env.run())),
        Some(env.state()),
    );
    let counter = Counter::default();
    let bytes = counter.0.clone();
    let mut term = Terminal::with_options(
        CrosstermBackend::new(counter),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, 80, 24)),
        },
    )
    .expect("terminal");
    // `phyllome top`: the console's state opened on the dashboard alone.
    let keymap = Keymap::defaults().expect("keymap");
    let mut st = State::new(&keymap, Theme::new(false, true), true, 80, 24);
    st.open_top(&keymap);
    st.dash = Dashboard::new(600, Duration::from_secs(1), false);
    rt.block_on(async {
        st.dash.apply(collector.sample().await);
        term.draw(|f| view::render(&st, f)).expect("draw");
        let first = bytes.load(Ordering::Relaxed);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        for _ in 0..seconds {
            tick.tick().await;
            st.dash.apply(collector.sample().await);
            term.draw(|f| view::render(&st, f)).expect("draw");
        }
        let steady = (bytes.load(Ordering::Relaxed) - first) as f64 / seconds as f64;
        println!("{n} running VMs (1 vCPU, 128 MiB each; started in {:.1} s):", started.as_secs_f64());
        println!("  phyllome vm list --json:            median {} (5 runs)", ms(median(lists.clone())));
        println!("  phyllome top --batch, one sample:   {} of CPU", ms(per_sample));
        println!("  dashboard 80x24, colour, 1 Hz:      first paint {first} B, steady {steady:.0} B/s over {seconds} s");
    });
    for name in &names {
        env.ok(&["vm", "stop", name, "--force", "--yes"]);
    }
}

fn main() {
    let s = match setup() {
        Ok(s) => s,
        Err(why) => {
            println!("real_vmm: SKIPPED: {why}");
            return;
        }
    };
    let runs = std::env::var("REAL_VMM_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let counts: Vec<usize> = std::env::var("REAL_VMM_COUNTS")
        .unwrap_or_else(|_| "8,32".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    println!("real_vmm: {} with {}", s.bin.display(), s.kernel.display());
    bench_start(&s, runs);
    for n in counts {
        bench_scale(&s, n, 30);
    }
}
