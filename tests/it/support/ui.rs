//! Driving the console as a user would. [`Ui`] holds the state and the keymap and feeds keys
//! through `translate` and `update`, as the loop does, then draws on a `TestBackend`; the
//! free functions script the real loop (`run_on`): key events, paced streams and options.
//!
//! Keys are written as in `config/keymap.toml`: one character, or `<name>` for a named key
//! (`<enter>`, `<tab>`, `<F3>`, `<esc>`).

use std::io;
use std::path::Path;
use std::time::Duration;

use crossterm::event::{Event, KeyEvent};
use futures::stream::BoxStream;
use futures::StreamExt;
use phyllome::ops::HostPaths;
use phyllome::term::TermProfile;
use phyllome::tui::input::translate;
use phyllome::tui::keymap::Key;
use phyllome::tui::vms::VmRow;
use phyllome::tui::{update, view, Action, ConsoleOptions, Effect, Keymap, State, Theme};
use phyllome::vmm::manager::RunState;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

pub struct Ui {
    pub state: State,
    pub keymap: Keymap,
    /// The effects of the last `update`: what the loop would run after that key or action.
    pub effects: Vec<Effect>,
    /// Every effect so far, in order.
    pub all_effects: Vec<Effect>,
}

impl Ui {
    pub fn new(state: State, keymap: Keymap) -> Ui {
        Ui {
            state,
            keymap,
            effects: Vec::new(),
            all_effects: Vec::new(),
        }
    }

    /// Types `keys`; a key the keymap does not bind here does nothing, as in the loop.
    pub fn keys(&mut self, keys: &str) -> &mut Self {
        for ev in events(keys) {
            if let Some(action) = translate(&self.state, &self.keymap, &ev) {
                self.act(action);
            }
        }
        self
    }

    /// What `key` would do now, without doing it.
    pub fn action_of(&self, key_name: &str) -> Option<Action> {
        translate(&self.state, &self.keymap, &key(key_name))
    }

    pub fn act(&mut self, action: Action) -> &mut Self {
        self.effects = update(&mut self.state, action);
        self.all_effects.extend(self.effects.iter().cloned());
        self
    }

    pub fn buffer(&self) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(self.state.cols, self.state.rows)).unwrap();
        t.draw(|f| view::render(&self.state, f)).unwrap();
        t.backend().buffer().clone()
    }

    pub fn screen(&self) -> String {
        let mut t = Terminal::new(TestBackend::new(self.state.cols, self.state.rows)).unwrap();
        t.draw(|f| view::render(&self.state, f)).unwrap();
        t.backend().to_string()
    }
}

/// One key by its keymap name (`j`, `enter`, `F3`, `ctrl-c`).
pub fn key(name: &str) -> Event {
    let key: Key = name.parse().expect("key name");
    Event::Key(KeyEvent::new(key.code, key.mods))
}

/// The key events of `keys` (see the module docs).
pub fn events(keys: &str) -> Vec<Event> {
    let mut out = Vec::new();
    let mut rest = keys;
    while let Some(c) = rest.chars().next() {
        let (name, len) = match (c, rest.find('>')) {
            ('<', Some(end)) => (&rest[1..end], end + 1),
            _ => (&rest[..c.len_utf8()], c.len_utf8()),
        };
        rest = &rest[len..];
        out.push(key(name));
    }
    out
}

/// The events of `keys` as a terminal's event stream delivers them.
pub fn typed(keys: &str) -> Vec<io::Result<Event>> {
    events(keys).into_iter().map(Ok).collect()
}

/// `events` with a pause before each, so background reads and frames happen in between.
pub fn paced(
    events: Vec<io::Result<Event>>,
    every: Duration,
) -> BoxStream<'static, io::Result<Event>> {
    futures::stream::iter(events)
        .then(move |e| async move {
            tokio::time::sleep(every).await;
            e
        })
        .boxed()
}

/// A stream that yields nothing for `ms` and then ends (and with it the loop).
pub fn pause(ms: u64) -> BoxStream<'static, io::Result<Event>> {
    futures::stream::once(tokio::time::sleep(Duration::from_millis(ms)))
        .filter_map(|_| async { None })
        .boxed()
}

/// A UTF-8 xterm, whatever the terminal running the tests is.
pub fn utf8_profile() -> TermProfile {
    let env = |name: &str| match name {
        "LANG" => Some("C.UTF-8".to_string()),
        "TERM" => Some("xterm".to_string()),
        _ => None,
    };
    TermProfile::detect(env, false)
}

/// The console on `host_root`, with its state and run directories under `dir`: read-write,
/// on a UTF-8 xterm, no VMM binary.
/// A defined VM's list row: 2 vCPUs, 4 GiB, one disk, no NIC or device; tests change what
/// they show with `VmRow { nets: 1, ..vm_row(..) }`.
pub fn vm_row(name: &str, state: RunState) -> VmRow {
    VmRow {
        name: name.into(),
        state,
        defined: true,
        autostart: false,
        stop_timeout_secs: Some(60),
        vcpus: Some(2),
        memory_bytes: Some(4 << 30),
        uptime_secs: None,
        disks: 1,
        nets: 0,
        vfio: 0,
        error: None,
    }
}

/// The console on its VMs view with `rows` listed, the host read long ago (colour unless
/// ASCII).
pub fn vms_view(cols: u16, rows: u16, ascii: bool, read_only: bool, vms: Vec<VmRow>) -> Ui {
    let keymap = Keymap::load(None, read_only).expect("keymap");
    let mut state = State::new(&keymap, Theme::new(ascii, !ascii), read_only, cols, rows);
    state.host_name = Some("tower".into());
    state.load = phyllome::tui::state::Load::Loaded;
    update(&mut state, Action::ViewVms);
    update(&mut state, Action::VmsLoaded(Ok(vms)));
    Ui::new(state, keymap)
}

pub fn console(host_root: &Path, dir: &Path) -> ConsoleOptions {
    ConsoleOptions {
        paths: HostPaths {
            host_root: host_root.to_path_buf(),
            state_dir: Some(dir.join("state")),
            run_dir: Some(dir.join("run")),
            ch_bin: None,
            simulate: false,
        },
        read_only: false,
        profile: utf8_profile(),
        keymap: None,
        requery_size: None,
        top: false,
        esc_delay: phyllome::tui::escape::DEFAULT_ESC_DELAY,
    }
}
