//! Rescue from the host, on the Cloud Hypervisor test double (`cargo build --example
//! ch_double` before a filtered run): reset and NMI, force off while a start hangs, unlock
//! after a crash (devices held by managed VFIO given back), rescue boot, and the console's
//! worker running them. Snapshots are in `vm_snapshots.rs`; the same on the real binary,
//! where it can show them, is in `real_vmm_rescue.rs`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cli::Cli;

const GPU: &str = "0000:0b:00.0";

pub(crate) struct Env {
    pub(crate) cli: Cli,
    pub(crate) log: PathBuf,
}

impl std::ops::Deref for Env {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

impl Env {
    pub(crate) fn new() -> Env {
        Env::on(Cli::double())
    }

    fn on(mut cli: Cli) -> Env {
        let log = cli.path().join("requests.jsonl");
        cli.set("CH_DOUBLE_REQUEST_LOG", &log.to_string_lossy());
        Env { cli, log }
    }

    /// A VM booting a (fake) kernel, with one raw disk of its own, plus `extra` TOML.
    pub(crate) fn define(&self, name: &str, extra: &str) {
        let disk = self.path().join(format!("{name}.img"));
        std::fs::write(&disk, vec![0u8; 4096]).unwrap();
        let text = format!(
            "{extra}\n[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n[boot]\nkernel = {:?}\n\
             cmdline = \"console=ttyS0 root=/dev/vda\"\n\n[[disks]]\npath = {disk:?}\n",
            self.fake_kernel()
        );
        self.define_toml(name, &text);
    }

    /// Routes every VMM of this test was asked, in order.
    pub(crate) fn routes(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["route"].as_str().map(str::to_string))
            .collect()
    }

