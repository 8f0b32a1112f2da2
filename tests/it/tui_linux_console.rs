//! The console on the Linux text console (`TERM=linux`): its default font holds code page 437
//! and little else, so every cell of every screen must be a character of it, whatever the
//! locale says (a ✔ would show as a blank box there).

use crate::support;
use crate::support::ui::Ui;

use phyllome::fixture::presets;
use phyllome::host::{Inventory, SysRoot};
use phyllome::monitor::synthetic::Synthetic;
use phyllome::term::TermProfile;
use phyllome::tui::action::{Loaded, MonitorSample};
use phyllome::tui::{update, Action, Keymap, State, Theme};
use phyllome_widgets::Glyphs;

/// Code page 437 as Unicode: the graphics of 0x01–0x1F, ASCII, `⌂` and 0x80–0xFF.
const CP437: &str = "☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼ !\"#$%&'()*+,-./0123456789:;<=>?@\
ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~⌂\
ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌\
█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";

fn linux_console(cols: u16, rows: u16) -> Ui {
    let keymap = Keymap::defaults().expect("keymap");
    let theme = Theme::with_glyphs(Glyphs::LINUX_CONSOLE, true);
    let mut state = State::new(&keymap, theme, false, cols, rows);
    let dir = tempfile::tempdir().expect("tempdir");
    presets::desktop().write(dir.path()).expect("fixture");
    let loaded = Loaded {
        inventory: Inventory::collect(&SysRoot::new(dir.path())),
        host_name: Some("tower".into()),
    };
    update(&mut state, Action::InventoryLoaded(Box::new(loaded)));
    Ui::new(state, keymap)
}

/// The characters of `screen` the Linux console's font cannot draw.
pub(crate) fn undrawable(screen: &str) -> Vec<char> {
    let mut out: Vec<char> = screen
        .chars()
        .filter(|c| *c != '\n' && !CP437.contains(*c))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn term_linux_picks_the_consoles_own_glyphs() {
    let profile = TermProfile::detect(
        |n| match n {
            "TERM" => Some("linux".into()),
            "LANG" => Some("C.UTF-8".into()),
            _ => None,
        },
        false,
    );
    assert!(profile.linux_console && !profile.ascii);
    let glyphs = Glyphs::for_terminal(profile.ascii, profile.linux_console);
    assert_eq!(glyphs.ok, Glyphs::LINUX_CONSOLE.ok);
    // The table is no sieve: the plain Unicode marks are not in the font.
    assert_eq!(undrawable("✔ ✘ ▶ …"), vec!['…', '▶', '✔', '✘']);
}

#[test]
fn every_screen_is_drawable_by_the_linux_console_font() {
    for (name, key) in [
        ("overview", "1"),
        ("groups", "2"),
        ("gpus", "3"),
        ("kvm", "4"),
        ("vms", "5"),
        ("help", "?"),
    ] {
        let mut ui = linux_console(80, 24);
        ui.keys(key);
        let screen = ui.screen();
        assert_eq!(undrawable(&screen), Vec::<char>::new(), "{name}:\n{screen}");
        if matches!(name, "overview" | "groups" | "gpus") {
            support::snap(&format!("tui_linux_console_{name}_80x24"), &screen);
        }
    }
}

#[test]
fn the_dashboard_is_drawable_by_the_linux_console_font() {
    let mut ui = linux_console(80, 24);
    ui.keys("6");
    let mut s = Synthetic::new(4);
    for _ in 0..30 {
        ui.act(Action::MonitorSample(Box::new(MonitorSample(s.sample()))));
    }
    let screen = ui.screen();
    assert_eq!(undrawable(&screen), Vec::<char>::new(), "{screen}");
    support::snap("tui_linux_console_dashboard_80x24", &screen);
    // One VM's charts, its graphs in shades.
    ui.keys("<enter>");
    let charts = ui.screen();
    assert_eq!(undrawable(&charts), Vec::<char>::new(), "{charts}");
    assert!(charts.contains('▓') || charts.contains('█'), "{charts}");
}
