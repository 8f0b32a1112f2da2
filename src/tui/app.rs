//! The runtime: one `tokio::select!` loop over terminal events, results of background work
//! and timers. It turns actions into state changes through `update` and carries out the
//! effects; it draws only when something changed, at most once per frame interval.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{Event, EventStream};
use futures::{FutureExt, Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::Terminal;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::host::SysRoot;
use crate::ops::HostPaths;
use crate::term::{SizeOutcome, TermError, TermProfile};

use crate::monitor::{Collector, MonitorConfig};

use crate::monitor::dashboard::Dashboard;

use super::action::{Action, Loaded, MonitorSample};
use super::escape::EscJoin;
use super::input::translate;
use super::keymap::Keymap;
use super::state::{State, Theme};
use super::update::{update, Effect};
use super::view;
use super::vm_runtime::VmBackend;

/// ~60 frames a second at most; on a serial line ratatui's diffing keeps each frame small.
const FRAME: Duration = Duration::from_millis(16);
/// How often to look at the terminal size: a serial line never signals a resize.
const SIZE_POLL: Duration = Duration::from_secs(1);
/// The VM screens' clock: countdowns of graceful stops (the list refreshes every other tick).
const VM_TICK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// The host: `/` on a real one, a fixture tree (with `simulate`) in tests and demos.
    pub paths: HostPaths,
    /// Drop every binding that changes the host.
    pub read_only: bool,
    pub profile: TermProfile,
    /// User keymap merged over the built-in one.
    pub keymap: Option<PathBuf>,
    /// Asks the terminal for its size again (Ctrl-L). Serial lines never signal a resize,
    /// so this is how a new window size reaches the console. `None` in tests.
    pub requery_size: Option<fn() -> Result<SizeOutcome, TermError>>,
    /// `phyllome top`: open on the dashboard alone, sampling from the start; the host and
    /// the GPUs are never read.
    pub top: bool,
    /// How long a lone Esc waits for the rest of a split escape sequence
    /// ([`super::escape`]); zero turns the wait off.
    pub esc_delay: Duration,
}

/// Runs the console on the process's terminal until the user quits.
///
/// The keymap is read before the terminal is touched, so its errors print normally. The
/// terminal is restored on every return path; `ratatui::try_init` installs a panic hook that
/// restores it on panics too.
pub async fn run(opts: ConsoleOptions) -> eyre::Result<()> {
    run_with(opts, MonitorConfig::default()).await
}

/// [`run`] with the dashboard's settings (`monitor.toml` or `--monitor-config`).
pub async fn run_with(opts: ConsoleOptions, monitor: MonitorConfig) -> eyre::Result<()> {
    let keymap = Keymap::load(opts.keymap.as_deref(), opts.read_only)?;
    let mut first = Vec::new();
    loop {
        let result = match ratatui::try_init() {
            Ok(mut terminal) => {
                let events = EventStream::new();
                let first = std::mem::take(&mut first);
                run_until(
                    &mut terminal,
                    events,
                    keymap.clone(),
                    &opts,
                    &monitor,
                    first,
                )
                .await
            }
            Err(e) => Err(e.into()),
        };
        ratatui::restore();
        // The terminal is the user's again before logind takes the host down; when logind
        // refuses, the console comes back with the refusal in its error popup.
        match result? {
            Exit::Quit => return Ok(()),
            Exit::Power(action) => {
                match super::power_runtime::power_now(opts.paths.clone(), action).await {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        tracing::warn!(error = %crate::error::Chain(&e), "logind refused");
                        first.push(Action::PowerFailed {
                            action,
                            error: crate::vmm::worker::ActionError::new(&e),
                        });
                    }
                }
            }
        }
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The user quit, or the events ended.
    Quit,
    /// Every VM is stopped: the host is to be powered off or rebooted (by the caller, once
    /// the terminal is restored).
    Power(crate::ops::power::PowerAction),
}

/// The event loop on any backend and event stream; ends when the user quits or the stream
/// ends. Tests drive it with a `TestBackend` and a list of events.
pub async fn run_on<B, S>(
    terminal: &mut Terminal<B>,
    events: S,
    keymap: Keymap,
    opts: &ConsoleOptions,
) -> eyre::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = io::Result<Event>> + Unpin,
{
    run_on_with(terminal, events, keymap, opts, &MonitorConfig::default()).await
}

/// [`run_on`] with the dashboard's settings.
pub async fn run_on_with<B, S>(
    terminal: &mut Terminal<B>,
    events: S,
    keymap: Keymap,
    opts: &ConsoleOptions,
    monitor_cfg: &MonitorConfig,
) -> eyre::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = io::Result<Event>> + Unpin,
{
    run_until(terminal, events, keymap, opts, monitor_cfg, Vec::new())
        .await
        .map(|_| ())
}

