//! The monitor against the Cloud Hypervisor test double (`examples/ch_double`, built by
//! `cargo test`; a filtered run needs `cargo build --example ch_double` first). The double's
//! `vm.counters` grow at known rates while the VM runs and freeze while it is paused
//! (`support/vmm/ch_double_vm.rs`), so the rates the monitor computes can be checked against
//! them; `phyllome top --batch --json` is checked end to end.

use std::process::Command;
use std::time::{Duration, Instant};

use phyllome::host::SysRoot;
use phyllome::monitor::{Collector, Model, VmStats};
use phyllome::vmm::runtime::RunRoot;
use serde_json::Value;

use crate::support::cli::{self, Cli};
use crate::support::ui;

// The double's rates per second (support/vmm/ch_double_vm.rs).
const DISK_READ: f64 = 1_048_576.0;
const DISK_WRITE: f64 = 524_288.0;
const DISK_READ_OPS: f64 = 256.0;
const DISK_WRITE_OPS: f64 = 128.0;
const NET_RX: f64 = 125_000.0;
const NET_TX: f64 = 62_500.0;
const NET_RX_FRAMES: f64 = 100.0;
const NET_TX_FRAMES: f64 = 50.0;
/// `size = "512M"` in the definitions below.
const GUEST_BYTES: u64 = 512 << 20;

/// VMs on the test double.
struct Env {
    cli: Cli,
}

impl std::ops::Deref for Env {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

impl Env {
    fn new() -> Self {
        Env { cli: Cli::double() }
    }

    fn define(&self, name: &str) {
        // One disk and one NIC: the double, like CH, counts only the devices a VM has.
        let kernel = self.fake_kernel();
        let disk = kernel.with_file_name(format!("{name}.img"));
        std::fs::write(&disk, b"").unwrap();
        let text = format!(
            "[cpus]\nboot = 2\n\n[memory]\nsize = \"512M\"\n\n[boot]\nkernel = {kernel:?}\n\
             cmdline = \"console=ttyS0\"\n\n[[disks]]\npath = {disk:?}\n\n[[net]]\ntap = \"tap-{name}\"\n"
        );
        self.define_toml(name, &text);
    }

    /// The command with `env` on top of the runner's.
    fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = self.cli.cmd(args);
        c.envs(env.iter().copied());
        c
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        cli::succeeded(args, &self.cmd(args, env).output().unwrap())
    }

    fn start(&self, name: &str, env: &[(&str, &str)]) {
        self.define(name);
        self.ok(&["vm", "start", name], env);
    }

    fn collector(&self) -> Collector {
        Collector::new(
            SysRoot::host(),
            Some(RunRoot::new(&self.run)),
            Some(self.state.clone()),
        )
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Within `pct` percent of `want`.
fn near(what: &str, got: Option<f64>, want: f64, pct: f64) {
    let got = got.unwrap_or_else(|| panic!("{what}: no figure"));
    assert!(
        (got - want).abs() <= want * pct / 100.0,
        "{what}: {got:.0} is not within {pct}% of {want:.0}"
    );
}

/// Two samples `window` apart: the rates over that window.
fn rates_over(collector: &mut Collector, window: Duration) -> Model {
    let rt = runtime();
    let mut model = Model::new(4);
    rt.block_on(async {
        model.apply(collector.sample().await);
        tokio::time::sleep(window).await;
        model.apply(collector.sample().await);
    });
    model
}

fn vm<'a>(model: &'a Model, name: &str) -> &'a VmStats {
    &model.vms.get(name).expect("the VM is listed").stats
}

