use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::*;

fn press(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, mods)
}

fn key(s: &str) -> Key {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn parses_every_documented_key_form() {
    assert_eq!(key("q").code, KeyCode::Char('q'));
    assert_eq!(key("?").code, KeyCode::Char('?'));
    assert_eq!(key("-").code, KeyCode::Char('-'));
    assert_eq!(key("F1").code, KeyCode::F(1));
    assert_eq!(key("f12").code, KeyCode::F(12));
    assert_eq!(key("esc").code, KeyCode::Esc);
    assert_eq!(key("tab").code, KeyCode::Tab);
    assert_eq!(
        key("shift-tab"),
        Key {
            code: KeyCode::BackTab,
            mods: KeyModifiers::NONE
        }
    );
    assert_eq!(key("pgdn").code, KeyCode::PageDown);
    assert_eq!(key("space").code, KeyCode::Char(' '));
    assert_eq!(
        key("ctrl-l"),
        Key {
            code: KeyCode::Char('l'),
            mods: KeyModifiers::CONTROL
        }
    );
    assert_eq!(key("ctrl-L"), key("ctrl-l"));
    assert_eq!(key("shift-g"), key("G"));
    assert_eq!(key("alt-x").mods, KeyModifiers::ALT);
}

#[test]
fn rejects_unknown_keys_without_panicking() {
    for bad in [
        "",
        "F0",
        "F13",
        "Fx",
        "ctrl-",
        "hyper-x",
        "pagedwn",
        "ctrl-shift-",
    ] {
        assert!(bad.parse::<Key>().is_err(), "{bad:?} accepted");
    }
}

#[test]
fn keys_print_as_they_are_written() {
    for s in [
        "q",
        "F5",
        "ctrl-l",
        "shift-tab",
        "pgdn",
        "space",
        "esc",
        "G",
    ] {
        assert_eq!(key(s).to_string(), s);
    }
}

#[test]
fn defaults_parse_and_bind_the_documented_keys() {
    let map = Keymap::defaults().expect("built-in keymap");
    let cases = [
        (press(KeyCode::Char('q'), KeyModifiers::NONE), Action::Back),
        (press(KeyCode::Esc, KeyModifiers::NONE), Action::Back),
        (press(KeyCode::Char('?'), KeyModifiers::SHIFT), Action::Help),
        (press(KeyCode::F(2), KeyModifiers::NONE), Action::ViewGroups),
        (
            press(KeyCode::Char('3'), KeyModifiers::NONE),
            Action::ViewGpus,
        ),
        (press(KeyCode::F(5), KeyModifiers::NONE), Action::Refresh),
        (
            press(KeyCode::Char('l'), KeyModifiers::CONTROL),
            Action::Redraw,
        ),
        (press(KeyCode::Tab, KeyModifiers::NONE), Action::NextView),
        (
            press(KeyCode::BackTab, KeyModifiers::SHIFT),
            Action::PrevView,
        ),
        (
            press(KeyCode::Char('G'), KeyModifiers::SHIFT),
            Action::Bottom,
        ),
        (
            press(KeyCode::PageDown, KeyModifiers::NONE),
            Action::PageDown,
        ),
    ];
    for (ev, action) in cases {
        assert_eq!(map.action_for(&ev), Some(action), "{ev:?}");
    }
    assert_eq!(
        map.action_for(&press(KeyCode::Char('z'), KeyModifiers::NONE)),
        None
    );
    // Plain l is not ctrl-l.
    assert_eq!(
        map.action_for(&press(KeyCode::Char('l'), KeyModifiers::NONE)),
        None
    );
}

#[test]
fn key_release_does_nothing() {
    let map = Keymap::defaults().unwrap();
    let mut ev = press(KeyCode::Char('q'), KeyModifiers::NONE);
    ev.kind = KeyEventKind::Release;
    assert_eq!(map.action_for(&ev), None);
}

#[test]
fn user_entry_replaces_keys_and_steals_them_from_others() {
    let mut map = Keymap::defaults().unwrap();
    map.merge_str(
        r#"
        [[binding]]
        action = "refresh"
        keys = ["q"]
        description = "reload"
        "#,
        "user.toml",
    )
    .unwrap();
    let q = press(KeyCode::Char('q'), KeyModifiers::NONE);
    assert_eq!(map.action_for(&q), Some(Action::Refresh));
    // r and F5 are no longer refresh; esc still goes back.
    assert_eq!(
        map.action_for(&press(KeyCode::Char('r'), KeyModifiers::NONE)),
        None
    );
    assert_eq!(
        map.action_for(&press(KeyCode::Esc, KeyModifiers::NONE)),
        Some(Action::Back)
    );
    let refresh = map
        .bindings()
        .iter()
        .find(|b| b.action == Action::Refresh)
        .unwrap();
    assert_eq!(refresh.description, "reload");
    assert_eq!(refresh.section, "Global", "section kept from the default");
}

#[test]
fn empty_keys_unbind() {
    let mut map = Keymap::defaults().unwrap();
    map.merge_str("[[binding]]\naction = \"filter\"\nkeys = []\n", "u")
        .unwrap();
    assert_eq!(
        map.action_for(&press(KeyCode::Char('/'), KeyModifiers::NONE)),
        None
    );
    assert!(map.hints().iter().all(|h| h.key != "/"));
}

#[test]
fn read_only_drops_dangerous_bindings() {
    let mut map = Keymap::defaults().unwrap();
    map.merge_str(
        "[[binding]]\naction = \"refresh\"\nkeys = [\"r\"]\ndangerous = true\n",
        "u",
    )
    .unwrap();
    let r = press(KeyCode::Char('r'), KeyModifiers::NONE);
    assert_eq!(map.action_for(&r), Some(Action::Refresh));
    assert!(map.hints().iter().any(|h| h.key == "r" && h.dangerous));
    map.drop_dangerous();
    assert_eq!(map.action_for(&r), None);
    assert!(map
        .help()
        .iter()
        .flat_map(|s| &s.entries)
        .all(|e| !e.dangerous));
}

#[test]
fn a_user_file_cannot_clear_the_dangerous_flag() {
    let mut map = Keymap::defaults().unwrap();
    map.merge_str(
        "[[binding]]\naction = \"refresh\"\nkeys = [\"r\"]\ndangerous = true\n",
        "a",
    )
    .unwrap();
    map.merge_str(
        "[[binding]]\naction = \"refresh\"\nkeys = [\"r\"]\ndangerous = false\n",
        "b",
    )
    .unwrap();
    assert!(map
        .bindings()
        .iter()
        .any(|b| b.action == Action::Refresh && b.dangerous));
}

fn merge_err(text: &str) -> String {
    let mut map = Keymap::defaults().unwrap();
    match map.merge_str(text, "my.toml") {
        Err(e) => e.to_string(),
        Ok(()) => panic!("accepted: {text}"),
    }
}

#[test]
fn bad_entries_are_named_in_errors() {
    let unknown_action = merge_err(
        "[[binding]]\naction = \"help\"\nkeys = [\"h\"]\n[[binding]]\naction = \"refesh\"\nkeys = [\"x\"]\n",
    );
    assert!(
        unknown_action.starts_with("Keymap my.toml, binding #2 (refesh): "),
        "{unknown_action}"
    );
    assert!(
        unknown_action.contains("unknown variant"),
        "{unknown_action}"
    );

    let bad_key = merge_err("[[binding]]\naction = \"help\"\nkeys = [\"F13\"]\n");
    assert_eq!(
        bad_key,
        "Keymap my.toml, binding #1 (help): Unknown key \"F13\""
    );

    let missing = merge_err("[[binding]]\nkeys = [\"x\"]\n");
    assert!(
        missing.starts_with("Keymap my.toml, binding #1 (?): "),
        "{missing}"
    );
    assert!(missing.contains("action"), "{missing}");

    let typo = merge_err("[[binding]]\naction = \"help\"\nkey = [\"x\"]\n");
    assert!(typo.contains("binding #1 (help)"), "{typo}");

    let runtime_only = merge_err("[[binding]]\naction = \"resize\"\nkeys = [\"x\"]\n");
    assert!(
        runtime_only.contains("binding #1 (resize)"),
        "{runtime_only}"
    );

    let toml = merge_err("[[binding]\n");
    assert!(
        toml.starts_with("Keymap my.toml is not valid TOML"),
        "{toml}"
    );
}

#[test]
fn load_reports_a_missing_file_by_path() {
    let err = Keymap::load(Some(Path::new("/nonexistent/keymap.toml")), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Cannot read keymap /nonexistent/keymap.toml"
    );
}

#[test]
fn hints_end_with_help() {
    let hints = Keymap::defaults().unwrap().hints();
    assert_eq!(hints.last().map(|h| h.key.as_str()), Some("?"));
    assert_eq!(hints.first().map(|h| h.key.as_str()), Some("q"));
}

#[test]
fn help_groups_by_section_in_file_order() {
    let help = Keymap::defaults().unwrap().help();
    let titles: Vec<_> = help.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Global", "Views", "Movement", "VMs", "Dashboard", "GPUs"]
    );
    assert!(help[1]
        .entries
        .iter()
        .any(|e| e.keys == "1, F1" && e.description == "overview"));
}