/// [`run_on_with`], `first` applied before any event, until the user quits or the host is
/// to go down ([`Exit`]).
pub async fn run_until<B, S>(
    terminal: &mut Terminal<B>,
    mut events: S,
    keymap: Keymap,
    opts: &ConsoleOptions,
    monitor_cfg: &MonitorConfig,
    first: Vec<Action>,
) -> eyre::Result<Exit>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    S: Stream<Item = io::Result<Event>> + Unpin,
{
    let size = terminal.size()?;
    let theme = Theme::with_glyphs(
        phyllome_widgets::Glyphs::for_terminal(opts.profile.ascii, opts.profile.linux_console),
        opts.profile.color && !monitor_cfg.low_bandwidth,
    );
    let mut state = State::new(&keymap, theme, opts.read_only, size.width, size.height);
    state.dash = Dashboard::new(
        monitor_cfg.history,
        monitor_cfg.interval(),
        monitor_cfg.low_bandwidth,
    );
    // Started when the dashboard is first opened, so a console that never shows it reads
    // nothing more than before; aborted when this loop ends.
    let mut monitor: Option<Sampler> = None;
    let (tx, mut rx) = mpsc::unbounded_channel::<Action>();
    if opts.top {
        state.open_top(&keymap);
        monitor = Some(Sampler::start(opts, state.dash.interval, &tx));
    } else {
        load(&tx, opts);
    }
    let vms = VmBackend::start(&opts.paths, tx.clone());
    let gpus = super::gpu_runtime::GpuBackend::new(opts.paths.clone(), tx.clone());
    let mut serial = super::serial_runtime::SerialBackend::new(opts.paths.clone(), tx.clone());
    if !opts.top {
        gpus.run(super::gpus::GpuJob::LoadStates);
    }
    let power = super::power_runtime::PowerBackend::new(opts.paths.clone(), tx.clone());
    for action in first {
        update(&mut state, action);
    }
    let mut vm_tick = tokio::time::interval(VM_TICK);
    vm_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    let mut size_poll = tokio::time::interval(SIZE_POLL);
    size_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    // Terminal events the escape stage let through, each translated against the state the
    // ones before it left.
    let mut esc = EscJoin::new(opts.esc_delay);
    let mut ready: VecDeque<Event> = VecDeque::new();
    let mut ended = false;
    loop {
        let now = Instant::now();
        let due = last_draw.map_or(now, |t| t + FRAME);
        if dirty && now >= due {
            terminal.draw(|f| view::render(&state, f))?;
            dirty = false;
            last_draw = Some(now);
        }
        let held = esc.deadline();
        let action = if let Some(event) = ready.pop_front() {
            translate(&state, &keymap, &event)
        } else if ended {
            return Ok(Exit::Quit);
        } else {
            tokio::select! {
                event = events.next() => {
                    ended = input(&mut esc, &mut ready, event)?;
                    None
                }
                _ = tokio::time::sleep_until(held.unwrap_or(now)), if held.is_some() => {
                    // Keys that came while this process waited for the CPU came in time.
                    match events.next().now_or_never() {
                        Some(event) => ended = input(&mut esc, &mut ready, event)?,
                        None => ready.extend(esc.expire()),
                    }
                    None
                }
                Some(action) = rx.recv() => Some(action),
                _ = size_poll.tick() => resized(terminal, &state)?,
                at = vm_tick.tick() => Some(Action::VmTick(at.into_std())),
                _ = tokio::time::sleep_until(due), if dirty => None,
            }
        };
        let Some(action) = action else { continue };
        // The first complete screen should not wait out the loading frame's interval.
        if matches!(action, Action::InventoryLoaded(_)) && state.inventory.is_none() {
            last_draw = None;
        }
        let effects = update(&mut state, action);
        // Background refreshes that found nothing new draw nothing (serial lines).
        if !effects.contains(&Effect::NoRedraw) {
            dirty = true;
        }
        for effect in effects {
            match effect {
                Effect::Quit => return Ok(Exit::Quit),
                Effect::PowerPlan => power.plan(),
                Effect::PowerStop(action) => power.stop(action),
                Effect::PowerCall(action) => {
                    terminal.draw(|f| view::render(&state, f))?;
                    return Ok(Exit::Power(action));
                }
                Effect::NoRedraw => {}
                Effect::RefreshVms => vms.refresh(),
                Effect::Vm(req) => vms.request(req),
                Effect::LoadVmDetail(name) => vms.load_detail(name),
                Effect::LoadVmForEdit(name) => vms.load_for_edit(name),
                Effect::SaveVm(req) => vms.save(req),
                Effect::ReloadInventory => {
                    load(&tx, opts);
                    gpus.run(super::gpus::GpuJob::LoadStates);
                }
                Effect::Gpu(job) => gpus.run(job),
                Effect::LoadHostStatus => load_host_status(&tx, opts),
                Effect::SerialOpen { vm, mode } => serial.open(vm, mode),
                Effect::SerialSend(bytes) => serial.send(bytes),
                Effect::SerialClose => serial.close(),
                Effect::StartMonitor => {
                    if monitor.is_none() {
                        monitor = Some(Sampler::start(opts, state.dash.interval, &tx));
                    }
                }
                Effect::MonitorInterval(i) => {
                    if let Some(m) = &monitor {
                        // The task is gone only when the loop ends; nothing to tell then.
                        let _ = m.interval.send(i);
                    }
                }
                Effect::Redraw => terminal.clear()?,
                Effect::QueryTerminalSize => {
                    // Runs right after the key that asked for it was read, while the event
                    // stream is not polling: crossterm's reader then hands over the reply.
                    if let Some(requery) = opts.requery_size {
                        match requery() {
                            Ok(outcome) => tracing::info!("terminal size: {outcome}"),
                            Err(e) => tracing::warn!("terminal size query failed: {e}"),
                        }
                    }
                    if let Some(a) = resized(terminal, &state)? {
                        update(&mut state, a);
                    }
                    terminal.clear()?;
                }
            }
        }
    }
}

