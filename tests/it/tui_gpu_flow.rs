//! The GPU screen's operations, driven through the keymap and `update` as a user would,
//! with the background jobs' results fed in by hand (plans from fixture trees, a made-up
//! sequence of step events): the pure flow, and snapshots of every screen of it.

use crate::support;

use phyllome::fixture::{presets, HostSpec};
use phyllome::host::{Inventory, PciAddress, SysRoot};
use phyllome::tui::action::Loaded;
use phyllome::tui::gpus::{BootView, FailureReport, GpuJob, GpuMsg, GpuOp, Outcome, Review, Stage};
use phyllome::tui::vms::VmRow;
use phyllome::tui::{update, Action, Effect, Keymap, State, Theme};
use phyllome::vfio::{self, Phase, PlanOptions, StepEvent, StepStatus};
use phyllome::vmm::manager::RunState;

const GPU: &str = "0000:0b:00.0";

fn addr(s: &str) -> PciAddress {
    s.parse().unwrap()
}

/// The console driver with the fixture host it reads.
struct Ui {
    ui: support::ui::Ui,
    root: tempfile::TempDir,
}

impl std::ops::Deref for Ui {
    type Target = support::ui::Ui;
    fn deref(&self) -> &Self::Target {
        &self.ui
    }
}

impl std::ops::DerefMut for Ui {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.ui
    }
}

impl Ui {
    fn new(spec: HostSpec, cols: u16, rows: u16, ascii: bool, read_only: bool) -> Ui {
        let root = tempfile::tempdir().unwrap();
        spec.write(root.path()).unwrap();
        let keymap = Keymap::load(None, read_only).unwrap();
        let mut state = State::new(&keymap, Theme::new(ascii, false), read_only, cols, rows);
        let inventory = Inventory::collect(&SysRoot::new(root.path()));
        let loaded = Loaded {
            inventory,
            host_name: Some("tower".into()),
        };
        update(&mut state, Action::InventoryLoaded(Box::new(loaded)));
        let vm = |name: &str, state: RunState, vfio: usize| VmRow {
            name: name.into(),
            state,
            defined: true,
            autostart: false,
            stop_timeout_secs: Some(60),
            vcpus: Some(8),
            memory_bytes: Some(16 << 30),
            uptime_secs: None,
            disks: 1,
            nets: 1,
            vfio,
            error: None,
        };
        update(
            &mut state,
            Action::VmsLoaded(Ok(vec![
                vm("desk", RunState::Stopped, 0),
                vm("games", RunState::Running, 2),
            ])),
        );
        Ui {
            ui: support::ui::Ui::new(state, keymap),
            root,
        }
    }

    fn desktop() -> Ui {
        Ui::new(presets::desktop(), 80, 24, false, false)
    }

    fn msg(&mut self, m: GpuMsg) -> &mut Self {
        self.act(Action::Gpu(Box::new(m)));
        self
    }

    fn root(&self) -> SysRoot {
        SysRoot::new(self.root.path())
    }

    /// The review the background job would send: the fixture's real plan.
    fn review(&self, op: GpuOp, vm: Option<&str>) -> Review {
        let root = self.root();
        let inv = Inventory::collect(&root);
        let plan = match op {
            GpuOp::Reattach => {
                vfio::release_plan(&root, &inv, addr(GPU), &Default::default()).unwrap()
            }
            _ => vfio::plan(&root, &inv, addr(GPU), &PlanOptions::default()).unwrap(),
        };
        Review {
            notes: vec![match vm {
                Some(vm) => format!(
                    "VM {vm} runs: the group moves to vfio-pci now and is hot-plugged into it"
                ),
                None => "IOMMU group 14 moves to vfio-pci for no VM in particular".into(),
            }],
            vm: vm.map(str::to_string),
            vm_running: vm.is_some(),
            runs_now: true,
            plan: Some(plan),
        }
    }

    fn stage(&self) -> &Stage {
        &self
            .state
            .gpu
            .flow
            .as_ref()
            .expect("an operation is open")
            .stage
    }
}