#[test]
fn read_only_drops_every_vm_action_but_open() {
    let map = Keymap::load(None, true).unwrap();
    let actions: Vec<Action> = map.bindings().iter().map(|b| b.action.clone()).collect();
    assert!(actions.contains(&Action::Open));
    for a in [
        Action::HostPower,
        Action::VmStart,
        Action::VmStop,
        Action::VmForceOff,
        Action::VmReboot,
        Action::VmPauseResume,
        Action::VmDelete,
        Action::VmNew,
        Action::VmEdit,
    ] {
        assert!(!actions.contains(&a), "{a:?} kept");
    }
    assert!(map
        .help()
        .iter()
        .all(|s| s.entries.iter().all(|e| !e.dangerous)));
}

#[test]
fn vm_bindings_are_flagged_dangerous_where_they_lose_work() {
    let map = Keymap::defaults().unwrap();
    let dangerous: Vec<Action> = map
        .bindings()
        .iter()
        .filter(|b| b.dangerous)
        .map(|b| b.action.clone())
        .collect();
    assert_eq!(
        dangerous,
        [
            Action::HostPower,
            Action::VmReboot,
            Action::VmForceOff,
            Action::VmDelete,
            Action::VmNmi,
            Action::VmUnlock,
            Action::VmRescue,
            Action::VmSnapshotRestore,
            Action::VmSnapshotDelete,
            Action::GpuAssign,
            Action::GpuDetach,
            Action::GpuReattach,
            Action::GpuUnassign,
            Action::GpuBootInstall,
            Action::GpuBootUninstall,
        ]
    );
    assert!(map.bindings().iter().all(|b| !b.description.is_empty()));
}