    /// The exit code of a command that must fail, with its stderr.
    pub(crate) fn fails_with(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub(crate) fn snapshots(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.state.join("snapshots").join(name))
            .map(|it| {
                it.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn kill(pid: u32) {
    phyllome::vmm::launch::signal(pid, rustix::process::Signal::KILL);
}

fn wait_gone(pid: u32) {
    assert!(
        crate::support::wait_gone(pid, Duration::from_secs(5)),
        "{pid} still runs"
    );
}

pub(crate) fn after<'a>(routes: &'a [String], route: &str) -> &'a [String] {
    let i = routes.iter().rposition(|r| r == route);
    &routes[i.map_or(routes.len(), |i| i + 1)..]
}

#[test]
fn reset_and_nmi_ask_first_then_reach_the_vmm() {
    let env = Env::new();
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    for cmd in ["reset", "reboot", "nmi"] {
        let (code, err) = env.fails_with(&["vm", cmd, "t1"]);
        assert_eq!(code, 4, "{cmd}: {err}");
        assert!(err.contains("--yes"), "{cmd}: {err}");
    }
    assert!(!env
        .routes()
        .iter()
        .any(|r| r == "vm.reboot" || r == "vm.nmi"));

    let out = env.ok(&["vm", "reset", "t1", "--yes"]);
    assert!(out.contains("Reset t1"), "{out}");
    env.ok(&["vm", "reboot", "t1", "--yes"]);
    let out = env.ok(&["vm", "nmi", "t1", "--yes"]);
    assert!(out.contains("Sent an NMI to t1"), "{out}");
    let routes = env.routes();
    assert_eq!(
        routes.iter().filter(|r| *r == "vm.reboot").count(),
        2,
        "{routes:?}"
    );
    assert!(routes.iter().any(|r| r == "vm.nmi"), "{routes:?}");
    assert_eq!(env.state("t1"), "Running");

    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    let (code, err) = env.fails_with(&["vm", "nmi", "t1", "--yes"]);
    assert!(err.contains("not running"), "{err}");
    assert_eq!(code, 1);
}

#[test]
fn force_off_does_not_wait_for_a_start_stuck_on_a_hung_vmm() {
    let mut env = Env::new();
    env.cli.set("CH_DOUBLE_HANG", "vm.boot");
    env.cli.set("PHYLLOME_VMM_TIMEOUT", "1");
    env.define("t1", "");
    // The start holds the VM's lock for as long as vm.boot may take (a minute).
    let mut start = env.cmd(&["vm", "start", "t1"]).spawn().unwrap();
    let t0 = Instant::now();
    let pid = loop {
        if let Some(p) = env.pid("t1") {
            break p;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "no VMM launched");
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(300));
    let t1 = Instant::now();
    let out = env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    let took = t1.elapsed();
    eprintln!("force off while a start hangs in vm.boot: {took:?}");
    assert!(out.contains("Stopped t1"), "{out}");
    assert!(!phyllome::vmm::launch::pid_running(pid), "VMM {pid} runs");
    // Long before the start's own minute is up.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let status = start.wait().unwrap();
    assert!(!status.success(), "the hung start succeeded");
    assert_eq!(env.state("t1"), "Stopped");
    assert!(!env.vm_dir("t1").exists());
}

#[test]
fn unlock_clears_what_a_killed_vmm_left_and_refuses_while_it_runs() {
    let env = Env::new();
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").unwrap();

    let (code, err) = env.fails_with(&["vm", "unlock", "t1"]);
    assert!(err.contains(&format!("its VMM, pid {pid}")), "{err}");
    assert!(err.contains("stop it first"), "{err}");
    assert_eq!(code, 1);
    assert!(env.vm_dir("t1").join("api.sock").exists(), "{err}");

    kill(pid);
    wait_gone(pid);
    assert!(env.vm_dir("t1").join("vmm.pid").exists());
    let out = env.ok(&["vm", "unlock", "t1"]);
    assert!(out.contains("Unlocked t1"), "{out}");
    assert!(out.contains("runtime directory"), "{out}");
    assert!(out.contains("api.sock") && out.contains("vmm.pid"), "{out}");
    assert!(out.contains("lock file"), "{out}");
    assert!(!env.vm_dir("t1").exists());
    assert!(!env.run.join("locks/t1.lock").exists());

    let out = env.ok(&["vm", "unlock", "t1"]);
    assert!(out.contains("Nothing to clear"), "{out}");
    env.ok(&["vm", "start", "t1"]);
    assert_eq!(env.state("t1"), "Running");

    let (code, _) = env.fails_with(&["vm", "unlock", "ghost"]);
    assert_eq!(code, 3);
}

#[test]
fn unlock_names_the_phyllome_holding_the_lock() {
    let env = Env::new();
    env.define("t1", "");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let root = phyllome::vmm::runtime::RunRoot::new(&env.run);
    let held = rt.block_on(root.lock("t1", Duration::ZERO)).unwrap();
    let (_, err) = env.fails_with(&["vm", "unlock", "t1"]);
    assert!(
        err.contains("holds its lock") && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    drop(held);
    env.ok(&["vm", "unlock", "t1"]);
}

#[test]
fn unlock_gives_back_a_gpu_left_on_vfio_pci_by_a_crash() {
    let env = Env::on(Cli::double().host(phyllome::fixture::presets::desktop()));
    env.define("win", &format!("[[vfio]]\naddress = \"{GPU}\"\n"));
    env.ok(&["vm", "start", "win"]);
    assert_eq!(env.driver(GPU).as_deref(), Some("vfio-pci"));
    // The whole supervision goes at once, as in an OOM kill of the unit: nobody releases.
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(env.run.join("managed/win.json")).unwrap())
            .unwrap();
    let supervisor = record["supervisor_pid"].as_u64().unwrap() as u32;
    let vmm = env.pid("win").unwrap();
    kill(supervisor);
    kill(vmm);
    wait_gone(supervisor);
    wait_gone(vmm);
    assert_eq!(env.driver(GPU).as_deref(), Some("vfio-pci"));

    let out = env.ok(&["vm", "unlock", "win"]);
    assert!(out.contains(GPU), "{out}");
    assert!(out.contains("given back to their host drivers"), "{out}");
    assert_eq!(env.driver(GPU).as_deref(), Some("amdgpu"));
    assert!(!env.run.join("managed/win.json").exists());
    assert!(!env.vm_dir("win").exists());
}

/// A second kernel, initramfs and rescue.toml: what a rescue boots instead of the VM's own.
pub(crate) fn rescue_files(env: &Env) -> (PathBuf, PathBuf) {
    let kernel = env.path().join("rescue-vmlinuz");
    let initrd = env.path().join("rescue-initrd.img");
    std::fs::write(&kernel, b"another kernel").unwrap();
    std::fs::write(&initrd, b"an initramfs").unwrap();
    (kernel, initrd)
}

fn config(info: &Value) -> &Value {
    &info["info"]["config"]
}

#[test]
fn rescue_boots_another_payload_once_with_read_only_disks() {
    let env = Env::new();
    env.define("t1", "");
    let (kernel, initrd) = rescue_files(&env);
    assert_eq!(env.info("t1")["rescue"], false);

    let out = env.ok(&[
        "vm",
        "rescue",
        "t1",
        "--kernel",
        kernel.to_str().unwrap(),
        "--initramfs",
        initrd.to_str().unwrap(),
        "--cmdline",
        "console=ttyS0 init=/bin/sh",
    ]);
    assert!(out.contains("Started t1 for rescue"), "{out}");
    assert!(out.contains("disks: read-only"), "{out}");
    let info = env.info("t1");
    assert_eq!(info["rescue"], true, "{info:#}");
    let payload = &info["rescue_payload"];
    assert_eq!(payload["kernel"], kernel.to_str().unwrap(), "{info:#}");
    assert_eq!(payload["initramfs"], initrd.to_str().unwrap());
    assert_eq!(payload["cmdline"], "console=ttyS0 init=/bin/sh");
    assert_eq!(payload["rw"], false);
    let cfg = config(&info);
    assert_eq!(
        cfg["payload"]["kernel"],
        kernel.to_str().unwrap(),
        "{cfg:#}"
    );
    assert_eq!(cfg["disks"][0]["readonly"], true, "{cfg:#}");
    assert_eq!(cfg["serial"]["mode"], "Socket");
    let listed = env.list();
    assert_eq!(listed[0]["rescue"], true);
    let text = env.ok(&["vm", "info", "t1"]);
    assert!(
        text.contains(&format!(
            "rescue boot: {} (disks read-only)",
            kernel.display()
        )),
        "{text}"
    );
    assert_eq!(
        env.fails_with(&["vm", "rescue", "t1"]).0,
        1,
        "already running"
    );

    // The next normal start is the VM as defined.
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    env.ok(&["vm", "start", "t1"]);
    let info = env.info("t1");
    assert_eq!(info["rescue"], false, "{info:#}");
    assert!(info.get("rescue_payload").is_none(), "{info:#}");
    let cfg = config(&info);
    assert_eq!(
        cfg["payload"]["kernel"],
        env.fake_kernel().to_str().unwrap()
    );
    assert_eq!(cfg["disks"][0]["readonly"], false, "{cfg:#}");
}

#[test]
fn rescue_defaults_come_from_rescue_toml_and_rw_keeps_disks_writable() {
    let env = Env::new();
    env.define("t1", "");
    let (kernel, initrd) = rescue_files(&env);
    std::fs::create_dir_all(&env.state).unwrap();
    std::fs::write(
        env.state.join("rescue.toml"),
        format!(
            "kernel = {kernel:?}\ninitramfs = {initrd:?}\ncmdline = \"console=ttyS0 rescue\"\n"
        ),
    )
    .unwrap();
    env.ok(&["vm", "rescue", "t1", "--rw"]);
    let info = env.info("t1");
    let payload = &info["rescue_payload"];
    assert_eq!(payload["kernel"], kernel.to_str().unwrap(), "{info:#}");
    assert_eq!(payload["cmdline"], "console=ttyS0 rescue");
    assert_eq!(
        payload["settings"],
        env.state.join("rescue.toml").to_str().unwrap()
    );
    assert_eq!(config(&info)["disks"][0]["readonly"], false);
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);

    // A payload file that is not there: the start is refused before anything runs.
    let (_, err) = env.fails_with(&["vm", "rescue", "t1", "--kernel", "/nonexistent/vmlinuz"]);
    assert!(err.contains("/nonexistent/vmlinuz"), "{err}");
    assert!(!env.vm_dir("t1").exists());
    // An ISO needs firmware, which a kernel-booted VM does not name.
    let iso = env.path().join("rescue.iso");
    std::fs::write(&iso, b"iso").unwrap();
    let (_, err) = env.fails_with(&["vm", "rescue", "t1", "--iso", iso.to_str().unwrap()]);
    assert!(err.contains("firmware"), "{err}");
    std::fs::write(env.state.join("rescue.toml"), "kernal = 1\n").unwrap();
    let (_, err) = env.fails_with(&["vm", "rescue", "t1"]);
    assert!(err.contains("rescue.toml"), "{err}");
    // Usage errors: an ISO and a kernel at once.
    let (code, _) = env.fails_with(&["vm", "rescue", "t1", "--iso", "x", "--kernel", "y"]);
    assert_eq!(code, 2);
}

#[test]
fn rescue_from_an_iso_boots_it_as_the_first_read_only_disk_through_firmware() {
    let env = Env::new();
    let fw = env.path().join("CLOUDHV.fd");
    std::fs::write(&fw, b"firmware").unwrap();
    let disk = env.path().join("w.img");
    std::fs::write(&disk, vec![0u8; 4096]).unwrap();
    env.define_toml(
        "w",
        &format!(
            "[cpus]\nboot = 1\n[memory]\nsize = \"256M\"\n[boot]\nfirmware = {fw:?}\n\
             [[disks]]\npath = {disk:?}\n"
        ),
    );
    let iso = env.path().join("rescue.iso");
    std::fs::write(&iso, b"iso").unwrap();
    env.ok(&["vm", "rescue", "w", "--iso", iso.to_str().unwrap()]);
    let info = env.info("w");
    let cfg = config(&info);
    assert_eq!(cfg["disks"][0]["path"], iso.to_str().unwrap(), "{cfg:#}");
    assert_eq!(cfg["disks"][0]["readonly"], true);
    assert_eq!(cfg["disks"][1]["readonly"], true);
    assert_eq!(cfg["payload"]["firmware"], fw.to_str().unwrap());
    assert_eq!(info["rescue_payload"]["iso"], iso.to_str().unwrap());
}

#[test]
fn rescue_leaves_the_vms_pci_devices_out() {
    let env = Env::on(Cli::double().host(phyllome::fixture::presets::desktop()));
    env.define("win", &format!("[[vfio]]\naddress = \"{GPU}\"\n"));
    let (kernel, _) = rescue_files(&env);
    env.ok(&["vm", "rescue", "win", "--kernel", kernel.to_str().unwrap()]);
    let info = env.info("win");
    assert!(config(&info).get("devices").is_none(), "{info:#}");
    assert_eq!(env.driver(GPU).as_deref(), Some("amdgpu"), "the GPU moved");
    assert!(!env.run.join("managed/win.json").exists());
}

#[test]
fn force_off_when_vm_shutdown_itself_hangs() {
    let mut env = Env::new();
    env.cli.set("CH_DOUBLE_HANG", "vm.shutdown");
    env.cli.set("PHYLLOME_VMM_TIMEOUT", "1");
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").unwrap();
    let t0 = Instant::now();
    let out = env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    eprintln!("force off with vm.shutdown hanging: {:?}", t0.elapsed());
    assert!(out.contains("Stopped t1"), "{out}");
    assert!(!phyllome::vmm::launch::pid_running(pid));
    assert!(!env.vm_dir("t1").exists());
}
