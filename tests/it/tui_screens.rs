//! Snapshots of every console screen, driven through the keymap and `update` as a user would.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use phyllome::host::fixture::{presets, HostSpec};
use phyllome::host::{Inventory, SysRoot};
use phyllome::tui::action::Loaded;
use phyllome::tui::input::translate;
use phyllome::tui::{update, view, Action, Keymap, State, Theme, View};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;

fn inventory(spec: HostSpec) -> Inventory {
    let dir = tempfile::tempdir().expect("tempdir");
    spec.write(dir.path()).expect("fixture tree");
    Inventory::collect(&SysRoot::new(dir.path()))
}

struct Ui {
    state: State,
    keymap: Keymap,
}

impl Ui {
    fn new(spec: HostSpec, cols: u16, rows: u16, ascii: bool, color: bool) -> Ui {
        let keymap = Keymap::defaults().expect("keymap");
        let mut state = State::new(&keymap, Theme::new(ascii, color), false, cols, rows);
        let loaded = Loaded {
            inventory: inventory(spec),
            host_name: Some("tower".into()),
        };
        update(&mut state, Action::InventoryLoaded(Box::new(loaded)));
        Ui { state, keymap }
    }

    /// Types `keys`: single characters, or `<name>` for named keys (`<tab>`, `<F3>`, ...).
    fn keys(&mut self, keys: &str) -> &mut Self {
        let mut rest = keys;
        while let Some(c) = rest.chars().next() {
            let (name, len) = match (c, rest.find('>')) {
                ('<', Some(end)) => (&rest[1..end], end + 1),
                _ => (&rest[..c.len_utf8()], c.len_utf8()),
            };
            rest = &rest[len..];
            let key: phyllome::tui::keymap::Key = name.parse().expect("key name");
            let ev = Event::Key(KeyEvent::new(key.code, key.mods));
            // Filter text goes through the same path as the loop's.
            let ev = match (name, self.state.filter.editing) {
                ("esc", true) => Event::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)),
                _ => ev,
            };
            if let Some(action) = translate(&self.state, &self.keymap, &ev) {
                update(&mut self.state, action);
            }
        }
        self
    }

    fn screen(&self) -> String {
        let mut t = Terminal::new(TestBackend::new(self.state.cols, self.state.rows)).unwrap();
        t.draw(|f| view::render(&self.state, f)).unwrap();
        t.backend().to_string()
    }

    fn buffer(&self) -> ratatui::buffer::Buffer {
        let mut t = Terminal::new(TestBackend::new(self.state.cols, self.state.rows)).unwrap();
        t.draw(|f| view::render(&self.state, f)).unwrap();
        t.backend().buffer().clone()
    }
}

fn snap(name: &str, screen: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(format!("tui_{name}"), screen));
}

const VIEWS: [(&str, &str); 4] = [
    ("overview", "1"),
    ("groups", "2"),
    ("gpus", "3"),
    ("kvm", "4"),
];

#[test]
fn every_view_at_80x24_and_120x40() {
    for (cols, rows) in [(80, 24), (120, 40)] {
        for (name, key) in VIEWS {
            let mut ui = Ui::new(presets::desktop(), cols, rows, false, true);
            ui.keys(key);
            snap(&format!("{name}_{cols}x{rows}"), &ui.screen());
        }
    }
}

#[test]
fn every_view_in_ascii_is_pure_ascii() {
    for (name, key) in VIEWS {
        let mut ui = Ui::new(presets::laptop(), 80, 24, true, false);
        ui.keys(key);
        let screen = ui.screen();
        assert!(screen.is_ascii(), "{name} has non-ASCII:\n{screen}");
        snap(&format!("{name}_ascii_80x24"), &screen);
    }
    let mut ui = Ui::new(presets::laptop(), 80, 24, true, false);
    ui.keys("?");
    assert!(ui.screen().is_ascii());
}

