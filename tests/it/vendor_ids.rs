//! `[vendor:device]` next to device names, as `lspci -nn` prints them (owners paste them into
//! `vfio-pci.ids=`): in `host`, `gpu list`, and the console's group tree and GPU detail, where a
//! long name is cut and the IDs stay whole on an 80-column screen.

use std::fs;
use std::path::Path;

use phyllome::fixture::presets;
use phyllome::host::{Inventory, SysRoot};
use phyllome::tui::action::Loaded;
use phyllome::tui::{update, Action, Keymap, State, Theme};
use serde_json::Value;

use crate::support::cli::Cli;
use crate::support::ui::Ui;

const GPU_IDS: &str = "[1002:73bf]";
const AUDIO_IDS: &str = "[1002:ab28]";
const LONG: &str = "Navi 21 with a device name far too long to fit any eighty column screen at all";

/// A system `pci.ids` in the host root naming the desktop's GPU with a very long name.
fn long_names(root: &Path) {
    let dir = root.join("usr/share/misc");
    fs::create_dir_all(&dir).expect("pci.ids dir");
    fs::write(
        dir.join("pci.ids"),
        format!("1002  Advanced Micro Devices, Inc. [AMD/ATI]\n\t73bf  {LONG}\n"),
    )
    .expect("pci.ids");
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle}:\n{text}"))
}

#[test]
fn host_and_gpu_list_show_the_ids_after_the_names_and_json_is_unchanged() {
    let cli = Cli::new().host(presets::desktop());
    let host = cli.ok(&["host"]);
    let verdict = line_with(&host, "[group 14]");
    assert!(
        verdict.contains(&format!("] {GPU_IDS} [group 14]")),
        "{verdict}"
    );
    let member = line_with(&host, "    0000:0b:00.1");
    assert!(member.contains(&format!(" {AUDIO_IDS}  (")), "{member}");

    let list = cli.ok(&["gpu", "list"]);
    assert!(line_with(&list, "0000:0b:00.0").contains(GPU_IDS), "{list}");
    assert!(
        line_with(&list, "0000:0b:00.1").contains(AUDIO_IDS),
        "{list}"
    );

    // JSON keeps its keys: the IDs are `vendor_id`/`device_id` of `host --json`, and `gpu list
    // --json` rows have no new field.
    let list: Value = serde_json::from_str(&cli.ok(&["gpu", "list", "--json"])).expect("json");
    let rows = &list["gpus"];
    assert!(rows[0].get("ids").is_none(), "{rows}");
    assert!(rows[0]["companions"][0].get("ids").is_none(), "{rows}");
    let inv: Value = serde_json::from_str(&cli.ok(&["host", "--json"])).expect("json");
    let dev = inv["pci_devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["address"] == "0000:0b:00.0")
        .expect("the GPU");
    assert_eq!(
        (&dev["vendor_id"], &dev["device_id"]),
        (&"1002".into(), &"73bf".into())
    );
}

#[test]
fn a_long_name_keeps_the_host_text_ids() {
    let cli = Cli::new().host(presets::desktop());
    long_names(cli.root());
    let host = cli.ok(&["host"]);
    assert!(
        line_with(&host, LONG).contains(&format!("{LONG} {GPU_IDS}")),
        "{host}"
    );
}

fn console(cols: u16, rows: u16, ascii: bool) -> Ui {
    let dir = tempfile::tempdir().expect("tempdir");
    presets::desktop().write(dir.path()).expect("fixture tree");
    long_names(dir.path());
    let keymap = Keymap::defaults().expect("keymap");
    let mut state = State::new(&keymap, Theme::new(ascii, false), false, cols, rows);
    let loaded = Loaded {
        inventory: Inventory::collect(&SysRoot::new(dir.path())),
        host_name: Some("tower".into()),
    };
    update(&mut state, Action::InventoryLoaded(Box::new(loaded)));
    Ui::new(state, keymap)
}

#[test]
fn an_80x24_console_cuts_a_long_name_and_keeps_the_ids() {
    for ascii in [false, true] {
        let ellipsis = if ascii { "~" } else { "…" };
        let mut ui = console(80, 24, ascii);
        ui.keys("2");
        let groups = ui.screen();
        let row = line_with(&groups, "0000:0b:00.0");
        assert!(row.contains(GPU_IDS) && row.contains(ellipsis), "{groups}");
        assert!(row.contains("amdgpu"), "the state stays too:\n{groups}");
        assert!(
            line_with(&groups, "0000:0b:00.1").contains(AUDIO_IDS),
            "{groups}"
        );

        ui.keys("3");
        let gpus = ui.screen();
        let rows: Vec<&str> = gpus
            .lines()
            .filter(|l| l.contains("0000:0b:00.0"))
            .collect();
        // The list row and the detail's first line.
        assert_eq!(rows.len(), 2, "{gpus}");
        for r in rows {
            assert!(r.contains(GPU_IDS) && r.contains(ellipsis), "{gpus}");
        }
        for l in groups.lines().chain(gpus.lines()) {
            assert!(
                phyllome_widgets::width(l) <= 82,
                "wider than the screen: {l}"
            );
        }
    }
}

#[test]
fn a_wide_console_shows_the_whole_name_and_the_ids() {
    let mut ui = console(200, 40, false);
    ui.keys("3");
    let gpus = ui.screen();
    assert!(gpus.contains(&format!("{LONG} {GPU_IDS}")), "{gpus}");
}

#[test]
fn a_group_line_naming_a_gpu_cuts_the_name_and_keeps_the_ids() {
    for ascii in [false, true] {
        let ellipsis = if ascii { "~" } else { "…" };
        let mut ui = console(80, 24, ascii);
        // Group 0, 1 and 2 hold one bridge each: the seventh row is group 14's own line.
        ui.keys("2jjjjjj");
        let screen = ui.screen();
        assert!(
            screen.contains("Group 14: 2 device(s), all go to the same guest"),
            "{screen}"
        );
        let summary: Vec<&str> = screen
            .lines()
            .skip_while(|l| !l.contains("Details"))
            .filter(|l| l.contains("0000:0b:00.0"))
            .collect();
        assert_eq!(summary.len(), 1, "{screen}");
        let line = summary[0];
        assert!(
            line.contains(&format!("{ellipsis} {GPU_IDS}")),
            "the name is cut before the whole IDs: {line}"
        );
        assert!(phyllome_widgets::width(line) <= 82, "{line}");
        if !ascii {
            crate::support::snap("tui_groups_gpu_group_long_name_80x24", &screen);
        }
    }
}
