//! The console's side of pinning and NUMA: the overview's warning for a GPU guest away from
//! its GPU's node (two-node fixture host, definitions on disk, read as the console reads the
//! host), and the VM form's CPU pinning and NUMA node fields with their problems inline.

use crate::support;
use crate::support::ui::{self, Ui};

use phyllome::fixture::presets;
use phyllome::ops::HostPaths;
use phyllome::tui::action::Loaded;
use phyllome::tui::vms::form::FieldKey;
use phyllome::tui::{update, Action, Keymap, State, Theme};

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_{name}"), screen);
}

#[test]
fn the_overview_warns_about_a_gpu_guest_off_its_gpus_node() {
    let dir = tempfile::tempdir().unwrap();
    presets::two_nodes()
        .write(&dir.path().join("host"))
        .unwrap();
    let vms = dir.path().join("state/vms");
    std::fs::create_dir_all(&vms).unwrap();
    let gpu = "[[vfio]]\naddress = \"0000:81:00.0\"\n";
    std::fs::write(
        vms.join("win.toml"),
        format!("[cpus]\nboot = 4\npin = \"0-3\"\n[memory]\nsize = \"8G\"\nhost_numa_node = 0\n[boot]\nfirmware = \"/fw\"\n{gpu}"),
    )
    .unwrap();
    let paths = HostPaths {
        state_dir: Some(dir.path().join("state")),
        ..HostPaths::new(dir.path().join("host"))
    };
    let host = phyllome::ops::host::read(&paths).unwrap();
    let keymap = Keymap::defaults().unwrap();
    for (cols, rows) in [(80, 24), (120, 40)] {
        let mut state = State::new(&keymap, Theme::new(false, true), false, cols, rows);
        let loaded = Loaded {
            inventory: host.inventory.clone(),
            host_name: Some("tower".into()),
        };
        update(&mut state, Action::InventoryLoaded(Box::new(loaded)));
        let mut ui = Ui::new(state, keymap.clone());
        // The checks come after the GPUs: at 80x24 they are further down.
        if rows < 40 {
            ui.keys("G");
        }
        let screen = ui.screen();
        assert!(screen.contains("NUMA placement of VM win"), "{screen}");
        snap(&format!("overview_numa_{cols}x{rows}"), &screen);
    }
}

#[test]
fn the_form_takes_pinning_and_a_node_with_problems_inline() {
    let mut ui = ui::vms_view(80, 24, false, false, Vec::new());
    // name, vCPUs (2), CPU pinning, memory, NUMA node.
    ui.keys("nwin<tab><tab>2-x<tab><tab>one<tab>");
    snap("vm_form_numa_errors_80x24", &ui.screen());
    let form = ui.state.vms.form.as_ref().unwrap();
    let error = |key| {
        form.field(key)
            .and_then(|f| f.error.clone())
            .unwrap_or_default()
    };
    assert!(error(FieldKey::Pin).contains("is not a CPU list"));
    assert!(error(FieldKey::NumaNode).contains("expected a whole number"));
    // Too many CPUs for 2 vCPUs, then right.
    ui.keys("<shift-tab><shift-tab><shift-tab><backspace><backspace><backspace>8-10");
    let screen = ui.keys("<tab>").screen();
    assert!(screen.contains("3 host CPUs for 2 vCPUs"), "{screen}");
    ui.keys("<shift-tab><backspace><backspace>9<tab><tab><backspace><backspace><backspace>1<tab>");
    let screen = ui.screen();
    assert!(!screen.contains('✘'), "{screen}");
    snap("vm_form_numa_80x24", &screen);
}

#[test]
fn the_detail_view_shows_the_pinning_and_the_node() {
    use phyllome::tui::vms::Detail;
    use phyllome::vmm::manager::RunState;
    let mut ui = ui::vms_view(
        120,
        40,
        false,
        false,
        vec![ui::vm_row("win", RunState::Stopped)],
    );
    ui.keys("<enter>");
    let text = "[cpus]\nboot = 4\npin = \"8-11\"\n[memory]\nsize = \"8G\"\nhost_numa_node = 1\n\
                [boot]\nfirmware = \"/usr/share/cloud-hypervisor/CLOUDHV.fd\"\n\
                [[vfio]]\naddress = \"0000:81:00.0\"\n";
    ui.act(Action::VmDetailLoaded(Box::new(Detail {
        name: "win".into(),
        spec: Ok(phyllome::vm::load(text, "win").unwrap()),
        info: None,
        snapshots: Vec::new(),
        rescue: None,
    })));
    let screen = ui.screen();
    assert!(screen.contains("4, pinned to host CPUs 8-11"), "{screen}");
    assert!(screen.contains("8G, on host node 1"), "{screen}");
    snap("vm_detail_numa_120x40", &screen);
}