fn snap(name: &str, screen: &str) {
    support::snap(&format!("tui_gpu_{name}"), screen);
}

fn step(index: usize, total: usize, d: &str, phase: Phase, status: StepStatus) -> GpuMsg {
    GpuMsg::Step(StepEvent {
        index,
        total,
        description: d.into(),
        phase,
        status,
    })
}

/// Runs the first `done` steps of the review's plan, and starts the next one.
fn run_steps(ui: &mut Ui, done: usize) {
    let plan = match ui.stage() {
        Stage::Running { review, .. } => review.plan.clone().unwrap(),
        other => panic!("not running: {other:?}"),
    };
    let total = plan.steps.len();
    for (i, s) in plan.steps.iter().enumerate().take(done) {
        ui.msg(step(
            i,
            total,
            &s.description,
            Phase::Do,
            StepStatus::Running,
        ));
        ui.msg(step(i, total, &s.description, Phase::Do, StepStatus::Done));
    }
    if let Some(s) = plan.steps.get(done) {
        ui.msg(step(
            done,
            total,
            &s.description,
            Phase::Do,
            StepStatus::Running,
        ));
    }
}

/// `a`, choose `games`, review, type the phrase: the flow up to its running steps.
fn assign_until_running(ui: &mut Ui) {
    ui.keys("3a");
    assert_eq!(ui.stage(), &Stage::PickVm { selected: 0 });
    ui.keys("j<enter>");
    assert_eq!(
        ui.effects,
        vec![Effect::Gpu(GpuJob::Review {
            op: GpuOp::Assign,
            gpu: addr(GPU),
            vm: Some("games".into()),
        })]
    );
    let review = ui.review(GpuOp::Assign, Some("games"));
    ui.msg(GpuMsg::Reviewed {
        gpu: addr(GPU),
        op: GpuOp::Assign,
        result: Ok(review),
    });
    ui.keys("<enter>");
    ui.keys(&format!("take the console from {GPU}<enter>"));
    assert!(
        matches!(ui.stage(), Stage::Running { .. }),
        "{:?}",
        ui.stage()
    );
}

#[test]
fn pick_a_gpu_pick_a_vm_review_confirm_and_run() {
    let mut ui = Ui::desktop();
    assign_until_running(&mut ui);
    let effects = ui.effects.clone();
    let [Effect::Gpu(GpuJob::Run { op, gpu, review })] = effects.as_slice() else {
        panic!("expected one run job: {effects:?}");
    };
    assert_eq!((*op, *gpu), (GpuOp::Assign, addr(GPU)));
    assert_eq!(review.vm.as_deref(), Some("games"));
    let plan = review.plan.as_ref().unwrap();
    assert!(plan.is_confirmed(), "the typed phrase confirmed the plan");

    run_steps(&mut ui, plan.steps.len());
    ui.msg(GpuMsg::Log(
        "  hot-plugged 0000:0b:00.0 (guest 0000:00:05.0)".into(),
    ));
    ui.msg(GpuMsg::Finished(Outcome::Done(vec![
        "VM games has IOMMU group 14".into(),
    ])));
    assert!(matches!(ui.stage(), Stage::Finished { .. }));
    // The host changed: read it again, and the holds with it.
    assert!(ui.effects.contains(&Effect::ReloadInventory));
    assert!(ui.effects.contains(&Effect::Gpu(GpuJob::LoadStates)));
    ui.keys("<esc>");
    assert!(ui.state.gpu.flow.is_none());
    assert!(ui.state.gpu.message.as_deref().unwrap().contains("done"));
}