/// One item of the terminal's event stream through the escape stage into `ready`; true when
/// the input ended (what was held then goes on as typed).
fn input(
    esc: &mut EscJoin,
    ready: &mut VecDeque<Event>,
    item: Option<io::Result<Event>>,
) -> io::Result<bool> {
    match item {
        Some(event) => {
            ready.extend(esc.push(event?, Instant::now()));
            Ok(false)
        }
        None => {
            ready.extend(esc.expire());
            Ok(true)
        }
    }
}

/// The dashboard's sampling task and the way to change its interval. Dropping it stops the
/// task, so a console that returns leaves nothing sampling behind it.
struct Sampler {
    interval: tokio::sync::watch::Sender<Duration>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    fn start(
        opts: &ConsoleOptions,
        interval: Duration,
        tx: &mpsc::UnboundedSender<Action>,
    ) -> Self {
        let root = SysRoot::new(opts.paths.host_root.clone());
        // No runtime directory: nothing can run; the host and the definitions still show.
        let run_root = opts.paths.run_root().ok();
        let collector = Collector::new(root, run_root, opts.paths.state_dir.clone());
        let (itx, irx) = tokio::sync::watch::channel(interval);
        let tx = tx.clone();
        let task = crate::monitor::task::spawn(collector, irx, move |s| {
            tx.send(Action::MonitorSample(Box::new(MonitorSample(s))))
                .is_ok()
        });
        Sampler {
            interval: itx,
            task,
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A resize action when the terminal's size differs from the state's.
fn resized<B: Backend>(
    terminal: &mut Terminal<B>,
    state: &State,
) -> Result<Option<Action>, B::Error> {
    terminal.autoresize()?;
    let size = terminal.size()?;
    // A serial tty reports 0x0 until sized: keep the last known size rather than blank out.
    if size.width == 0 || size.height == 0 || (size.width, size.height) == (state.cols, state.rows)
    {
        return Ok(None);
    }
    Ok(Some(Action::Resize {
        cols: size.width,
        rows: size.height,
    }))
}

/// Reads the host on a blocking thread and sends the result back as an action.
fn load(tx: &mpsc::UnboundedSender<Action>, opts: &ConsoleOptions) {
    let tx = tx.clone();
    let paths = opts.paths.clone();
    tokio::spawn(async move {
        let task = tokio::task::spawn_blocking(move || {
            crate::ops::host::read(&paths).map(|host| Loaded {
                host_name: crate::ops::host::host_name(&host.root),
                inventory: host.inventory,
            })
        });
        let action = match task.await {
            Ok(Ok(loaded)) => Action::InventoryLoaded(Box::new(loaded)),
            Ok(Err(e)) => Action::InventoryFailed(crate::vfio::error_chain(&e)),
            Err(e) => Action::InventoryFailed(format!("reading the host failed: {e}")),
        };
        // The loop may have ended meanwhile; nobody is left to tell.
        let _ = tx.send(action);
    });
}

/// Reads the Host view's status on a blocking thread (files, netlink, `journalctl`, the bus)
/// and sends it back as an action.
fn load_host_status(tx: &mpsc::UnboundedSender<Action>, opts: &ConsoleOptions) {
    let tx = tx.clone();
    let paths = opts.paths.clone();
    tokio::spawn(async move {
        let task = tokio::task::spawn_blocking(move || {
            crate::ops::host_status::status(&paths, super::host::JOURNAL_LINES)
                .map_err(|e| crate::vfio::error_chain(&e))
        });
        let result = task
            .await
            .unwrap_or_else(|e| Err(format!("reading the host's status failed: {e}")));
        // The loop may have ended meanwhile; nobody is left to tell.
        let _ = tx.send(Action::HostStatusLoaded(Box::new(result)));
    });
}
