//! The console's rescue actions on the VMs view, driven through the keymap and `update`:
//! NMI, unlock and rescue boot ask first and then send their request; the detail view lists
//! snapshots (select, restore with a yes, delete with the ID typed) and shows a rescue boot.
//! Screens snapshotted at 80x24, 120x40 and in ASCII. Last, what the keys end in: the
//! worker running each request on the test double.

use std::path::PathBuf;

use phyllome::tui::vms::{Detail, LiveInfo, VmRow};
use phyllome::tui::{Action, Effect, Keymap};
use phyllome::vm::{load, EXAMPLE_TOML};
use phyllome::vmm::manager::{RescuePayload, RunState, SnapshotInfo};
use phyllome::vmm::worker::VmRequest;

use crate::support;
use crate::support::ui::Ui;

/// A VM with a device passed through (a rescue boot leaves it out).
fn row(name: &str, state: RunState) -> VmRow {
    VmRow {
        vfio: 1,
        ..support::ui::vm_row(name, state)
    }
}

fn ui(cols: u16, rows: u16, ascii: bool, desktop: RunState) -> Ui {
    let vms = vec![row("desktop", desktop), row("web", RunState::Stopped)];
    support::ui::vms_view(cols, rows, ascii, false, vms)
}

fn snapshot(id: &str, at: u64, state: &str) -> SnapshotInfo {
    SnapshotInfo {
        id: id.into(),
        vm: "desktop".into(),
        created_at: at,
        state: state.into(),
        size_bytes: 4 << 30,
        path: PathBuf::from(format!("/var/lib/phyllome/snapshots/desktop/{id}")),
        kind: "memory".into(),
        disks: Vec::new(),
    }
}

fn detail(ui: &mut Ui, running: bool, rescue: bool) {
    let spec = load(EXAMPLE_TOML, "desktop").unwrap();
    ui.act(Action::VmDetailLoaded(Box::new(Detail {
        name: "desktop".into(),
        spec: Ok(spec),
        info: running.then_some(Ok(LiveInfo {
            state: RunState::Running,
            uptime_secs: Some(600),
            memory_actual: None,
        })),
        snapshots: vec![
            snapshot("1", 1_795_920_780, "Running"),
            snapshot("2", 1_796_007_180, "Paused"),
        ],
        rescue: rescue.then(|| RescuePayload {
            kernel: Some("/boot/vmlinuz".into()),
            initramfs: Some("/boot/initrd.img".into()),
            cmdline: Some("console=ttyS0 break=premount".into()),
            settings: "built-in".into(),
            ..Default::default()
        }),
    })));
}