#[test]
fn a_wrong_phrase_is_refused_and_the_right_one_accepted() {
    let mut ui = Ui::desktop();
    ui.keys("3d");
    assert_eq!(ui.stage(), &Stage::Planning);
    let review = ui.review(GpuOp::Detach, None);
    ui.msg(GpuMsg::Reviewed {
        gpu: addr(GPU),
        op: GpuOp::Detach,
        result: Ok(review),
    });
    ui.keys("<enter>take the console<enter>");
    let Stage::Confirm { error, .. } = ui.stage() else {
        panic!("{:?}", ui.stage());
    };
    assert!(
        error.as_deref().unwrap().contains("does not match"),
        "{error:?}"
    );
    assert!(ui.effects.is_empty(), "nothing runs on a wrong phrase");
    ui.keys(&format!(" from {GPU}<enter>"));
    assert!(matches!(ui.stage(), Stage::Running { .. }));
    assert!(matches!(
        ui.effects.as_slice(),
        [Effect::Gpu(GpuJob::Run {
            op: GpuOp::Detach,
            ..
        })]
    ));
}

#[test]
fn esc_in_the_confirmation_goes_back_to_the_plan_and_no_declines() {
    let mut ui = Ui::new(presets::two_gpus_shared_group(), 80, 24, false, false);
    ui.keys("3");
    // The Intel iGPU is first, the shared group below it: pick the GeForce.
    ui.keys("jh");
    let gpu = ui.state.gpu.flow.as_ref().unwrap().gpu;
    ui.msg(GpuMsg::Reviewed {
        gpu,
        op: GpuOp::Reattach,
        result: Ok(Review {
            runs_now: true,
            ..Review::default()
        }),
    });
    ui.keys("<enter>");
    assert!(matches!(ui.stage(), Stage::Confirm { .. }));
    ui.keys("<esc>");
    assert!(matches!(ui.stage(), Stage::Review(_)));
    ui.keys("<enter>n");
    assert!(matches!(ui.stage(), Stage::Review(_)));
    ui.keys("<enter>y");
    assert!(matches!(ui.stage(), Stage::Running { .. }));
}

#[test]
fn read_only_refuses_every_operation_that_changes_the_host() {
    let mut ui = Ui::new(presets::desktop(), 80, 24, false, true);
    ui.keys("3adhu");
    assert!(ui.state.gpu.flow.is_none());
    // Even an action that reaches `update` without a key is refused.
    ui.effects = update(&mut ui.state, Action::GpuDetach);
    assert!(ui.effects.is_empty());
    assert!(ui.state.gpu.flow.is_none());
    assert!(ui
        .state
        .gpu
        .message
        .as_deref()
        .unwrap()
        .contains("read-only"));
    // The dry run and the boot preview stay.
    ui.keys("p");
    assert_eq!(ui.stage(), &Stage::Planning);
    ui.keys("<esc>b");
    assert!(ui.state.gpu.boot.is_some());
    ui.keys("I");
    let boot = ui.state.gpu.boot.as_ref().unwrap();
    assert!(boot.confirm.is_none());
    ui.effects = update(&mut ui.state, Action::GpuBootInstall);
    assert!(ui.effects.is_empty());
}

#[test]
fn a_stale_review_for_a_closed_operation_is_dropped() {
    let mut ui = Ui::desktop();
    ui.keys("3d<esc>");
    let review = ui.review(GpuOp::Detach, None);
    ui.msg(GpuMsg::Reviewed {
        gpu: addr(GPU),
        op: GpuOp::Detach,
        result: Ok(review),
    });
    assert!(ui.state.gpu.flow.is_none());
}

#[test]
fn a_running_operation_cannot_be_closed() {
    let mut ui = Ui::desktop();
    assign_until_running(&mut ui);
    ui.keys("<esc>q");
    assert!(matches!(ui.stage(), Stage::Running { .. }));
}

