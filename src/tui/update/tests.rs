use crate::host::{CpuVirt, Inventory, IommuInfo, KvmInfo, Vendor};

use super::*;
use crate::tui::action::Loaded;
use crate::tui::keymap::Keymap;
use crate::tui::state::Theme;

fn empty_inventory() -> Inventory {
    Inventory {
        pci_devices: Vec::new(),
        iommu_groups: Vec::new(),
        gpus: Vec::new(),
        iommu: IommuInfo {
            enabled: false,
            reason: "no groups".into(),
            firmware_table: None,
            vendor: Vendor::Unknown,
            cmdline: Vec::new(),
            passthrough_mode: false,
            interrupt_remapping: None,
            group_count: 0,
        },
        kvm: KvmInfo {
            device_present: false,
            accessible: None,
            api_version: None,
            cpu_virtualization: CpuVirt::Unknown,
            nested: None,
            max_vcpus: None,
            capabilities: Vec::new(),
            hugepages: Vec::new(),
            vfio_modules: Vec::new(),
            cloud_hypervisor: None,
            firmware: Vec::new(),
        },
        checks: Vec::new(),
        warnings: Vec::new(),
    }
}

fn state() -> State {
    State::new(
        &Keymap::defaults().unwrap(),
        Theme::new(false, true),
        false,
        80,
        24,
    )
}

fn loaded() -> Action {
    Action::InventoryLoaded(Box::new(Loaded {
        inventory: empty_inventory(),
        host_name: Some("box".into()),
    }))
}

#[test]
fn a_refresh_during_a_read_runs_once_after_it() {
    let mut s = state();
    assert_eq!(s.load, Load::Loading);
    assert!(update(&mut s, Action::Refresh).is_empty());
    assert!(update(&mut s, Action::Refresh).is_empty());
    assert!(s.reload_queued);
    assert_eq!(update(&mut s, loaded()), vec![Effect::ReloadInventory]);
    assert_eq!(s.load, Load::Loading);
    assert!(update(&mut s, loaded()).is_empty());
    assert_eq!(s.load, Load::Loaded);
    assert_eq!(
        update(&mut s, Action::Refresh),
        vec![Effect::ReloadInventory]
    );
}

#[test]
fn a_failed_read_keeps_the_last_inventory() {
    let mut s = state();
    update(&mut s, loaded());
    update(&mut s, Action::Refresh);
    update(&mut s, Action::InventoryFailed("boom".into()));
    assert_eq!(s.load, Load::Failed("boom".into()));
    assert!(s.inventory.is_some());
    assert_eq!(s.host_name.as_deref(), Some("box"));
}

#[test]
fn views_cycle_both_ways() {
    let mut s = state();
    for expected in [
        View::Groups,
        View::Gpus,
        View::Kvm,
        View::Vms,
        View::Dashboard,
        View::Host,
        View::Overview,
    ] {
        update(&mut s, Action::NextView);
        assert_eq!(s.view, expected);
    }
    update(&mut s, Action::PrevView);
    assert_eq!(s.view, View::Host);
}

#[test]
fn back_closes_help_then_leaves_the_view_then_quits() {
    let mut s = state();
    update(&mut s, Action::ViewKvm);
    update(&mut s, Action::Help);
    assert_eq!(s.help, Some(0));
    // Navigation keys scroll the help, they do not switch views.
    update(&mut s, Action::NextView);
    assert_eq!(s.view, View::Kvm);
    assert!(update(&mut s, Action::Back).is_empty());
    assert_eq!((s.help, s.view), (None, View::Kvm));
    assert!(update(&mut s, Action::Back).is_empty());
    assert_eq!(s.view, View::Overview);
    assert_eq!(update(&mut s, Action::Back), vec![Effect::Quit]);
    assert!(s.quit);
}

#[test]
fn quit_works_from_inside_help_and_filter() {
    let mut s = state();
    update(&mut s, Action::Help);
    assert_eq!(update(&mut s, Action::Quit), vec![Effect::Quit]);
    let mut s = state();
    update(&mut s, Action::ViewGroups);
    update(&mut s, Action::Filter);
    assert!(s.filter.editing);
    assert_eq!(update(&mut s, Action::Quit), vec![Effect::Quit]);
}

#[test]
fn help_scroll_stops_at_the_last_page() {
    let mut s = state();
    update(&mut s, Action::Help);
    for _ in 0..200 {
        update(&mut s, Action::Down);
    }
    let max = s.help.unwrap();
    let total = HelpPanel::line_count(&s.help_sections);
    assert_eq!(max, total - (24 - 6));
    update(&mut s, Action::Top);
    assert_eq!(s.help, Some(0));
}

#[test]
fn filter_edits_and_esc_clears() {
    let mut s = state();
    update(&mut s, Action::ViewGpus);
    update(&mut s, Action::Filter);
    for c in "nvx".chars() {
        update(&mut s, Action::FilterInput(c));
    }
    update(&mut s, Action::FilterBackspace);
    assert_eq!(s.filter.text, "nv");
    update(&mut s, Action::FilterAccept);
    assert!(!s.filter.editing);
    assert_eq!(s.filter.text, "nv");
    update(&mut s, Action::Back);
    assert!(s.filter.text.is_empty());
    assert_eq!(s.view, View::Gpus);
}

#[test]
fn filter_is_not_offered_where_nothing_is_listed() {
    let mut s = state();
    update(&mut s, Action::Filter);
    assert!(!s.filter.editing);
}

#[test]
fn redraw_repaints_and_rechecks_the_size() {
    let mut s = state();
    assert_eq!(
        update(&mut s, Action::Redraw),
        vec![Effect::Redraw, Effect::QueryTerminalSize]
    );
}

#[test]
fn resize_updates_the_tree_height() {
    let mut s = state();
    update(&mut s, loaded());
    update(
        &mut s,
        Action::Resize {
            cols: 120,
            rows: 40,
        },
    );
    assert_eq!((s.cols, s.rows), (120, 40));
    // 40 rows: header and footer, tree block borders.
    assert_eq!(s.groups.height(), 36);
    update(&mut s, Action::Resize { cols: 80, rows: 24 });
    assert_eq!(s.groups.height(), 24 - 2 - 7 - 2);
}

#[test]
fn cursor_moves_on_an_empty_inventory_do_nothing() {
    let mut s = state();
    update(&mut s, loaded());
    for view in [
        Action::ViewOverview,
        Action::ViewGroups,
        Action::ViewGpus,
        Action::ViewKvm,
    ] {
        update(&mut s, view);
        for a in [
            Action::Down,
            Action::PageDown,
            Action::Bottom,
            Action::Up,
            Action::PageUp,
        ] {
            update(&mut s, a);
        }
    }
    assert_eq!(
        (s.groups.selected(), s.gpu_selected, s.kvm_scroll),
        (0, 0, 0)
    );
}
