use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use eyre::{bail, WrapErr};

use phyllome::cli::{self, Cli, CliError, Command, ConsoleArgs};
use phyllome::ops::HostPaths;
use phyllome::term::{self, TermProfile};
use phyllome::tui::{self, ConsoleOptions};

/// Exit codes: see [`cli::exit`]. Usage errors are clap's (it prints them and exits with 2).
fn main() -> ExitCode {
    cli::report::install();
    let args = Cli::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::report::fail(&e),
    }
}

fn run(args: Cli) -> eyre::Result<()> {
    // Commands for scripts say what went wrong on the side on stderr; full-screen ones
    // (the console, interactive `top`) log to a file instead.
    let full_screen = match &args.command {
        None => true,
        Some(Command::Top(top)) => !top.batch,
        Some(_) => false,
    };
    if !full_screen {
        init_stderr_log();
    }
    let paths = args.global.paths();
    match args.command {
        Some(Command::Host { json, action }) => cli::host::dispatch(&paths, json, action),
        Some(Command::Vm(cmd)) => cli::vm::run(&paths, cmd),
        Some(Command::Gpu(cmd)) => cli::gpu::run(&paths, cmd),
        Some(Command::Disk(cmd)) => cli::disk::run(&paths, cmd),
        Some(Command::Autostart { json }) => cli::vm_run::autostart(&paths, json),
        Some(Command::Completions { shell }) => Ok(cli::docs::completions(shell)?),
        Some(Command::Man { dir }) => {
            for page in cli::docs::man_pages(&dir)? {
                phyllome::outln!("{}", page.display())?;
            }
            Ok(())
        }
        Some(Command::Top(top)) if top.batch => cli::top::run(&paths, top),
        Some(Command::Top(top)) => run_top(paths, top),
        None => run_console(paths, args.console),
    }
}

fn run_console(paths: HostPaths, args: ConsoleArgs) -> eyre::Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("The console needs a terminal; for scripts use `phyllome host --json`");
    }
    // Checked before anything touches the terminal, so mistakes print plainly.
    let size = args
        .size
        .as_deref()
        .map(term::parse_size)
        .transpose()
        .map_err(|e| CliError::BadFlag {
            flag: "--size",
            source: e.into(),
        })?;
    // A bad host root is reported before the terminal is touched.
    paths.sys_root()?;
    if let Some(p) = args.monitor_config.as_ref().filter(|p| !p.is_file()) {
        return Err(
            CliError::Usage(format!("--monitor-config {}: no such file", p.display())).into(),
        );
    }
    let monitor_path = args
        .monitor_config
        .clone()
        .or_else(cli::top::default_config_path);
    let monitor = phyllome::monitor::MonitorConfig::load(monitor_path.as_deref())?;
    let _log_guard = init_log(args.log.clone());
    let outcome = term::ensure_size(size).wrap_err("Cannot size the terminal")?;
    tracing::info!("terminal size: {outcome}");
    let profile = TermProfile::from_env(args.ascii);
    tracing::info!(?profile, "terminal profile");
    let mut options = console_options(paths, profile, args.keymap);
    options.read_only = args.read_only;
    options.esc_delay = Duration::from_millis(args.esc_delay);
    block_on(tui::run_with(options, monitor))
}

/// Full-screen `top`: the console's loop on its dashboard alone, which changes nothing.
fn run_top(paths: HostPaths, args: cli::top::TopArgs) -> eyre::Result<()> {
    let monitor = cli::top::settings(&args)?;
    paths.sys_root()?;
    if !std::io::stdout().is_terminal() {
        let why =
            "`phyllome top` needs a terminal; for scripts use `phyllome top --batch [--json]`";
        return Err(CliError::Usage(why.into()).into());
    }
    let mut options = console_options(paths, TermProfile::from_env(args.ascii), None);
    options.read_only = true;
    options.top = true;
    options.esc_delay = Duration::from_millis(args.esc_delay);
    block_on(tui::run_with(options, monitor))
}

fn console_options(
    paths: HostPaths,
    profile: TermProfile,
    keymap: Option<PathBuf>,
) -> ConsoleOptions {
    ConsoleOptions {
        paths,
        read_only: false,
        profile,
        keymap: keymap.or_else(default_user_keymap),
        requery_size: Some(term::requery_size),
        top: false,
        esc_delay: tui::escape::DEFAULT_ESC_DELAY,
    }
}

fn block_on(console: impl std::future::Future<Output = eyre::Result<()>>) -> eyre::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("Cannot start the runtime")?
        .block_on(console)
}

/// The first `keymap.toml` found (see [`phyllome::config_paths`]).
fn default_user_keymap() -> Option<PathBuf> {
    phyllome::config_paths::find("keymap.toml")
}

/// Warnings (a systemd bus that does not answer, a release that failed) on stderr;
/// `PHYLLOME_LOG` sets another level, e.g. `debug`.
fn init_stderr_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHYLLOME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Logs never go to the terminal (they would tear the screen): `--log FILE`, else the journal
/// under systemd, else a rotated file ([`phyllome::logging`]).
fn init_log(explicit: Option<PathBuf>) -> Option<()> {
    use phyllome::logging;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHYLLOME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if explicit.is_none() && logging::journald_here() {
        if let Ok(journal) = tracing_journald::layer() {
            return tracing_subscriber::registry()
                .with(filter)
                .with(journal.with_syslog_identifier("phyllome".into()))
                .try_init()
                .ok();
        }
    }
    let path = match explicit {
        Some(p) => p,
        None => logging::default_log_path().ok()?,
    };
    let file = logging::RotatingFile::open(&path, logging::ROTATE_BYTES).ok()?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .ok()
}
