//! Detach, release and rollback on fixture trees driven by the fake kernel: every write
//! lands in a temporary tree, never in this machine's /sys.

use std::path::Path;

use phyllome::fixture::kernel::{EBUSY, EINVAL};
use phyllome::fixture::{presets, Console, FakeKernel, HostSpec};
use phyllome::host::{Inventory, PciAddress, SysRoot};
use phyllome::vfio::{
    self, Bindings, Phase, PlanOptions, ReleaseOptions, StepEvent, StepStatus, VFIO_PCI,
};

const GPU: &str = "0000:0b:00.0";
const AUDIO: &str = "0000:0b:00.1";

struct Host {
    _dir: tempfile::TempDir,
    root: SysRoot,
    kernel: FakeKernel,
}

impl Host {
    fn new(spec: &HostSpec) -> Host {
        let dir = tempfile::tempdir().expect("tempdir");
        spec.write(dir.path()).expect("fixture");
        let root = SysRoot::new(dir.path());
        let kernel = FakeKernel::new(dir.path());
        Host {
            _dir: dir,
            root,
            kernel,
        }
    }
    fn path(&self) -> &Path {
        self.root.root()
    }
    fn inventory(&self) -> Inventory {
        self.root.forget();
        Inventory::collect(&self.root)
    }
    fn bindings(&self) -> Bindings {
        self.root.forget();
        Bindings::read(&self.root)
    }
    fn driver(&self, a: &str) -> Option<String> {
        self.bindings().pci[&addr(a)].0.clone()
    }
    fn console_bound(&self) -> bool {
        self.bindings().consoles["vtcon1"]
    }
    fn detach_plan(&self, a: &str) -> vfio::Plan {
        let mut plan = vfio::plan(
            &self.root,
            &self.inventory(),
            addr(a),
            &PlanOptions::default(),
        )
        .expect("plan");
        if let Some(c) = plan.needs_confirmation.clone() {
            plan.confirm(&c.phrase).expect("confirm");
        }
        plan
    }
    fn detach(&self, a: &str) -> Result<vfio::Applied, vfio::ApplyError> {
        vfio::apply(&self.detach_plan(a), &self.kernel, &self.root, &mut |_| {})
    }
    fn release(&self, a: &str, came_from: Vec<vfio::PlannedDevice>) -> vfio::Applied {
        let opts = ReleaseOptions {
            came_from,
            ..ReleaseOptions::default()
        };
        let plan = vfio::release_plan(&self.root, &self.inventory(), addr(a), &opts)
            .expect("release plan");
        vfio::release(&plan, &self.kernel, &self.root, &mut |_| {}).expect("release")
    }
}

fn addr(s: &str) -> PciAddress {
    s.parse().expect("address")
}

fn firmware_fb_desktop() -> HostSpec {
    let mut spec = presets::desktop();
    spec.console = Console::FirmwareFb;
    spec
}

#[test]
fn detach_moves_gpu_and_audio_and_stops_the_console() {
    let host = Host::new(&presets::desktop());
    assert!(host.console_bound());
    let mut events: Vec<StepEvent> = Vec::new();
    let plan = host.detach_plan(GPU);
    let applied = vfio::apply(&plan, &host.kernel, &host.root, &mut |e| {
        events.push(e.clone())
    })
    .expect("detach");
    assert_eq!(applied.group, 14);
    assert_eq!(host.driver(GPU).as_deref(), Some(VFIO_PCI));
    assert_eq!(host.driver(AUDIO).as_deref(), Some(VFIO_PCI));
    assert!(!host.console_bound());
    assert!(host.path().join("dev/vfio/14").exists());
    // Each step is reported running, then done, in order.
    assert_eq!(events.len(), plan.steps.len() * 2);
    assert!(events.iter().all(|e| e.phase == Phase::Do));
    assert_eq!(events[1].status, StepStatus::Done);
    // The inventory sees the new drivers too (it reads uevent).
    let inv = host.inventory();
    assert_eq!(
        inv.device(&addr(GPU)).unwrap().driver.as_deref(),
        Some(VFIO_PCI)
    );
}

