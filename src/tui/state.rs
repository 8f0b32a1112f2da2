//! Everything the views draw from. Plain data, changed only by [`super::update::update`].

use phyllome_widgets::{Glyphs, GroupTreeState, HelpSection, KeyHint, Palette};

use crate::host::Inventory;

use super::action::Action;
use super::keymap::Keymap;
use super::vms::VmsState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Overview,
    Groups,
    Gpus,
    Kvm,
    Vms,
    Dashboard,
    /// The host's status page: name, addresses, time, the journal.
    Host,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Overview,
        View::Groups,
        View::Gpus,
        View::Kvm,
        View::Vms,
        View::Dashboard,
        View::Host,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "Overview",
            View::Groups => "IOMMU groups",
            View::Gpus => "GPUs",
            View::Kvm => "KVM",
            View::Vms => "VMs",
            View::Dashboard => "Dashboard",
            View::Host => "Host",
        }
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    pub fn next(self) -> View {
        View::ALL[(self.index() + 1) % View::ALL.len()]
    }

    pub fn prev(self) -> View {
        View::ALL[(self.index() + View::ALL.len() - 1) % View::ALL.len()]
    }
}

/// How the screen is drawn: glyph set and colours, from the terminal profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub glyphs: Glyphs,
    pub palette: Palette,
}

impl Theme {
    pub fn new(ascii: bool, color: bool) -> Self {
        Self::with_glyphs(Glyphs::new(ascii), color)
    }

    /// The glyphs of a terminal (see [`Glyphs::for_terminal`]) and colours or none.
    pub fn with_glyphs(glyphs: Glyphs, color: bool) -> Self {
        Self {
            glyphs,
            palette: Palette::new(color),
        }
    }
}

/// The filter prompt: rows whose text contains `text` (case-insensitive) stay visible.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    /// True while the prompt takes keystrokes.
    pub editing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    Loading,
    Loaded,
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct State {
    pub view: View,
    pub theme: Theme,
    pub read_only: bool,
    pub inventory: Option<Inventory>,
    pub host_name: Option<String>,
    pub load: Load,
    /// A refresh asked for while one runs: run it once the current one finishes.
    pub reload_queued: bool,
    pub cols: u16,
    pub rows: u16,
    /// Help popup scroll position, when open.
    pub help: Option<usize>,
    pub filter: Filter,
    pub groups: GroupTreeState,
    pub gpu_selected: usize,
    /// Scroll of the text-only views.
    pub overview_scroll: usize,
    pub kvm_scroll: usize,
    /// Bottom bar of the host views.
    pub hints: Vec<KeyHint>,
    /// Bottom bar of the VM screens: their actions first.
    pub vm_hints: Vec<KeyHint>,
    pub vms: VmsState,
    /// Bottom bar of the Host view: refresh and scrolling the journal first.
    pub host_hints: Vec<KeyHint>,
    /// Bottom bar of the GPU screen: its operations first.
    pub gpu_hints: Vec<KeyHint>,
    /// The GPU screen's operation under way, boot preview and device states.
    pub gpu: super::gpus::GpuState,
    pub help_sections: Vec<HelpSection>,
    /// The dashboard: figures and history of every VM, fed by the sampling task.
    pub dash: crate::monitor::dashboard::Dashboard,
    /// The sampling task runs (started when the dashboard is first opened).
    pub monitor_started: bool,
    /// Bottom bar of the dashboard, and of one VM's charts there.
    pub dash_hints: Vec<KeyHint>,
    pub dash_chart_hints: Vec<KeyHint>,
    /// `phyllome top`: the dashboard alone (see [`State::open_top`]).
    pub top: bool,
    /// The Host view's status page, read in the background.
    pub host: super::host::HostView,
    /// The serial pane, when open (over the VM screens).
    pub serial: Option<super::serial::SerialPane>,
    /// "Shut down or restart" (F12), when open.
    pub power: Option<super::power::PowerPopup>,
    pub quit: bool,
}

