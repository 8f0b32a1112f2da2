//! Snapshots of every console screen, driven through the keymap and `update` as a user would.

use crate::support;
use crate::support::ui::Ui;

use phyllome::fixture::{presets, HostSpec};
use phyllome::host::{Inventory, SysRoot};
use phyllome::tui::action::Loaded;
use phyllome::tui::{update, view, Action, Keymap, State, Theme, View};
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;

fn inventory(spec: HostSpec) -> Inventory {
    let dir = tempfile::tempdir().expect("tempdir");
    spec.write(dir.path()).expect("fixture tree");
    Inventory::collect(&SysRoot::new(dir.path()))
}

/// The console on `spec`, its inventory loaded.
fn screens(spec: HostSpec, cols: u16, rows: u16, ascii: bool, color: bool) -> Ui {
    let keymap = Keymap::defaults().expect("keymap");
    let mut state = State::new(&keymap, Theme::new(ascii, color), false, cols, rows);
    let loaded = Loaded {
        inventory: inventory(spec),
        host_name: Some("tower".into()),
    };
    update(&mut state, Action::InventoryLoaded(Box::new(loaded)));
    Ui::new(state, keymap)
}

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_{name}"), screen);
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
            let mut ui = screens(presets::desktop(), cols, rows, false, true);
            ui.keys(key);
            snap(&format!("{name}_{cols}x{rows}"), &ui.screen());
        }
    }
}

#[test]
fn every_view_in_ascii_is_pure_ascii() {
    for (name, key) in VIEWS {
        let mut ui = screens(presets::laptop(), 80, 24, true, false);
        ui.keys(key);
        let screen = ui.screen();
        assert!(screen.is_ascii(), "{name} has non-ASCII:\n{screen}");
        snap(&format!("{name}_ascii_80x24"), &screen);
    }
    let mut ui = screens(presets::laptop(), 80, 24, true, false);
    ui.keys("?");
    assert!(ui.screen().is_ascii());
}

#[test]
fn no_color_means_no_colour_anywhere() {
    for (name, key) in VIEWS {
        let mut ui = screens(presets::two_gpus_shared_group(), 80, 24, false, false);
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
    let mut ui = screens(presets::desktop(), 80, 24, false, true);
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
    let ui = screens(presets::desktop(), 79, 24, false, true);
    let screen = ui.screen();
    assert!(
        screen.contains("terminal too small (79x24), need 80x24"),
        "{screen}"
    );
    let mut ui = screens(presets::desktop(), 80, 24, false, true);
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
    let mut ui = screens(presets::desktop(), 80, 24, false, true);
    ui.keys("<F2>jjj");
    snap("groups_walk_80x24", &ui.screen());
    ui.keys("G");
    snap("groups_walk_end_80x24", &ui.screen());
}

#[test]
fn filter_narrows_the_groups() {
    let mut ui = screens(presets::desktop(), 120, 40, false, true);
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
    let mut ui = screens(presets::two_gpus_shared_group(), 80, 24, false, true);
    ui.keys("3j");
    snap("gpus_shared_group_80x24", &ui.screen());
    let mut ui = screens(presets::server_bmc(), 120, 40, false, true);
    ui.keys("<F3>");
    snap("gpus_server_bmc_120x40", &ui.screen());
}

#[test]
fn broken_hosts_overview() {
    let mut ui = screens(presets::no_iommu(), 80, 24, false, true);
    snap("overview_no_iommu_80x24", &ui.screen());
    ui.keys("2");
    snap("groups_no_iommu_80x24", &ui.screen());
    let ui = screens(presets::no_kvm(), 120, 40, false, true);
    snap("overview_no_kvm_120x40", &ui.screen());
}

#[test]
fn tab_cycles_and_q_backs_out_then_quits() {
    let mut ui = screens(presets::desktop(), 80, 24, false, true);
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