#[test]
fn rates_match_the_doubles_counters_and_stop_while_paused() {
    let env = Env::new();
    env.start("a", &[]);
    let mut c = env.collector();
    let model = rates_over(&mut c, Duration::from_secs(2));
    let s = vm(&model, "a");
    assert_eq!(s.state, "Running", "{s:?}");
    assert!(s.pid.is_some(), "{s:?}");
    assert_eq!(s.memory_guest_bytes, Some(GUEST_BYTES));
    assert!(s.memory_rss_bytes.is_some_and(|r| r > 0), "{s:?}");
    assert!(s.cpu_percent.is_some(), "{s:?}");
    // Each counter is read once per sample and timed when the answer arrives: over 2 s a
    // few milliseconds of jitter stay well under 3%.
    near("disk read", s.disk_read_bps, DISK_READ, 3.0);
    near("disk write", s.disk_write_bps, DISK_WRITE, 3.0);
    near("disk read ops", s.disk_read_iops, DISK_READ_OPS, 3.0);
    near("disk write ops", s.disk_write_iops, DISK_WRITE_OPS, 3.0);
    near("net rx", s.net_rx_bps, NET_RX, 3.0);
    near("net tx", s.net_tx_bps, NET_TX, 3.0);
    near("net rx frames", s.net_rx_pps, NET_RX_FRAMES, 3.0);
    near("net tx frames", s.net_tx_pps, NET_TX_FRAMES, 3.0);

    env.ok(&["vm", "pause", "a"], &[]);
    let model = rates_over(&mut c, Duration::from_secs(1));
    let s = vm(&model, "a");
    assert_eq!(s.state, "Paused", "{s:?}");
    for (what, v) in [
        ("disk read", s.disk_read_bps),
        ("disk write", s.disk_write_bps),
        ("net rx", s.net_rx_bps),
        ("net tx", s.net_tx_bps),
    ] {
        assert_eq!(v, Some(0.0), "{what} while paused: {s:?}");
    }

    env.ok(&["vm", "resume", "a"], &[]);
    let model = rates_over(&mut c, Duration::from_secs(1));
    near(
        "disk read after resume",
        vm(&model, "a").disk_read_bps,
        DISK_READ,
        5.0,
    );
}