fn failed_run(ui: &mut Ui) {
    assign_until_running(ui);
    let plan = match ui.stage() {
        Stage::Running { review, .. } => review.plan.clone().unwrap(),
        _ => unreachable!(),
    };
    let total = plan.steps.len();
    // Steps 1-4 go through, step 5 fails; the rollback undoes 5..1, one undo fails.
    run_steps(ui, 4);
    ui.msg(step(
        4,
        total,
        &plan.steps[4].description,
        Phase::Do,
        StepStatus::Failed("Device or resource busy (os error 16)".into()),
    ));
    let mut restored = Vec::new();
    for i in (0..=4).rev() {
        let Some(u) = plan.steps[i].undo_description.clone() else {
            continue;
        };
        ui.msg(step(i, total, &u, Phase::Undo, StepStatus::Running));
        if i == 0 {
            ui.msg(step(
                i,
                total,
                &u,
                Phase::Undo,
                StepStatus::Failed("Permission denied (os error 13)".into()),
            ));
        } else {
            ui.msg(step(i, total, &u, Phase::Undo, StepStatus::Done));
            restored.push(u);
        }
    }
    let first_undo = plan.steps[0].undo_description.clone().unwrap();
    ui.msg(GpuMsg::Finished(Outcome::Failed(FailureReport {
        step: 4,
        description: plan.steps[4].description.clone(),
        error: "Device or resource busy (os error 16)".into(),
        restored,
        unrestored: vec![
            format!("{first_undo}: Permission denied (os error 13)"),
            "vtcon1: console bind 1 → 0".into(),
        ],
    })));
}

#[test]
fn a_failure_shows_the_rollback_and_what_was_not_restored() {
    let mut ui = Ui::desktop();
    failed_run(&mut ui);
    let Stage::Finished {
        progress, outcome, ..
    } = ui.stage()
    else {
        panic!("{:?}", ui.stage());
    };
    assert!(matches!(outcome, Outcome::Failed(f) if f.unrestored.len() == 2));
    assert_eq!(
        progress.steps[4].status,
        Some(StepStatus::Failed(
            "Device or resource busy (os error 16)".into()
        ))
    );
    assert!(progress.steps[5].status.is_none(), "never started");
    assert!(progress
        .rollback
        .iter()
        .any(|r| matches!(r.status, Some(StepStatus::Failed(_)))));
    let msg = ui.state.gpu.message.clone().unwrap();
    assert!(msg.contains("ROLLBACK INCOMPLETE"), "{msg}");
}

// ---- snapshots --------------------------------------------------------------------------

const SIZES: [(u16, u16, bool, &str); 3] = [
    (80, 24, false, "80x24"),
    (120, 40, false, "120x40"),
    (80, 24, true, "ascii_80x24"),
];

fn each_size(f: impl Fn(&mut Ui)) -> Vec<(String, String)> {
    SIZES
        .iter()
        .map(|(c, r, ascii, name)| {
            let mut ui = Ui::new(presets::desktop(), *c, *r, *ascii, false);
            f(&mut ui);
            let screen = ui.screen();
            if *ascii {
                assert!(screen.is_ascii(), "not ASCII:\n{screen}");
            }
            (name.to_string(), screen)
        })
        .collect()
}

#[test]
fn snapshots_of_the_vm_picker() {
    for (size, screen) in each_size(|ui| {
        ui.keys("3aj");
    }) {
        snap(&format!("pick_vm_{size}"), &screen);
    }
}

#[test]
fn snapshots_of_the_plan() {
    for (size, screen) in each_size(|ui| {
        ui.keys("3aj<enter>");
        let review = ui.review(GpuOp::Assign, Some("games"));
        ui.msg(GpuMsg::Reviewed {
            gpu: addr(GPU),
            op: GpuOp::Assign,
            result: Ok(review),
        });
    }) {
        snap(&format!("plan_{size}"), &screen);
    }
}

#[test]
fn snapshots_of_the_typed_confirmation() {
    for (size, screen) in each_size(|ui| {
        ui.keys("3aj<enter>");
        let review = ui.review(GpuOp::Assign, Some("games"));
        ui.msg(GpuMsg::Reviewed {
            gpu: addr(GPU),
            op: GpuOp::Assign,
            result: Ok(review),
        });
        ui.keys("<enter>take the con");
    }) {
        snap(&format!("confirm_typed_{size}"), &screen);
    }
}

#[test]
fn snapshots_of_the_progress_mid_way() {
    for (size, screen) in each_size(|ui| {
        assign_until_running(ui);
        run_steps(ui, 3);
    }) {
        snap(&format!("progress_{size}"), &screen);
    }
}