#[test]
fn release_brings_back_host_drivers_and_fbcon() {
    let host = Host::new(&presets::desktop());
    let before = host.bindings();
    let applied = host.detach(GPU).expect("detach");
    host.release(GPU, applied.devices);
    assert_eq!(host.driver(GPU).as_deref(), Some("amdgpu"));
    assert_eq!(host.driver(AUDIO).as_deref(), Some("snd_hda_intel"));
    assert!(host.console_bound());
    assert!(!host.path().join("dev/vfio/14").exists());
    assert_eq!(
        host.bindings().differences_from(&before),
        Vec::<String>::new()
    );
}

#[test]
fn release_without_a_record_probes_host_drivers() {
    let host = Host::new(&presets::desktop());
    let before = host.bindings();
    host.detach(AUDIO)
        .expect("detach by the audio function moves the group");
    host.release(GPU, Vec::new());
    assert_eq!(
        host.bindings().differences_from(&before),
        Vec::<String>::new()
    );
}

#[test]
fn firmware_framebuffer_is_unbound_and_rebound() {
    let host = Host::new(&firmware_fb_desktop());
    let before = host.bindings();
    assert_eq!(
        before.framebuffers["simple-framebuffer.0"].as_deref(),
        Some("simple-framebuffer")
    );
    let plan = host.detach_plan(GPU);
    assert!(plan.to_string().contains("simple-framebuffer.0"));
    let applied = vfio::apply(&plan, &host.kernel, &host.root, &mut |_| {}).expect("detach");
    assert_eq!(host.bindings().framebuffers["simple-framebuffer.0"], None);
    host.release(GPU, applied.devices);
    assert_eq!(host.bindings(), before);
}

/// The heart of it: whichever write fails, the host ends exactly as it started.
#[test]
fn every_failing_write_rolls_back_to_the_start() {
    for spec in [presets::desktop(), firmware_fb_desktop()] {
        let probe = Host::new(&spec);
        probe.detach(GPU).expect("clean run");
        let writes = probe.kernel.writes().len();
        assert!(writes >= 7, "{writes} writes");
        for n in 1..=writes {
            for errno in [EBUSY, EINVAL] {
                let host = Host::new(&spec);
                let before = host.bindings();
                host.kernel.fail_write(n, errno);
                let mut undone = 0;
                let err = vfio::apply(&host.detach_plan(GPU), &host.kernel, &host.root, &mut |e| {
                    if e.phase == Phase::Undo && e.status == StepStatus::Done {
                        undone += 1;
                    }
                })
                .expect_err("a write failed");
                let failure = err.failure().expect("rollback report");
                assert!(failure.unrestored.is_empty(), "write {n}: {err}");
                assert_eq!(failure.restored.len(), undone);
                assert_eq!(host.bindings(), before, "write {n} errno {errno}");
                assert!(!host.path().join("dev/vfio/14").exists());
            }
        }
    }
}

#[test]
fn every_failing_write_of_a_release_rolls_back_to_vfio() {
    let probe = Host::new(&presets::desktop());
    let applied = probe.detach(GPU).expect("detach");
    let first = probe.kernel.writes().len();
    probe.release(GPU, applied.devices.clone());
    let writes = probe.kernel.writes().len() - first;
    for n in 1..=writes {
        let host = Host::new(&presets::desktop());
        host.detach(GPU).expect("detach");
        let detached = host.bindings();
        host.kernel
            .fail_write(host.kernel.writes().len() + n, EBUSY);
        let opts = ReleaseOptions {
            came_from: applied.devices.clone(),
            ..ReleaseOptions::default()
        };
        let plan = vfio::release_plan(&host.root, &host.inventory(), addr(GPU), &opts).unwrap();
        let err = vfio::release(&plan, &host.kernel, &host.root, &mut |_| {}).unwrap_err();
        assert!(err.failure().unwrap().unrestored.is_empty(), "{err}");
        assert_eq!(host.bindings(), detached, "release write {n}");
    }
}