impl State {
    pub fn new(keymap: &Keymap, theme: Theme, read_only: bool, cols: u16, rows: u16) -> Self {
        Self {
            view: View::Overview,
            theme,
            read_only,
            inventory: None,
            host_name: None,
            load: Load::Loading,
            reload_queued: false,
            cols,
            rows,
            help: None,
            filter: Filter::default(),
            groups: GroupTreeState::default(),
            gpu_selected: 0,
            overview_scroll: 0,
            kvm_scroll: 0,
            hints: keymap.hints_where(|a| {
                !a.is_vm_action() && !a.is_gpu_action() && !a.is_dashboard_action()
            }),
            vm_hints: {
                let mut h = keymap.hints_where(Action::is_vm_action);
                h.extend(
                    keymap
                        .hints_where(|a| matches!(a, Action::Back | Action::Filter | Action::Help)),
                );
                h
            },
            vms: VmsState::default(),
            host_hints: {
                let mut h = keymap.hints_where(|a| matches!(a, Action::Back | Action::Refresh));
                if let (Some(up), Some(down)) =
                    (keymap.first_key(Action::Up), keymap.first_key(Action::Down))
                {
                    h.push(KeyHint::new(format!("{up}/{down}"), "journal", false));
                }
                h.extend(keymap.hints_where(|a| a.switches_view() || *a == Action::Help));
                h
            },
            gpu_hints: {
                let mut h = keymap.hints_where(|a| {
                    a.is_gpu_action()
                        && !matches!(a, Action::GpuBootInstall | Action::GpuBootUninstall)
                });
                // The operations fill an 80-column bar: help is the way to the rest.
                h.extend(keymap.hints_where(|a| matches!(a, Action::Help)));
                h
            },
            gpu: Default::default(),
            help_sections: keymap.help(),
            dash: crate::monitor::dashboard::Dashboard::new(
                crate::monitor::history::DEFAULT_HISTORY,
                std::time::Duration::from_secs(1),
                false,
            ),
            monitor_started: false,
            dash_hints: {
                let mut h = keymap.hints_where(|a| {
                    a.is_dashboard_action()
                        || matches!(a, Action::Open | Action::Back | Action::Filter)
                });
                // `+` and `-` read best as one hint.
                h.push(KeyHint::new("+/-".to_string(), "interval", false));
                h.extend(keymap.hints_where(|a| matches!(a, Action::Help)));
                h
            },
            dash_chart_hints: {
                let mut h = keymap.hints_where(|a| matches!(a, Action::Back));
                h.push(KeyHint::new("+/-".to_string(), "interval", false));
                h.extend(keymap.hints_where(|a| matches!(a, Action::Help)));
                h
            },
            top: false,
            host: Default::default(),
            serial: None,
            power: None,
            quit: false,
        }
    }

    /// `phyllome top`: the dashboard alone. No other view is reachable, Back at the table
    /// quits, and the bar and help speak of the dashboard only; the keys are the keymap's.
    pub fn open_top(&mut self, keymap: &Keymap) {
        self.top = true;
        self.view = View::Dashboard;
        self.monitor_started = true;
        let key = |a: Action| keymap.first_key(a);
        // Worded for this screen: Enter opens charts, Back leaves the program.
        self.dash_hints = [
            (key(Action::Open), "charts"),
            (key(Action::Sort), "sort"),
            (key(Action::Filter), "filter"),
            (Some("+/-".to_string()), "interval"),
            (key(Action::Back), "quit"),
        ]
        .into_iter()
        .filter_map(|(k, what)| Some(KeyHint::new(k?, what, false)))
        .collect();
        // Only what works here: no views, no VM or GPU actions, nothing to refresh.
        self.help_sections = keymap.help_where(|a| {
            *a == Action::Open
                || !(a.switches_view()
                    || a.is_vm_action()
                    || a.is_gpu_action()
                    || matches!(a, Action::Refresh | Action::HostPower))
        });
    }

    /// The terminal is big enough for the layouts.
    pub fn fits(&self) -> bool {
        self.cols >= MIN_COLS && self.rows >= MIN_ROWS
    }
}

pub const MIN_COLS: u16 = 80;
pub const MIN_ROWS: u16 = 24;