#[test]
fn snapshots_of_success() {
    for (size, screen) in each_size(|ui| {
        assign_until_running(ui);
        let n = match ui.stage() {
            Stage::Running { review, .. } => review.plan.as_ref().unwrap().steps.len(),
            _ => 0,
        };
        run_steps(ui, n);
        ui.msg(GpuMsg::Log(
            "VM games runs: moving the group to vfio-pci now".into(),
        ));
        ui.msg(GpuMsg::Log(
            "  hot-plugged 0000:0b:00.0 (guest 0000:00:05.0)".into(),
        ));
        ui.msg(GpuMsg::Log(
            "  hot-plugged 0000:0b:00.1 (guest 0000:00:06.0)".into(),
        ));
        ui.msg(GpuMsg::Finished(Outcome::Done(vec![
            "VM games has IOMMU group 14".into(),
        ])));
    }) {
        snap(&format!("success_{size}"), &screen);
    }
}

#[test]
fn snapshots_of_a_failure_with_rollback() {
    for (size, screen) in each_size(failed_run) {
        snap(&format!("failure_{size}"), &screen);
    }
}

#[test]
fn snapshots_of_a_refusal() {
    let mut ui = Ui::desktop();
    ui.keys("3d");
    ui.msg(GpuMsg::Reviewed {
        gpu: addr(GPU),
        op: GpuOp::Detach,
        result: Err(
            "IOMMU group 14 holds 0000:01:00.0, the host's root disk controller: \
                     giving the group away would cut the host off"
                .into(),
        ),
    });
    snap("refused_80x24", &ui.screen());
}

#[test]
fn snapshots_of_the_boot_configuration() {
    for (size, screen) in each_size(|ui| {
        ui.keys("3b");
        let root = ui.root();
        let inv = Inventory::collect(&root);
        let config = vfio::boot_config(&root, &inv, addr(GPU)).unwrap();
        let missing = config.missing_from_cmdline(&root);
        ui.msg(GpuMsg::Boot(Ok(BootView { config, missing })));
    }) {
        snap(&format!("boot_{size}"), &screen);
    }
    let mut ui = Ui::desktop();
    ui.keys("3b");
    let root = ui.root();
    let inv = Inventory::collect(&root);
    let config = vfio::boot_config(&root, &inv, addr(GPU)).unwrap();
    ui.msg(GpuMsg::Boot(Ok(BootView {
        config,
        missing: Vec::new(),
    })));
    ui.keys("I");
    assert!(ui.state.gpu.boot.as_ref().unwrap().confirm.is_some());
    snap("boot_install_confirm_80x24", &ui.screen());
    ui.keys("y");
    assert_eq!(
        ui.effects,
        vec![Effect::Gpu(GpuJob::BootChange {
            gpu: addr(GPU),
            change: phyllome::tui::gpus::BootChange::Install,
        })]
    );
}

/// A display server and PipeWire hold the card's nodes: the plan names them.
#[test]
fn snapshot_of_a_plan_with_processes_holding_the_gpu() {
    let mut spec = presets::desktop();
    spec.console = phyllome::fixture::Console::None;
    spec.processes = vec![
        phyllome::fixture::FixtureProcess {
            pid: 812,
            comm: "Xorg".into(),
            opens: vec!["/dev/dri/card0".into()],
        },
        phyllome::fixture::FixtureProcess {
            pid: 900,
            comm: "pipewire".into(),
            opens: vec!["/dev/snd/controlC0".into()],
        },
    ];
    let mut ui = Ui::new(spec, 120, 40, false, false);
    ui.keys("3d");
    let review = ui.review(GpuOp::Detach, None);
    ui.msg(GpuMsg::Reviewed {
        gpu: addr(GPU),
        op: GpuOp::Detach,
        result: Ok(review),
    });
    let screen = ui.screen();
    assert!(
        screen.contains("held open: /dev/dri/card0 by Xorg (pid 812)"),
        "{screen}"
    );
    snap("plan_holders_120x40", &screen);
}