#[test]
fn a_device_that_refuses_to_unbind_is_rolled_back() {
    let host = Host::new(&presets::desktop());
    let before = host.bindings();
    host.kernel.refuse_unbind(AUDIO);
    let err = host.detach(GPU).expect_err("audio is stuck");
    let failure = err.failure().unwrap();
    assert_eq!(
        failure.description,
        format!("Unbind {AUDIO} from snd_hda_intel")
    );
    assert!(failure.unrestored.is_empty());
    assert!(failure
        .restored
        .contains(&format!("Bind {GPU} to amdgpu again")));
    assert!(err.to_string().contains("the host is as it was"), "{err}");
    assert_eq!(host.bindings(), before);
    assert!(host.console_bound());
}

#[test]
fn a_probe_that_binds_nothing_fails_verification_and_rolls_back() {
    let host = Host::new(&presets::desktop());
    let before = host.bindings();
    host.kernel.refuse_probe(GPU);
    let err = host.detach(GPU).expect_err("vfio-pci did not take it");
    let chain = vfio::error_chain(&err);
    assert!(
        chain.contains("is on no driver instead of vfio-pci"),
        "{chain}"
    );
    assert_eq!(host.bindings(), before);
}

#[test]
fn what_cannot_be_restored_is_reported() {
    let host = Host::new(&presets::desktop());
    // The GPU leaves amdgpu, then the audio function is stuck; on the way back amdgpu
    // will not take the GPU again (neither by bind nor by probing).
    host.kernel.refuse_unbind(AUDIO);
    let plan = host.detach_plan(GPU);
    let writer = NoWayBack {
        kernel: &host.kernel,
        root: host.path().to_path_buf(),
    };
    let mut failed_undos = Vec::new();
    let err = vfio::apply(&plan, &writer, &host.root, &mut |e| {
        if e.phase == Phase::Undo && matches!(e.status, StepStatus::Failed(_)) {
            failed_undos.push(e.description.clone());
        }
    })
    .unwrap_err();
    let failure = err.failure().unwrap();
    assert!(err.to_string().contains("ROLLBACK INCOMPLETE"), "{err}");
    assert_eq!(failed_undos, vec![format!("Bind {GPU} to amdgpu again")]);
    assert!(
        failure
            .unrestored
            .contains(&format!("{GPU}: driver amdgpu → none")),
        "{:?}",
        failure.unrestored
    );
    // Everything else came back: the audio function and the console.
    assert_eq!(host.driver(AUDIO).as_deref(), Some("snd_hda_intel"));
    assert!(host.console_bound());
}

/// The fake kernel, except that the GPU cannot get back onto a host driver.
struct NoWayBack<'a> {
    kernel: &'a FakeKernel,
    root: std::path::PathBuf,
}

impl vfio::SysWriter for NoWayBack<'_> {
    fn write(&self, rel_path: &str, value: &str) -> std::io::Result<()> {
        let over = std::fs::read_to_string(
            self.root
                .join(format!("sys/bus/pci/devices/{GPU}/driver_override")),
        )
        .unwrap_or_default();
        let to_host = rel_path == "sys/bus/pci/drivers/amdgpu/bind"
            || (rel_path == "sys/bus/pci/drivers_probe"
                && value == GPU
                && !over.contains(VFIO_PCI));
        if to_host {
            return Err(std::io::Error::from_raw_os_error(EBUSY));
        }
        self.kernel.write(rel_path, value)
    }
}

#[test]
fn a_stale_plan_touches_nothing() {
    let host = Host::new(&presets::desktop());
    let plan = host.detach_plan(GPU);
    host.detach(GPU).expect("detach");
    let writes = host.kernel.writes().len();
    let err = vfio::apply(&plan, &host.kernel, &host.root, &mut |_| {}).unwrap_err();
    assert!(matches!(err, vfio::ApplyError::Stale { .. }), "{err}");
    assert_eq!(host.kernel.writes().len(), writes);
}

