//! `phyllome top`: watch every VM's CPU, memory, disk and network. Interactive by default;
//! `--batch` prints one sample per interval for scripts and logs, like `top -b`, and `--json`
//! makes each sample one JSON object on one line.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use eyre::WrapErr;

use crate::fmt;
use crate::monitor::sample::SampleJson;
use crate::monitor::{Collector, Model, MonitorConfig};
use crate::vmm::runtime::RunRoot;

use crate::ops::HostPaths;

#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// Print samples instead of drawing a screen (for scripts and logs)
    #[arg(long, short = 'b')]
    pub batch: bool,
    /// With --batch: stop after N samples (default: run until interrupted)
    #[arg(long, short = 'n', value_name = "N")]
    pub iterations: Option<u64>,
    /// With --batch: one JSON object per sample, one per line
    #[arg(long)]
    pub json: bool,
    /// Seconds between samples (default from monitor.toml, else 1)
    #[arg(long, short = 'd', value_name = "SECS")]
    pub interval: Option<f64>,
    /// Serial lines: no graphs, no colour
    #[arg(long)]
    pub low_bandwidth: bool,
    /// Draw with ASCII only
    #[arg(long)]
    pub ascii: bool,
    /// Monitor settings (default: monitor.toml in $PHYLLOME_CONFIG_DIR, /etc/phyllome as root, ~/.config/phyllome)
    #[arg(long, value_name = "FILE")]
    pub monitor_config: Option<PathBuf>,
    /// How long a lone Esc waits for the rest of an escape sequence split by a slow line,
    /// in milliseconds (0: no wait)
    #[arg(long, value_name = "MS", default_value_t = crate::tui::escape::DEFAULT_ESC_DELAY_MS, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub esc_delay: u64,
}

/// The first `monitor.toml` found (see [`crate::config_paths`]).
pub fn default_config_path() -> Option<PathBuf> {
    crate::config_paths::find("monitor.toml")
}

/// The monitor settings `top` runs with: `monitor.toml` (or `--monitor-config`), then
/// `--interval` and `--low-bandwidth` over it. The interactive `top` (the console's loop,
/// started by the binary) takes the same.
pub fn settings(args: &TopArgs) -> eyre::Result<MonitorConfig> {
    // A file named on the command line must exist; the default one is optional.
    if let Some(p) = args.monitor_config.as_ref().filter(|p| !p.is_file()) {
        let why = format!("--monitor-config {}: no such file", p.display());
        return Err(super::CliError::Usage(why).into());
    }
    let path = args.monitor_config.clone().or_else(default_config_path);
    let mut cfg = MonitorConfig::load(path.as_deref())?;
    match args.interval {
        // `MonitorConfig::interval` brings it within the sampler's bounds.
        Some(s) if s.is_finite() && s > 0.0 => cfg.interval_secs = s,
        Some(_) => {
            let why = "--interval must be a positive number of seconds".to_string();
            return Err(super::CliError::Usage(why).into());
        }
        None => {}
    }
    cfg.low_bandwidth |= args.low_bandwidth;
    Ok(cfg)
}

pub fn collector(paths: &HostPaths) -> eyre::Result<Collector> {
    let root = paths.sys_root()?;
    // No runtime directory: nothing can run, but the host and the definitions still show.
    let run_root = RunRoot::resolve(paths.run_dir.as_deref()).ok();
    Ok(Collector::new(root, run_root, paths.state_dir.clone()))
}

/// `top --batch`: samples printed one interval apart. The full-screen `top` is the
/// console's loop opened on its dashboard, which the binary starts.
pub fn run(paths: &HostPaths, args: TopArgs) -> eyre::Result<()> {
    // With --json a failure (a bad --host-root, a bad setting) is one more line, with `error`.
    super::doc::begin_lines(args.json, super::doc::version::TOP_SAMPLE, &[]);
    let cfg = settings(&args)?;
    let collector = collector(paths)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("Cannot start the runtime")?;
    let out = std::io::stdout();
    runtime.block_on(batch(collector, cfg.interval(), &args, &mut out.lock()))
}

