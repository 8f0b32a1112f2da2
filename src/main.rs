use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Parser;
use color_eyre::eyre::{bail, WrapErr};

use phyllome::cli::{self, Cli, Command, ConsoleArgs, GlobalArgs};
use phyllome::term::{self, TermProfile};
use phyllome::tui::{self, ConsoleOptions};

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let args = Cli::parse();
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
    match args.command {
        Some(Command::Host { json }) => {
            cli::host::run(&args.global, json).wrap_err("phyllome host failed")?
        }
        Some(Command::Vm(cmd)) => cli::vm::run(&args.global, cmd)?,
        Some(Command::Gpu(cmd)) => cli::gpu::run(&args.global, cmd)?,
        Some(Command::Autostart) => cli::vm_run::autostart(&args.global)?,
        Some(Command::Top(top)) if top.batch => cli::top::run(&args.global, top)?,
        Some(Command::Top(top)) => run_top(&args.global, top)?,
        None => run_console(&args.global, args.console)?,
    }
    Ok(())
}

fn run_console(global: &GlobalArgs, args: ConsoleArgs) -> color_eyre::Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!("The console needs a terminal; for scripts use `phyllome host --json`");
    }
    // Checked before anything touches the terminal, so mistakes print plainly.
    let size = args
        .size
        .as_deref()
        .map(term::parse_size)
        .transpose()
        .wrap_err("Bad --size")?;
    // A bad host root is reported before the terminal is touched.
    global.sys_root()?;
    if let Some(p) = args.monitor_config.as_ref().filter(|p| !p.is_file()) {
        bail!("--monitor-config {}: no such file", p.display());
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
    let mut options = console_options(global, profile, args.keymap)?;
    options.read_only = args.read_only;
    block_on(tui::run_with(options, monitor))
}

/// Full-screen `top`: the console's loop on its dashboard alone, which changes nothing.
fn run_top(global: &GlobalArgs, args: cli::top::TopArgs) -> color_eyre::Result<()> {
    let monitor = cli::top::settings(&args)?;
    if !std::io::stdout().is_terminal() {
        bail!("`phyllome top` needs a terminal; for scripts use `phyllome top --batch [--json]`");
    }
    let mut options = console_options(global, TermProfile::from_env(args.ascii), None)?;
    options.read_only = true;
    options.top = true;
    block_on(tui::run_with(options, monitor))
}

fn console_options(
    global: &GlobalArgs,
    profile: TermProfile,
    keymap: Option<PathBuf>,
) -> color_eyre::Result<ConsoleOptions> {
    Ok(ConsoleOptions {
        host_root: global.sys_root()?.root().to_path_buf(),
        read_only: false,
        profile,
        keymap: keymap.or_else(default_user_keymap),
        ch_bin: global.ch_bin.clone(),
        state_dir: global.state_dir.clone(),
        run_dir: global.run_dir.clone(),
        requery_size: Some(term::requery_size),
        top: false,
    })
}

fn block_on(
    console: impl std::future::Future<Output = color_eyre::Result<()>>,
) -> color_eyre::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("Cannot start the runtime")?
        .block_on(console)
}

/// `~/.config/phyllome/keymap.toml` when it exists.
fn default_user_keymap() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "phyllome")?;
    let path = dirs.config_dir().join("keymap.toml");
    path.is_file().then_some(path)
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

/// Logs go to a file: anything written to the terminal would tear the screen.
fn init_log(explicit: Option<PathBuf>) -> Option<()> {
    let path = explicit.or_else(|| {
        let dirs = directories::ProjectDirs::from("", "", "phyllome")?;
        let dir = dirs.state_dir().unwrap_or(dirs.cache_dir()).to_path_buf();
        std::fs::create_dir_all(&dir).ok()?;
        Some(dir.join("console.log"))
    })?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHYLLOME_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init()
        .ok()
}
