//! The disks section of a VM's detail in the console: real images inspected, snapshotted at
//! 80x24, 120x40 and in ASCII; the real loop reads a stopped VM's disk on its own.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use phyllome::disk::Inspection;
use phyllome::tui::vms::{Detail, DiskView, LiveInfo, VmDisks, VmRow};
use phyllome::tui::{run_on, Action, Keymap};
use phyllome::vmm::manager::RunState;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::{blank, ext4_at, gpt_image, have, qcow2_of, MIB};
use crate::support::ui::{self, Ui};

const DEF: &str = "[cpus]\nboot = 2\n\n[memory]\nsize = \"4G\"\n\n[boot]\n\
    firmware = \"/usr/share/cloud-hypervisor/CLOUDHV.fd\"\n\n\
    [[disks]]\npath = \"/var/lib/phyllome/images/desktop.qcow2\"\n\n\
    [[disks]]\npath = \"/var/lib/phyllome/images/data.img\"\n\n\
    [[disks]]\npath = \"/var/lib/phyllome/images/gone.img\"\n";

fn detail_ui(cols: u16, rows: u16, ascii: bool, state_: RunState) -> Ui {
    let desktop = VmRow {
        disks: 3,
        ..ui::vm_row("desktop", state_)
    };
    let mut ui = ui::vms_view(cols, rows, ascii, false, vec![desktop]);
    ui.keys("<enter>");
    let info = (state_ == RunState::Running).then_some(Ok(LiveInfo {
        state: state_,
        uptime_secs: Some(3600),
        memory_actual: Some(4 << 30),
    }));
    ui.act(Action::VmDetailLoaded(Box::new(Detail {
        name: "desktop".into(),
        spec: Ok(phyllome::vm::load(DEF, "desktop").unwrap()),
        info,
        snapshots: Vec::new(),
        rescue: None,
    })));
    ui
}

/// A real inspection shown under the path the definition names.
fn shown_as(image: &Path, path: &str) -> DiskView {
    let mut ins: Inspection = phyllome::ops::disk::inspect(image).unwrap();
    ins.path = path.into();
    DiskView {
        path: path.into(),
        inspection: Ok(ins),
    }
}

fn disks(dir: &Path) -> VmDisks {
    let raw = gpt_image(dir);
    let q = qcow2_of(&raw, "desktop.qcow2");
    let data = dir.join("data.img");
    blank(&data, 40 * MIB);
    ext4_at(&data, 0, 40 * MIB, "data", "d");
    let gone = "/var/lib/phyllome/images/gone.img";
    VmDisks {
        name: "desktop".into(),
        inspected: Some(vec![
            shown_as(&q, "/var/lib/phyllome/images/desktop.qcow2"),
            shown_as(&data, "/var/lib/phyllome/images/data.img"),
            DiskView {
                path: gone.into(),
                inspection: Err(format!(
                    "Cannot open the image {gone}: No such file or directory (os error 2)"
                )),
            },
        ]),
    }
}

const TOOLS: [(&str, &str); 4] = [
    ("sfdisk", "fdisk"),
    ("mkfs.ext4", "e2fsprogs"),
    ("mkfs.vfat", "dosfstools"),
    ("qemu-img", "qemu-utils"),
];

#[test]
fn a_stopped_vm_shows_its_disks() {
    if !have("console disks", &TOOLS) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = disks(dir.path());
    for (cols, rows, ascii) in [(80, 24, false), (120, 40, false), (80, 24, true)] {
        let mut ui = detail_ui(cols, rows, ascii, RunState::Stopped);
        ui.act(Action::VmDisksInspected(Box::new(d.clone())));
        // The section is below the definition: scroll to the end.
        ui.keys("<end>");
        let screen = ui.screen();
        assert!(screen.contains("Disks"), "{screen}");
        assert!(screen.contains("ext4 \"root\""), "{screen}");
        assert!(screen.contains("No such file"), "{screen}");
        if ascii {
            assert!(screen.is_ascii(), "{screen}");
        }
        let name = format!(
            "tui_vm_detail_disks{}_{cols}x{rows}",
            if ascii { "_ascii" } else { "" }
        );
        crate::support::snap(&name, &screen);
    }
}

#[test]
fn a_running_vm_says_when_its_disks_show() {
    let mut ui = detail_ui(120, 40, false, RunState::Running);
    ui.act(Action::VmDisksInspected(Box::new(VmDisks {
        name: "desktop".into(),
        inspected: None,
    })));
    let screen = ui.screen();
    assert!(
        screen.contains("Shown when the VM is stopped: its VMM holds the images now."),
        "{screen}"
    );
    // Another VM's answer, arriving late, changes nothing.
    ui.act(Action::VmDisksInspected(Box::new(VmDisks {
        name: "other".into(),
        inspected: Some(Vec::new()),
    })));
    assert_eq!(ui.screen(), screen);
}

#[tokio::test]
async fn the_loop_inspects_a_stopped_vms_disk() {
    if !have("console loop disks", &[("mkfs.ext4", "e2fsprogs")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("data.img");
    blank(&img, 40 * MIB);
    ext4_at(&img, 0, 40 * MIB, "rescue-me", "x");
    let vms = dir.path().join("state/vms");
    std::fs::create_dir_all(&vms).unwrap();
    let def = format!(
        "[cpus]\nboot = 1\n\n[memory]\nsize = \"1G\"\n\n[boot]\n\
         firmware = \"/usr/share/cloud-hypervisor/CLOUDHV.fd\"\n\n[[disks]]\npath = {img:?}\n"
    );
    std::fs::write(vms.join("desktop.toml"), def).unwrap();
    let events = vec![Ok(ui::key("5")), Ok(ui::key("enter")), Ok(ui::key("end"))];
    let stream = ui::paced(events, Duration::from_millis(300))
        .chain(futures::stream::pending())
        .boxed();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    let root = dir.path();
    let opts = phyllome::tui::ConsoleOptions {
        paths: phyllome::ops::HostPaths {
            host_root: root.join("host"),
            ch_bin: Some(root.join("no-cloud-hypervisor")),
            ..ui::console(root, root).paths
        },
        ..ui::console(root, root)
    };
    let run = run_on(&mut terminal, stream, Keymap::defaults().unwrap(), &opts);
    let _ = tokio::time::timeout(Duration::from_secs(6), run).await;
    let screen = terminal.backend().to_string();
    assert!(screen.contains("ext4 \"rescue-me\""), "{screen}");
    assert!(screen.contains("table none"), "{screen}");
}
