//! Control characters that come with data (ESC, OSC, BEL in a sysfs `uevent`, a file name in
//! the state directory, a disk path, Cloud Hypervisor's error text, a kernel command line)
//! never reach the terminal raw: text output and the error report show them escaped
//! (`\e`, `\x07`), `--json` keeps them exact, `vm export --format cli` quotes them as
//! `$'...'` and refuses a NUL.

use crate::support::cli::Cli;

/// An OSC that retitles the terminal, a bell, a screen clear.
const HOSTILE: &str = "\u{1b}]0;pwn\u{7}x\u{1b}[2J";
/// How [`HOSTILE`] reads once escaped.
const SHOWN: &str = "\\e]0;pwn\\x07x\\e[2J";

/// No control character but the line feeds of the layout.
fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{what} carries a control character raw:\n{}",
        text.escape_debug()
    );
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_hostile_uevent_is_escaped_in_host_and_exact_in_json() {
    let cli = Cli::new().host(phyllome::fixture::presets::desktop());
    let devices = cli.root().join("sys/bus/pci/devices");
    for entry in std::fs::read_dir(&devices).unwrap() {
        let uevent = entry.unwrap().path().join("uevent");
        let old = std::fs::read_to_string(&uevent).unwrap();
        let new: String = old
            .lines()
            .map(|l| match l.strip_prefix("DRIVER=") {
                Some(_) => format!("DRIVER={HOSTILE}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&uevent, new).unwrap();
    }
    let out = cli.ok(&["host"]);
    assert_clean("host", &out);
    assert!(out.contains(&format!("({SHOWN})")), "{out}");
    let listed = cli.ok(&["gpu", "list"]);
    assert_clean("gpu list", &listed);
    let json = cli.json(&["host", "--json"]);
    let drivers: Vec<&str> = json["pci_devices"]
        .as_array()
        .expect("pci_devices")
        .iter()
        .filter_map(|d| d["driver"].as_str())
        .collect();
    assert!(drivers.contains(&HOSTILE), "{drivers:?}");
}

#[test]
fn a_hostile_file_name_in_the_state_dir_is_escaped() {
    let cli = Cli::new();
    let bad = format!("web{HOSTILE}");
    cli.define_toml(&bad, "[memory]\nsize = \"1G\"\n[boot]\nkernel = \"/k\"\n");
    let out = cli.ok(&["vm", "list"]);
    assert_clean("vm list", &out);
    assert!(out.contains(&format!("web{SHOWN}")), "{out}");
    let top = cli.ok(&["top", "--batch", "-n", "1", "--interval", "0.1"]);
    assert_clean("top --batch", &top);
    assert!(top.contains(&format!("web{SHOWN}")), "{top}");
    let info = cli.run(&["vm", "info", &bad]);
    assert_clean("vm info", &text(&info.stdout));
    assert_clean("vm info's error", &text(&info.stderr));
    let json = cli.json(&["vm", "list", "--json"]);
    let names: Vec<&str> = json["vms"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&bad.as_str()), "exact in JSON: {names:?}");
}

#[test]
fn a_hostile_disk_path_is_escaped_in_refusals_the_list_and_imports() {
    let cli = Cli::new();
    let disk = format!("/img/{HOSTILE}.img");
    let out = cli.run(&["vm", "define", "x", "--kernel", "/k", "--disk", &disk]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_clean("vm define's error", &err);
    assert!(err.contains("disks[0].path"), "{err}");
    // Written by hand, it shows as an invalid definition.
    let toml =
        format!("[memory]\nsize = \"1G\"\n[boot]\nkernel = \"/k\"\n[[disks]]\npath = {disk:?}\n")
            .replace("\\u{1b}", "\\u001b")
            .replace("\\u{7}", "\\u0007");
    cli.define_toml("hand", &toml);
    let list = cli.ok(&["vm", "list"]);
    assert_clean("vm list", &list);
    assert!(list.contains("hand"), "{list}");
    let info = cli.run(&["vm", "info", "hand"]);
    assert_clean("vm info", &text(&info.stdout));
    assert_clean("vm info's error", &text(&info.stderr));
    // An import names the fields it cannot take, keys from the file included.
    let json = serde_json::json!({
        "memory": {"size": 1u64 << 30},
        "payload": {"kernel": "/k"},
        "disks": [{"path": disk, format!("vhost{HOSTILE}"): 1}],
        HOSTILE: 1,
    });
    let file = cli.path().join("ch.json");
    std::fs::write(&file, json.to_string()).unwrap();
    let out = cli.run(&["vm", "import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert_clean("vm import's error", &err);
    assert!(err.contains(&format!("disks[0].vhost{SHOWN}")), "{err}");
}

#[test]
fn cloud_hypervisors_error_text_is_escaped_in_the_report() {
    let cli = Cli::double();
    let kernel = cli.fake_kernel();
    cli.ok(&["vm", "define", "web", "--kernel", kernel.to_str().unwrap()]);
    let out = cli
        .cmd(&["vm", "start", "web"])
        .env("CH_DOUBLE_FAIL", "vm.boot")
        .env("CH_DOUBLE_FAIL_MESSAGE", format!("Cannot open {HOSTILE}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let err = text(&out.stderr);
    assert_clean("vm start's error", &err);
    assert!(
        err.contains(&format!("vm.boot failed: Cannot open {SHOWN}\n")),
        "{err}"
    );
}

#[test]
fn export_as_a_command_line_quotes_escapes_and_refuses_nul() {
    let cli = Cli::new();
    let cmdline = format!("console=ttyS0 {HOSTILE} it's");
    let toml = format!("[memory]\nsize = \"1G\"\n[boot]\nkernel = \"/k\"\ncmdline = {cmdline:?}\n")
        .replace("\\u{1b}", "\\u001b")
        .replace("\\u{7}", "\\u0007");
    cli.define_toml("esc", &toml);
    let out = cli.ok(&["vm", "export", "esc", "--format", "cli"]);
    assert_clean("vm export --format cli", &out);
    let quoted = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("--cmdline "))
        .map(|q| q.trim_end_matches(" \\").to_string())
        .expect("--cmdline line");
    assert_eq!(quoted, "$'console=ttyS0 \\e]0;pwn\\x07x\\e[2J it\\'s'");
    // The shell reads it back as the very command line.
    let back = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("printf %s {quoted}"))
        .output()
        .unwrap();
    assert_eq!(text(&back.stdout), cmdline);
    // JSON stays exact.
    let json = cli.json(&["vm", "export", "esc"]);
    assert_eq!(json["payload"]["cmdline"], cmdline.as_str());

    cli.define_toml(
        "nul",
        "[memory]\nsize = \"1G\"\n[boot]\nkernel = \"/k\"\ncmdline = \"a\\u0000b\"\n",
    );
    let out = cli.run(&["vm", "export", "nul", "--format", "cli"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing printed raw");
    let err = text(&out.stderr);
    assert_clean("vm export's refusal", &err);
    assert!(err.contains("holds a NUL character"), "{err}");
}

/// The console's error popup shows the VMM's text escaped, as the command line does (the
/// terminal would otherwise lose it silently: the console draws no control character).
#[test]
fn the_consoles_error_popup_shows_the_vmms_text_escaped() {
    use phyllome::tui::{update, Action, Keymap, State, Theme};
    use phyllome::vmm::error::VmmError;
    use phyllome::vmm::manager::ManagerError;
    use phyllome::vmm::worker::ActionError;
    let keymap = Keymap::load(None, false).unwrap();
    let mut state = State::new(&keymap, Theme::new(false, true), false, 100, 30);
    state.load = phyllome::tui::state::Load::Loaded;
    update(&mut state, Action::ViewVms);
    let mut ui = crate::support::ui::Ui::new(state, keymap);
    ui.act(Action::VmDone {
        op: "start".into(),
        name: "web".into(),
        result: Err(ActionError::from(&ManagerError::Vmm {
            name: "web".into(),
            source: VmmError::api(
                "vm.boot",
                500,
                vec!["Error from API".into(), format!("Cannot open {HOSTILE}")],
            ),
        })),
    });
    let screen = ui.screen();
    assert!(screen.contains(&format!("Cannot open {SHOWN}")), "{screen}");
}