/// A baseline sample, then `iterations` samples one interval apart, each printed as it comes.
pub async fn batch(
    mut collector: Collector,
    interval: Duration,
    args: &TopArgs,
    out: &mut impl Write,
) -> eyre::Result<()> {
    collector.api_timeout =
        (interval * 4 / 5).clamp(Duration::from_millis(200), Duration::from_secs(2));
    // Batch output needs the latest figures only, not the history the screens draw.
    let mut model = Model::new(2);
    model.apply(collector.sample().await);
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    let mut n = 0u64;
    while args.iterations.is_none_or(|max| n < max) {
        ticker.tick().await;
        model.apply(collector.sample().await);
        n += 1;
        let text = if args.json {
            json_line(&model)
        } else {
            crate::fmt::printable_text(&text_block(&model)).into_owned()
        };
        super::output::write_to(out, &text)?;
    }
    Ok(())
}

pub fn json_line(model: &Model) -> String {
    let sample = SampleJson {
        time: (model.unix_secs * 1000.0).round() / 1000.0,
        interval_secs: (model.interval_secs * 1000.0).round() / 1000.0,
        host: model.host.stats.as_ref(),
        vms: model.vms.values().map(|h| &h.stats).collect(),
    };
    let v = super::doc::version::TOP_SAMPLE;
    super::doc::to_line(v, &sample).unwrap_or_else(|e| {
        format!(
            "{{\"schema_version\":{v},\"error\":{{\"message\":{},\"causes\":[]}}}}\n",
            serde_json::to_string(&e.to_string()).unwrap_or_else(|_| "\"\"".into())
        )
    })
}

pub fn text_block(model: &Model) -> String {
    let mut s = String::new();
    if let Some(h) = &model.host.stats {
        s.push_str(&format!(
            "host cpu {}%  mem {}/{}  load {:.2} {:.2} {:.2}\n",
            fmt::percent(h.cpu_percent),
            fmt::bytes(h.memory_used_bytes),
            fmt::bytes(h.memory_total_bytes),
            h.load[0],
            h.load[1],
            h.load[2]
        ));
    }
    s.push_str(&format!(
        "{:<16} {:<12} {:>5} {:<16} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {}\n",
        "NAME",
        "STATE",
        "CPU%",
        "VCPUS%",
        "RSS",
        "GUEST",
        "DISK_R",
        "DISK_W",
        "NET_RX",
        "NET_TX",
        "VCPU_ON"
    ));
    for h in model.vms.values() {
        let v = &h.stats;
        let vcpus: Vec<String> = v.vcpus.iter().map(|c| format!("{c:.0}")).collect();
        // The host CPU each vCPU last ran on, by vCPU index.
        let on: Vec<String> = v
            .vcpu_host_cpus
            .iter()
            .map(|c| c.map_or("-".into(), |c| c.to_string()))
            .collect();
        s.push_str(&format!(
            "{:<16} {:<12} {:>5} {:<16} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {}\n",
            fmt::printable(&v.name),
            fmt::printable(&v.state),
            fmt::percent(v.cpu_percent),
            if vcpus.is_empty() {
                "-".to_string()
            } else {
                vcpus.join(",")
            },
            v.memory_rss_bytes.map_or("-".into(), fmt::bytes),
            v.memory_guest_bytes.map_or("-".into(), fmt::bytes),
            fmt::rate(v.disk_read_bps),
            fmt::rate(v.disk_write_bps),
            fmt::rate(v.net_rx_bps),
            fmt::rate(v.net_tx_bps),
            if on.is_empty() {
                "-".to_string()
            } else {
                on.join(",")
            },
        ));
    }
    s.push('\n');
    s
}