fn requests(ui: &Ui) -> Vec<VmRequest> {
    ui.all_effects
        .iter()
        .filter_map(|e| match e {
            Effect::Vm(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// The worker's report that `op` on VM `name` went through.
fn succeeded(ui: &mut Ui, op: &str, name: &str) {
    ui.act(Action::VmDone {
        op: op.into(),
        name: name.into(),
        result: Ok(None),
    });
}

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_{name}"), screen);
}

#[test]
fn nmi_unlock_and_rescue_ask_then_send() {
    let mut ui = ui(80, 24, false, RunState::Running);
    ui.keys("N");
    let c = ui.state.vms.confirm.as_ref().expect("a question");
    assert_eq!(c.title, "Send desktop an NMI?");
    snap("vm_nmi_confirm_80x24", &ui.screen());
    ui.keys("n");
    assert!(requests(&ui).is_empty(), "sent without a yes");
    ui.keys("Ny");
    assert_eq!(requests(&ui), [VmRequest::Nmi("desktop".into())]);

    // A running VM is neither unlocked nor rescued; a stopped one is, after a yes.
    succeeded(&mut ui, "nmi", "desktop");
    ui.keys("U");
    assert!(ui.state.vms.confirm.is_none());
    assert!(ui
        .state
        .vms
        .message
        .as_deref()
        .unwrap()
        .contains("stop it first"));
    ui.keys("B");
    assert!(ui.state.vms.confirm.is_none());
    ui.keys("j");
    ui.keys("N");
    assert!(ui
        .state
        .vms
        .message
        .as_deref()
        .unwrap()
        .contains("not running"));
    ui.keys("B");
    assert_eq!(
        ui.state.vms.confirm.as_ref().unwrap().title,
        "Start web for rescue?"
    );
    snap("vm_rescue_confirm_80x24", &ui.screen());
    ui.keys("y");
    ui.keys("U");
    assert!(ui
        .state
        .vms
        .message
        .as_deref()
        .unwrap()
        .contains("wait for it"));
    succeeded(&mut ui, "rescue", "web");
    ui.keys("Uy");
    assert_eq!(
        requests(&ui),
        [
            VmRequest::Nmi("desktop".into()),
            VmRequest::Rescue("web".into()),
            VmRequest::Unlock("web".into())
        ]
    );
}

#[test]
fn the_detail_lists_snapshots_and_restores_or_deletes_the_selected_one() {
    let mut ui = ui(80, 24, false, RunState::Running);
    ui.keys("<enter>");
    detail(&mut ui, true, true);
    snap("vm_detail_rescue_snapshots_80x24", &ui.screen());
    let mut big = self::ui(120, 40, false, RunState::Running);
    big.keys("<enter>");
    detail(&mut big, true, true);
    big.keys("]");
    snap("vm_detail_rescue_snapshots_120x40", &big.screen());
    let mut ascii = self::ui(80, 24, true, RunState::Running);
    ascii.keys("<enter>");
    detail(&mut ascii, true, false);
    ascii.keys("G");
    let screen = ascii.screen();
    assert!(screen.is_ascii());
    snap("vm_detail_snapshots_ascii_80x24", &screen);

    // Selecting scrolls the list into sight on a small screen.
    ui.keys("]");
    assert!(ui.screen().contains("> 2 "), "{}", ui.screen());
    ui.keys("[");
    // Snapshot the running VM: a yes, then the request.
    ui.keys("Sy");
    assert_eq!(requests(&ui), [VmRequest::SnapshotCreate("desktop".into())]);
    succeeded(&mut ui, "snapshot", "desktop");
    // Restoring wants the VM stopped.
    ui.keys("]]]T");
    assert_eq!(
        ui.state.vms.snapshot_sel, 1,
        "the selection stops at the end"
    );
    assert!(ui.state.vms.confirm.is_none());
    assert!(ui
        .state
        .vms
        .message
        .as_deref()
        .unwrap()
        .contains("stop it first"));
    ui.act(Action::VmsLoaded(Ok(vec![
        row("desktop", RunState::Stopped),
        row("web", RunState::Stopped),
    ])));
    ui.keys("T");
    assert_eq!(
        ui.state.vms.confirm.as_ref().unwrap().title,
        "Start desktop from snapshot 2?"
    );
    snap("vm_snapshot_restore_confirm_80x24", &ui.screen());
    ui.keys("y");
    succeeded(&mut ui, "restore", "desktop");
    // Deleting wants the snapshot's ID typed.
    ui.keys("[d");
    assert_eq!(
        ui.state.vms.confirm.as_ref().unwrap().title,
        "Delete snapshot 1 of desktop?"
    );
    ui.keys("<enter>");
    assert!(ui.state.vms.confirm.is_some(), "accepted without the ID");
    snap("vm_snapshot_delete_confirm_80x24", &ui.screen());
    ui.keys("1<enter>");
    assert_eq!(
        requests(&ui)[1..],
        [
            VmRequest::SnapshotRestore {
                name: "desktop".into(),
                id: "2".into()
            },
            VmRequest::SnapshotDelete {
                name: "desktop".into(),
                id: "1".into()
            }
        ]
    );
}

#[test]
fn snapshot_keys_outside_the_detail_say_what_to_do() {
    let mut ui = ui(80, 24, false, RunState::Stopped);
    ui.keys("T");
    assert!(ui.state.vms.message.as_deref().unwrap().contains("Enter"));
    ui.keys("N");
    let message = ui.state.vms.message.clone().unwrap_or_default();
    assert!(message.contains("not running"), "{message}");
    assert!(requests(&ui).is_empty());
    // A stopped VM's snapshot is one of its qcow2 disks.
    ui.keys("Sy");
    assert_eq!(requests(&ui), [VmRequest::SnapshotCreate("desktop".into())]);
    // A read-only console drops them all.
    let keymap = Keymap::load(None, true).unwrap();
    for a in [
        Action::VmNmi,
        Action::VmUnlock,
        Action::VmRescue,
        Action::VmSnapshot,
        Action::VmSnapshotRestore,
        Action::VmSnapshotDelete,
    ] {
        let bound = keymap.bindings().iter().any(|b| b.action == a);
        assert!(!bound, "{a:?} is bound read-only");
    }
}

/// What the console's keys end in: the worker runs each rescue request through the manager
/// and reports it done (or failed with the manager's causes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consoles_worker_runs_the_rescue_requests() {
    use phyllome::vmm::manager::{ManagerConfig, VmManager};
    use phyllome::vmm::runtime::RunRoot;
    use phyllome::vmm::worker::{self, VmRequest};

    let env = crate::vm_rescue::Env::new();
    env.define("t1", "");
    let (kernel, _) = crate::vm_rescue::rescue_files(&env);
    std::fs::create_dir_all(&env.state).unwrap();
    std::fs::write(
        env.state.join("rescue.toml"),
        format!("kernel = {kernel:?}\ncmdline = \"console=ttyS0\"\n"),
    )
    .unwrap();
    let mut process_env = crate::support::EnvLock::take();
    process_env.set("PHYLLOME_SUPERVISOR", "process");
    process_env.set("CH_DOUBLE_REQUEST_LOG", &env.log);
    let root = RunRoot::resolve(Some(&env.run)).unwrap();
    let cfg = ManagerConfig::new(Some(env.state.clone()), root, env.ch_bin.clone());
    let (tx, mut rx) = worker::spawn(
        std::sync::Arc::new(VmManager::new(cfg)),
        std::time::Duration::from_millis(100),
    );
    let tx_ = &tx;
    let name = || "t1".to_string();
    assert_eq!(
        run(tx_, &mut rx, VmRequest::Rescue(name())).await,
        ("rescue", Ok(()))
    );
    assert_eq!(
        env.info("t1")["rescue_payload"]["kernel"],
        kernel.to_str().unwrap()
    );
    assert_eq!(
        run(tx_, &mut rx, VmRequest::Nmi(name())).await,
        ("nmi", Ok(()))
    );
    assert_eq!(
        run(tx_, &mut rx, VmRequest::SnapshotCreate(name())).await,
        ("snapshot", Ok(()))
    );
    let (action, result) = run(tx_, &mut rx, VmRequest::Unlock(name())).await;
    assert_eq!(action, "unlock");
    assert!(
        result.unwrap_err().contains("its VMM, pid"),
        "refused while it runs"
    );
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    let restore = VmRequest::SnapshotRestore {
        name: name(),
        id: "1".into(),
    };
    assert_eq!(run(tx_, &mut rx, restore).await, ("restore", Ok(())));
    assert_eq!(env.state("t1"), "Running");
    let delete = VmRequest::SnapshotDelete {
        name: name(),
        id: "1".into(),
    };
    assert_eq!(run(tx_, &mut rx, delete).await, ("delete snapshot", Ok(())));
    assert!(env.snapshots("t1").is_empty());
    assert!(env.routes().iter().any(|r| r == "vm.nmi"));
}

/// Sends one request to the worker and waits for its result.
async fn run(
    tx: &tokio::sync::mpsc::UnboundedSender<phyllome::vmm::worker::VmRequest>,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<phyllome::vmm::worker::VmUpdate>,
    req: phyllome::vmm::worker::VmRequest,
) -> (&'static str, Result<(), String>) {
    use phyllome::vmm::worker::VmUpdate;
    tx.send(req).unwrap();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv()).await {
            Ok(Some(VmUpdate::Done { action, result, .. })) => {
                return (action, result.map(|_| ()).map_err(|e| e.one_line()))
            }
            Ok(Some(_)) => continue,
            other => panic!("no result: {other:?}"),
        }
    }
}