#[test]
fn a_key_bound_on_two_screens_means_the_current_screens_action() {
    let map = Keymap::defaults().unwrap();
    let p = press(KeyCode::Char('p'), KeyModifiers::NONE);
    assert_eq!(
        map.action_for_in(&p, |a| a.is_gpu_action()),
        Some(Action::GpuPlan)
    );
    assert_eq!(
        map.action_for_in(&p, |a| !a.is_gpu_action()),
        Some(Action::VmPauseResume)
    );
    // A key of one screen only still works elsewhere (the screen ignores it).
    let j = press(KeyCode::Char('j'), KeyModifiers::NONE);
    assert_eq!(
        map.action_for_in(&j, |a| a.is_gpu_action()),
        Some(Action::Down)
    );
}

#[test]
fn read_only_drops_the_gpu_actions_that_change_the_host() {
    let map = Keymap::load(None, true).unwrap();
    let actions: Vec<Action> = map.bindings().iter().map(|b| b.action.clone()).collect();
    for a in [
        Action::GpuAssign,
        Action::GpuDetach,
        Action::GpuReattach,
        Action::GpuUnassign,
        Action::GpuBootInstall,
        Action::GpuBootUninstall,
    ] {
        assert!(!actions.contains(&a), "{a:?} kept");
    }
    assert!(actions.contains(&Action::GpuPlan));
    assert!(actions.contains(&Action::GpuBootConfig));
}