#[test]
fn top_batch_json_prints_one_object_per_sample() {
    let env = Env::new();
    env.start("a", &[]);
    let out = env.ok(
        &[
            "top",
            "--batch",
            "--iterations",
            "2",
            "--json",
            "--interval",
            "1",
        ],
        &[],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in lines {
        let v: Value = serde_json::from_str(line).expect("one JSON object per line");
        assert!(v["host"].is_object(), "{line}");
        let vms = v["vms"].as_array().expect("vms");
        assert_eq!(vms.len(), 1, "{line}");
        let a = &vms[0];
        for key in [
            "name",
            "state",
            "cpu_percent",
            "vcpus",
            "memory_rss_bytes",
            "memory_guest_bytes",
            "disk_read_bps",
            "disk_write_bps",
            "net_rx_bps",
            "net_tx_bps",
        ] {
            assert!(a.get(key).is_some(), "{key} missing: {a}");
        }
        assert_eq!(a["name"], "a");
        assert_eq!(a["state"], "Running");
        assert_eq!(a["memory_guest_bytes"], GUEST_BYTES);
        assert!(a["memory_rss_bytes"].as_u64().is_some_and(|r| r > 0), "{a}");
        assert!(a["cpu_percent"].as_f64().is_some_and(|c| c >= 0.0), "{a}");
        assert!(a["vcpus"].is_array(), "{a}");
        near("disk_read_bps", a["disk_read_bps"].as_f64(), DISK_READ, 5.0);
        near(
            "disk_write_bps",
            a["disk_write_bps"].as_f64(),
            DISK_WRITE,
            5.0,
        );
        near("net_rx_bps", a["net_rx_bps"].as_f64(), NET_RX, 5.0);
        near("net_tx_bps", a["net_tx_bps"].as_f64(), NET_TX, 5.0);
    }
}

#[test]
fn a_hung_vmm_is_unresponsive_and_delays_no_other_vm() {
    let env = Env::new();
    env.start("good", &[]);
    env.start("hung", &[("CH_DOUBLE_HANG", "vm.counters")]);
    let mut c = env.collector();
    c.api_timeout = Duration::from_millis(300);
    let rt = runtime();
    let mut model = Model::new(4);
    let mut took = Vec::new();
    rt.block_on(async {
        for _ in 0..3 {
            let t = Instant::now();
            model.apply(c.sample().await);
            took.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    // Every sample ends with the slowest call's timeout, never later: the hung VMM holds up
    // nobody, and its requests queued behind the stuck one do not pile up time.
    for t in &took {
        assert!(*t < Duration::from_millis(900), "a sample took {t:?}");
    }
    let hung = vm(&model, "hung");
    assert_eq!(hung.state, "Unresponsive", "{hung:?}");
    assert!(hung.error.is_some(), "{hung:?}");
    let good = vm(&model, "good");
    assert_eq!(good.state, "Running", "{good:?}");
    near("good disk read", good.disk_read_bps, DISK_READ, 5.0);
}

#[test]
fn monitor_config_sets_the_interval_and_a_missing_file_is_an_error() {
    let env = Env::new();
    let cfg = env.state.with_file_name("monitor.toml");
    std::fs::write(&cfg, "interval_secs = 0.5\n").unwrap();
    let cfg = cfg.to_string_lossy().into_owned();
    let args = ["top", "--batch", "--iterations", "1", "--json"];
    let out = env.ok(&[&args[..], &["--monitor-config", &cfg]].concat(), &[]);
    let v: Value = serde_json::from_str(out.trim()).expect("JSON");
    let interval = v["interval_secs"].as_f64().expect("interval_secs");
    assert!((0.4..0.7).contains(&interval), "{out}");
    let missing = env
        .cmd(
            &[
                &args[..],
                &["--monitor-config", "/nonexistent/monitor.toml"],
            ]
            .concat(),
            &[],
        )
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
}

/// `monitor.toml` in `$PHYLLOME_CONFIG_DIR` is read without a flag; `--monitor-config` wins.
#[test]
fn monitor_toml_is_found_in_the_config_dir_and_the_flag_wins() {
    let env = Env::new();
    let dir = env.state.with_file_name("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("monitor.toml"), "interval_secs = 0.5\n").unwrap();
    let flag = env.state.with_file_name("flag.toml");
    std::fs::write(&flag, "interval_secs = 3\n").unwrap();
    let dir = dir.to_string_lossy().into_owned();
    let interval = |extra: &[&str]| {
        let args = ["top", "--batch", "--iterations", "1", "--json"];
        let out = env.ok(
            &[&args[..], extra].concat(),
            &[("PHYLLOME_CONFIG_DIR", &dir)],
        );
        let v: Value = serde_json::from_str(out.trim()).expect("JSON");
        v["interval_secs"].as_f64().expect("interval_secs")
    };
    let found = interval(&[]);
    assert!((0.4..0.7).contains(&found), "{found}");
    let flagged = interval(&["--monitor-config", &flag.to_string_lossy()]);
    assert!((2.5..3.5).contains(&flagged), "{flagged}");
}

/// The console itself: `6` opens the dashboard, which starts the sampling task; its samples
/// arrive as actions and the running VM shows with the double's rates.
#[test]
fn the_console_dashboard_samples_a_running_vm() {
    use futures::StreamExt;
    use phyllome::tui::{run_on, ConsoleOptions, Keymap};

    let env = Env::new();
    env.start("a", &[]);
    // The state and run dirs of `env`, which are under its path.
    let mut opts = ConsoleOptions {
        read_only: true,
        ..ui::console(std::path::Path::new("/"), env.path())
    };
    opts.paths.ch_bin = env.ch_bin.clone();
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    let rt = runtime();
    let result = rt.block_on(async {
        // `6`, then three samples' time before the stream (and so the loop) ends.
        let events = futures::stream::iter([Ok(ui::key("6"))])
            .chain(ui::pause(3200))
            .boxed();
        run_on(&mut terminal, events, Keymap::defaults().unwrap(), &opts).await
    });
    assert!(result.is_ok(), "{result:?}");
    let screen = terminal.backend().to_string();
    assert!(screen.contains("[Dashboard]"), "{screen}");
    let row = screen
        .lines()
        .find(|l| l.contains("Running") && l.contains("/512M"))
        .unwrap_or_else(|| panic!("no row of VM a:\n{screen}"));
    // The last two columns: disk read/write and net rx/tx, as `1.0M/512K`.
    let fields: Vec<&str> = row.trim_matches('"').split_whitespace().collect();
    let pair = |f: &str| -> Vec<f64> { f.split('/').map(parse_rate).collect() };
    let (disk, net) = (
        pair(fields[fields.len() - 2]),
        pair(fields[fields.len() - 1]),
    );
    // Shown with two or three digits: within 5% of the double's rates.
    near("disk read", Some(disk[0]), DISK_READ, 5.0);
    near("disk write", Some(disk[1]), DISK_WRITE, 5.0);
    near("net rx", Some(net[0]), NET_RX, 5.0);
    near("net tx", Some(net[1]), NET_TX, 5.0);
}

/// `513K` -> 525312.
fn parse_rate(s: &str) -> f64 {
    let (num, mult) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1024.0),
        Some('M') => (&s[..s.len() - 1], 1024.0 * 1024.0),
        Some('G') => (&s[..s.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (s, 1.0),
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * mult
}
