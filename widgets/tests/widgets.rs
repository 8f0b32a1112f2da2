//! Snapshots of every widget, in the Unicode and ASCII glyph sets.

use phyllome_widgets::{
    badge, ConfirmDialog, ConfirmMode, Glyphs, GroupTree, GroupTreeState, HelpEntry, HelpPanel,
    HelpSection, KeyHint, KeyHints, Palette, Tone, TreeGroup, TreeMember,
};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::{Frame, Terminal};

fn draw(w: u16, h: u16, f: impl FnOnce(&mut Frame)) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    terminal.draw(f).expect("draw");
    terminal.backend().to_string()
}

fn snap(name: &str, screen: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(format!("widgets_{name}"), screen));
}

fn sets() -> [(&'static str, Glyphs); 2] {
    [("unicode", Glyphs::UNICODE), ("ascii", Glyphs::ASCII)]
}

fn member(label: &str, detail: &str, bridge: bool) -> TreeMember {
    TreeMember {
        label: label.into(),
        detail: detail.into(),
        bridge,
        ..Default::default()
    }
}

fn groups(g: &Glyphs) -> Vec<TreeGroup> {
    let p = Palette::mono();
    vec![
        TreeGroup {
            label: "Group 0".into(),
            badge: None,
            members: vec![member(
                "0000:00:00.0",
                "host bridge  Intel 82G33  no driver",
                true,
            )],
        },
        TreeGroup {
            label: "Group 14".into(),
            badge: Some((badge(Tone::Ready, "GPU: ready", g, &p).content.into(), p.ok)),
            members: vec![
                member("0000:00:01.0", "PCI bridge  pcieport", true),
                member(
                    "0000:01:00.0",
                    "VGA controller  NVIDIA GA106 [GeForce RTX 3060]  nvidia",
                    false,
                ),
                member(
                    "0000:01:00.1",
                    "audio device  NVIDIA GA106 HD Audio  snd_hda_intel",
                    false,
                ),
            ],
        },
        TreeGroup {
            label: "Group 15".into(),
            badge: Some((
                badge(Tone::Blocked, "GPU: blocked", g, &p).content.into(),
                p.bad,
            )),
            members: vec![
                member("0000:02:00.0", "VGA controller  AMD Navi 23  amdgpu", false),
                member(
                    "0000:03:00.0",
                    "SATA controller  ASMedia ASM1062  ahci",
                    false,
                ),
            ],
        },
    ]
}

#[test]
fn group_tree() {
    for (set, g) in sets() {
        let groups = groups(&g);
        let len = GroupTree::row_count(&groups);
        let mut state = GroupTreeState::default();
        state.select(2, len);
        let screen = draw(60, 10, |f| {
            let tree = GroupTree::new(&groups, g).block(g.block().title(" IOMMU groups "));
            f.render_stateful_widget(tree, f.area(), &mut state);
        });
        snap(&format!("group_tree_{set}"), &screen);
    }
}

#[test]
fn group_tree_scrolled_to_the_end() {
    for (set, g) in sets() {
        let groups = groups(&g);
        let len = GroupTree::row_count(&groups);
        let mut state = GroupTreeState::default();
        state.set_height(4, len);
        state.select_last(len);
        let screen = draw(50, 4, |f| {
            f.render_stateful_widget(GroupTree::new(&groups, g), f.area(), &mut state);
        });
        assert_eq!(state.offset(), len - 4);
        snap(&format!("group_tree_scrolled_{set}"), &screen);
    }
}

fn hints() -> Vec<KeyHint> {
    vec![
        KeyHint::new("1", "overview", false),
        KeyHint::new("2", "groups", false),
        KeyHint::new("3", "gpus", false),
        KeyHint::new("r", "refresh", false),
        KeyHint::new("b", "bind vfio", true),
        KeyHint::new("q", "quit", false),
        KeyHint::new("?", "help", false),
    ]
}

#[test]
fn key_hints_wide_and_narrow() {
    for (set, g) in sets() {
        let items = hints();
        let screen = draw(72, 3, |f| {
            for (y, w) in [(0u16, 72u16), (1, 40), (2, 12)] {
                let area = Rect::new(0, y, w, 1);
                f.render_widget(KeyHints::new(&items, g), area);
            }
        });
        snap(&format!("key_hints_{set}"), &screen);
    }
}

fn help() -> Vec<HelpSection> {
    let e = |k: &str, d: &str, x: bool| HelpEntry {
        keys: k.into(),
        description: d.into(),
        dangerous: x,
    };
    vec![
        HelpSection {
            title: "Global".into(),
            entries: vec![
                e("?, F1", "show this help", false),
                e("q, esc", "back, then quit", false),
                e("ctrl-l", "redraw the screen", false),
            ],
        },
        HelpSection {
            title: "Views".into(),
            entries: vec![
                e("1", "overview", false),
                e("2", "IOMMU groups", false),
                e("b", "bind the selected group to vfio-pci", true),
            ],
        },
    ]
}

#[test]
fn help_panel() {
    for (set, g) in sets() {
        let sections = help();
        let screen = draw(60, 14, |f| {
            f.render_widget(HelpPanel::new(&sections, g), f.area())
        });
        snap(&format!("help_panel_{set}"), &screen);
    }
}

#[test]
fn help_panel_scrolled() {
    let sections = help();
    let g = Glyphs::ASCII;
    let screen = draw(60, 8, |f| {
        f.render_widget(HelpPanel::new(&sections, g).scroll(3), f.area());
    });
    snap("help_panel_scrolled_ascii", &screen);
    // Scrolling past the end shows the last page, not blank lines.
    let past = draw(60, 8, |f| {
        f.render_widget(HelpPanel::new(&sections, g).scroll(99), f.area());
    });
    let at_end = draw(60, 8, |f| {
        let max = HelpPanel::line_count(&sections) - 4;
        f.render_widget(HelpPanel::new(&sections, g).scroll(max), f.area());
    });
    assert_eq!(past, at_end);
}

#[test]
fn confirm_dialogs() {
    let message = vec![
        "Bind IOMMU group 14 (2 devices) to vfio-pci?".to_string(),
        "The host loses the GPU and its audio until it is released.".to_string(),
    ];
    for (set, g) in sets() {
        let yes_no = ConfirmMode::YesNo { yes: false };
        let typed = ConfirmMode::Typed {
            expected: "group-14".into(),
            typed: "grou".into(),
        };
        let screen = draw(60, 22, |f| {
            let top = Rect::new(0, 0, 60, 11);
            let bottom = Rect::new(0, 11, 60, 11);
            f.render_widget(
                ConfirmDialog::new("Bind to vfio-pci", &message, &yes_no, g),
                top,
            );
            f.render_widget(
                ConfirmDialog::new("Destroy VM", &message, &typed, g),
                bottom,
            );
        });
        snap(&format!("confirm_{set}"), &screen);
    }
}

#[test]
fn badges() {
    for (set, g) in sets() {
        let p = Palette::mono();
        let screen = draw(40, 4, |f| {
            for (y, (tone, text)) in [
                (Tone::Ready, "ready"),
                (Tone::Warn, "warn"),
                (Tone::Blocked, "blocked"),
                (Tone::Info, "info"),
            ]
            .into_iter()
            .enumerate()
            {
                let line = Line::from(badge(tone, text, &g, &p));
                f.render_widget(line, Rect::new(0, y as u16, 40, 1));
            }
        });
        snap(&format!("badges_{set}"), &screen);
    }
}

#[test]
fn ascii_set_draws_only_ascii() {
    let g = Glyphs::ASCII;
    let groups = groups(&g);
    let sections = help();
    let items = hints();
    let message = vec!["Really?".to_string()];
    let mode = ConfirmMode::YesNo { yes: true };
    let screen = draw(80, 30, |f| {
        let mut state = GroupTreeState::default();
        let tree = GroupTree::new(&groups, g).block(g.block());
        f.render_stateful_widget(tree, Rect::new(0, 0, 80, 12), &mut state);
        f.render_widget(KeyHints::new(&items, g), Rect::new(0, 12, 80, 1));
        f.render_widget(HelpPanel::new(&sections, g), Rect::new(0, 13, 80, 12));
        f.render_widget(
            ConfirmDialog::new("Sure", &message, &mode, g),
            Rect::new(0, 25, 80, 5),
        );
    });
    assert!(screen.is_ascii(), "non-ASCII output:\n{screen}");
}

#[test]
fn a_member_tail_stays_whole_and_the_detail_is_cut() {
    for (_, g) in sets() {
        let groups = vec![TreeGroup {
            badge: None,
            label: "Group 1".into(),
            members: vec![TreeMember {
                label: "0000:0b:00.0".into(),
                detail: "VGA controller  a device name far too long for this narrow tree".into(),
                tail: "[1002:73bf]  amdgpu".into(),
                ..Default::default()
            }],
        }];
        let mut state = GroupTreeState::default();
        let screen = draw(60, 4, |f| {
            let tree = GroupTree::new(&groups, g).block(g.block());
            f.render_stateful_widget(tree, f.area(), &mut state);
        });
        let row = screen.lines().nth(2).expect("the member row");
        assert!(row.contains("[1002:73bf]  amdgpu"), "{screen}");
        assert!(row.contains(&format!("{} [1002", g.ellipsis)), "{screen}");
        assert!(!row.contains("narrow"), "{screen}");
    }
}