#[test]
fn no_color_means_no_colour_anywhere() {
    for (name, key) in VIEWS {
        let mut ui = Ui::new(presets::two_gpus_shared_group(), 80, 24, false, false);
        ui.keys(key);
        for cell in ui.buffer().content() {
            assert!(
                cell.fg == Color::Reset && cell.bg == Color::Reset,
                "{name}: coloured cell {cell:?}"
            );
        }
    }
}

#[test]
fn help_popup() {
    let mut ui = Ui::new(presets::desktop(), 80, 24, false, true);
    ui.keys("2?");
    snap("help_80x24", &ui.screen());
    ui.keys("<end>");
    snap("help_80x24_scrolled", &ui.screen());
    // Esc closes help and stays on the view.
    ui.keys("<esc>");
    assert_eq!((ui.state.help, ui.state.view), (None, View::Groups));
}

#[test]
fn too_small_terminal_says_so() {
    let ui = Ui::new(presets::desktop(), 79, 24, false, true);
    let screen = ui.screen();
    assert!(
        screen.contains("terminal too small (79x24), need 80x24"),
        "{screen}"
    );
    let mut ui = Ui::new(presets::desktop(), 80, 24, false, true);
    update(&mut ui.state, Action::Resize { cols: 60, rows: 20 });
    snap("too_small_60x20", &ui.screen());
}

#[test]
fn before_the_first_read_it_says_it_is_reading() {
    let keymap = Keymap::defaults().unwrap();
    let state = State::new(&keymap, Theme::new(false, true), true, 80, 24);
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| view::render(&state, f)).unwrap();
    let screen = t.backend().to_string();
    assert!(screen.contains("Reading the host..."), "{screen}");
    assert!(screen.contains("read-only"), "{screen}");
}

#[test]
fn walking_the_group_tree_shows_the_selected_device() {
    let mut ui = Ui::new(presets::desktop(), 80, 24, false, true);
    ui.keys("<F2>jjj");
    snap("groups_walk_80x24", &ui.screen());
    ui.keys("G");
    snap("groups_walk_end_80x24", &ui.screen());
}

#[test]
fn filter_narrows_the_groups() {
    let mut ui = Ui::new(presets::desktop(), 120, 40, false, true);
    ui.keys("2/audio");
    assert!(ui.state.filter.editing);
    snap("groups_filter_typing_120x40", &ui.screen());
    ui.keys("<enter>");
    assert!(!ui.state.filter.editing);
    snap("groups_filtered_120x40", &ui.screen());
    // Esc clears the filter first, then goes back to the overview.
    ui.keys("<esc>");
    assert!(ui.state.filter.text.is_empty());
    assert_eq!(ui.state.view, View::Groups);
    ui.keys("<esc>");
    assert_eq!(ui.state.view, View::Overview);
}

#[test]
fn gpus_with_a_shared_group_and_a_management_display() {
    let mut ui = Ui::new(presets::two_gpus_shared_group(), 80, 24, false, true);
    ui.keys("3j");
    snap("gpus_shared_group_80x24", &ui.screen());
    let mut ui = Ui::new(presets::server_bmc(), 120, 40, false, true);
    ui.keys("<F3>");
    snap("gpus_server_bmc_120x40", &ui.screen());
}

#[test]
fn broken_hosts_overview() {
    let mut ui = Ui::new(presets::no_iommu(), 80, 24, false, true);
    snap("overview_no_iommu_80x24", &ui.screen());
    ui.keys("2");
    snap("groups_no_iommu_80x24", &ui.screen());
    let ui = Ui::new(presets::no_kvm(), 120, 40, false, true);
    snap("overview_no_kvm_120x40", &ui.screen());
}

#[test]
fn tab_cycles_and_q_backs_out_then_quits() {
    let mut ui = Ui::new(presets::desktop(), 80, 24, false, true);
    ui.keys("<tab><tab>");
    assert_eq!(ui.state.view, View::Gpus);
    ui.keys("<shift-tab>");
    assert_eq!(ui.state.view, View::Groups);
    ui.keys("q");
    assert_eq!(ui.state.view, View::Overview);
    assert!(!ui.state.quit);
    ui.keys("q");
    assert!(ui.state.quit);
}