#[test]
fn an_unconfirmed_console_plan_is_refused() {
    let host = Host::new(&presets::desktop());
    let mut plan = vfio::plan(
        &host.root,
        &host.inventory(),
        addr(GPU),
        &PlanOptions::default(),
    )
    .unwrap();
    let err = vfio::apply(&plan, &host.kernel, &host.root, &mut |_| {}).unwrap_err();
    assert!(matches!(err, vfio::ApplyError::NotConfirmed { .. }));
    assert!(plan.confirm("yes").is_err());
    assert!(host.kernel.writes().is_empty());
}

#[test]
fn a_second_gpu_leaves_the_console_alone() {
    let host = Host::new(&presets::laptop());
    let plan = host.detach_plan("0000:01:00.0");
    assert!(plan.needs_confirmation.is_none());
    assert!(plan
        .steps
        .iter()
        .all(|s| !matches!(s.action, vfio::Action::BindConsole { .. })));
    vfio::apply(&plan, &host.kernel, &host.root, &mut |_| {}).expect("detach");
    assert_eq!(host.driver("0000:01:00.0").as_deref(), Some(VFIO_PCI));
    // The root port stays on pcieport: bridges never move.
    assert_eq!(host.driver("0000:00:01.0").as_deref(), Some("pcieport"));
    assert!(host.console_bound());
}

/// The fake kernel answers as Linux does, so the tests above mean something.
#[test]
fn the_fake_kernel_behaves_like_the_kernel() {
    use vfio::SysWriter;
    let host = Host::new(&presets::desktop());
    let k = &host.kernel;
    let over = format!("sys/bus/pci/devices/{GPU}/driver_override");
    let read = |rel: &str| host.root.read(rel).unwrap();
    assert_eq!(read(&over), "(null)");
    // Unbinding from a driver the device is not on: ENODEV.
    let err = k
        .write("sys/bus/pci/drivers/vfio-pci/unbind", GPU)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(19));
    k.write(&over, "vfio-pci").unwrap();
    assert_eq!(read(&over), "vfio-pci");
    k.write("sys/bus/pci/drivers/amdgpu/unbind", GPU).unwrap();
    assert_eq!(host.driver(GPU), None);
    assert!(!host
        .path()
        .join("sys/bus/pci/drivers/amdgpu")
        .join(GPU)
        .exists());
    // While the override names vfio-pci, amdgpu may not take it back.
    let err = k.write("sys/bus/pci/drivers/amdgpu/bind", GPU).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(19));
    k.write("sys/bus/pci/drivers_probe", GPU).unwrap();
    assert_eq!(host.driver(GPU).as_deref(), Some(VFIO_PCI));
    assert!(host.path().join("dev/vfio/14").exists());
    // Binding a bound device: EBUSY.
    let err = k
        .write("sys/bus/pci/drivers/vfio-pci/bind", GPU)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(EBUSY));
    // A newline clears the override; probing then finds the native driver.
    k.write(&over, "\n").unwrap();
    assert_eq!(read(&over), "(null)");
    k.write("sys/bus/pci/drivers/vfio-pci/unbind", &format!("{GPU}\n"))
        .unwrap();
    assert!(!host.path().join("dev/vfio/14").exists());
    k.write("sys/bus/pci/drivers_probe", GPU).unwrap();
    assert_eq!(host.driver(GPU).as_deref(), Some("amdgpu"));
    // Garbage is refused, never a panic.
    assert!(k.write("sys/bus/pci/drivers_probe", "../../etc").is_err());
    assert!(k.write("sys/class/vtconsole/vtcon1/bind", "2").is_err());
    assert!(k
        .write("sys/bus/platform/drivers/x/unbind", "../y")
        .is_err());
}

#[test]
fn a_group_open_by_a_vmm_is_not_released() {
    let host = Host::new(&presets::desktop());
    host.detach(GPU).expect("detach");
    let fd = host.path().join("proc/4242/fd");
    std::fs::create_dir_all(&fd).unwrap();
    std::os::unix::fs::symlink("/dev/vfio/14", fd.join("7")).unwrap();
    let err = vfio::release_plan(
        &host.root,
        &host.inventory(),
        addr(GPU),
        &ReleaseOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "IOMMU group 14 is open by process [4242] (a running VM?): stop it first"
    );
}
