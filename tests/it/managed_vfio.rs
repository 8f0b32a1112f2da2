//! Managed VFIO end to end: the real `phyllome` binary starts VMs on the Cloud Hypervisor test
//! double (`examples/ch_double`, built by `cargo test`; a filtered run needs
//! `cargo build --example ch_double` first) with devices on a fixture host tree (`--host-root`,
//! written through the fixture's fake kernel). Devices move when the VM starts and come back
//! when it stops — also when its VMM is killed with no console running — and hot-plug works
//! on a running VM.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use phyllome::fixture::presets;
use serde_json::Value;

use crate::support::cli::Cli;

const GPU: &str = "0000:0b:00.0";
const AUDIO: &str = "0000:0b:00.1";

/// The desktop fixture host, VMs on the test double.
struct Env {
    cli: Cli,
    root: PathBuf,
}

impl std::ops::Deref for Env {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

impl Env {
    fn new() -> Env {
        let cli = Cli::double().host(presets::desktop());
        Env {
            root: cli.root().to_path_buf(),
            cli,
        }
    }

    fn define(&self, name: &str, vfio: &[&str]) {
        let mut text = format!(
            "[cpus]\nboot = 2\n\n[memory]\nsize = \"512M\"\n\n[boot]\nkernel = {:?}\n",
            self.fake_kernel()
        );
        for a in vfio {
            text.push_str(&format!("\n[[vfio]]\naddress = \"{a}\"\n"));
        }
        self.define_toml(name, &text);
    }

    /// Succeeds; returns stdout. A failure shows the device log too.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "phyllome {args:?} failed:\n{}\n{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log("win")
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn drivers(&self) -> (Option<String>, Option<String>) {
        (self.driver(GPU), self.driver(AUDIO))
    }

    fn record(&self, vm: &str) -> Option<Value> {
        let text = fs::read_to_string(self.run.join(format!("managed/{vm}.json"))).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn log(&self, vm: &str) -> String {
        fs::read_to_string(self.run.join(format!("managed/{vm}.log"))).unwrap_or_default()
    }

    fn vmm_pid(&self, vm: &str) -> i32 {
        fs::read_to_string(self.run.join(format!("vms/{vm}/vmm.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn gpu_state(&self) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["gpu", "list", "--json"])).unwrap();
        v["gpus"][0]["state"].clone()
    }

    /// Waits until `done` holds, panicking with the device log after `limit`.
    fn wait(&self, what: &str, limit: Duration, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}\nlog:\n{}",
                self.log("win")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{what}: {:?}", start.elapsed());
    }

    fn on_host(&self) -> bool {
        self.drivers() == (Some("amdgpu".into()), Some("snd_hda_intel".into()))
            && self.fbcon() == "1"
    }
}

impl Drop for Env {
    /// Whatever a failed test left running goes, by pidfile.
    fn drop(&mut self) {
        let pid = fs::read_to_string(self.run.join("vms/win/vmm.pid"));
        if let Some(pid) = pid.ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            kill(pid, rustix::process::Signal::KILL);
        }
    }
}

fn kill(pid: i32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

const VFIO: (Option<&str>, Option<&str>) = (Some("vfio-pci"), Some("vfio-pci"));

fn vfio(env: &Env) -> bool {
    let (a, b) = env.drivers();
    (a.as_deref(), b.as_deref()) == VFIO
}

#[test]
fn start_detaches_the_group_and_stop_releases_it() {
    let env = Env::new();
    env.define("win", &[GPU]);
    env.ok(&["vm", "start", "win"]);
    assert!(vfio(&env), "{:?}", env.drivers());
    assert_eq!(env.fbcon(), "0");
    assert_eq!(
        env.gpu_state(),
        serde_json::json!({"kind": "in_use", "vm": "win"})
    );
    let rec = env.record("win").expect("a device record");
    assert_eq!(rec["state"], "held");
    assert_eq!(rec["devices"], serde_json::json!([GPU, AUDIO]));
    // Moving a device under a running VM is refused.
    let out = env.fails(&["gpu", "reattach", GPU]);
    assert!(out.contains("in use by VM win"), "{out}");

    let start = Instant::now();
    env.ok(&["vm", "stop", "win", "--force", "--yes"]);
    eprintln!("stop with release: {:?}", start.elapsed());
    assert!(env.on_host(), "{:?} fbcon {}", env.drivers(), env.fbcon());
    assert!(env.record("win").is_none());
    assert_eq!(env.gpu_state()["kind"], "host_driver");
}

#[test]
fn a_killed_vmm_gives_the_devices_back_without_a_console() {
    let env = Env::new();
    env.define("win", &[GPU]);
    env.ok(&["vm", "start", "win"]);
    assert!(vfio(&env));
    kill(env.vmm_pid("win"), rustix::process::Signal::KILL);
    // The drivers come back first; the record and the log line follow.
    env.wait("release after SIGKILL", Duration::from_secs(10), || {
        env.on_host()
            && env.record("win").is_none()
            && env
                .log("win")
                .contains("devices back on their host drivers")
    });

    // SIGTERM to the supervisor (what systemd's stop sends) reaches the VMM; the release
    // follows.
    env.ok(&["vm", "start", "win"]);
    assert!(vfio(&env));
    let sup = env.record("win").unwrap()["supervisor_pid"]
        .as_i64()
        .unwrap();
    kill(sup as i32, rustix::process::Signal::TERM);
    env.wait("release after SIGTERM", Duration::from_secs(10), || {
        env.on_host() && env.record("win").is_none()
    });
    let list = env.ok(&["vm", "list"]);
    assert!(list.contains("Stopped"), "{list}");
}

#[test]
fn a_failed_release_is_recorded_shown_and_fixed_by_reattach() {
    let env = Env::new();
    env.define("win", &[GPU]);
    env.ok(&["vm", "start", "win"]);
    // amdgpu goes away (module unloaded) while the guest runs: the card cannot go back.
    let drivers = env.root.join("sys/bus/pci/drivers");
    fs::rename(drivers.join("amdgpu"), drivers.join("amdgpu.away")).unwrap();
    kill(env.vmm_pid("win"), rustix::process::Signal::KILL);
    env.wait("failed release recorded", Duration::from_secs(10), || {
        env.record("win")
            .is_some_and(|r| r["state"] == "release_failed")
    });
    let gpus = env.ok(&["gpu", "list"]);
    assert!(gpus.contains("release failed (VM win)"), "{gpus}");
    assert!(gpus.contains("phyllome gpu reattach"), "{gpus}");
    let list = env.ok(&["vm", "list"]);
    assert!(list.contains("were not given back"), "{list}");
    assert!(env.log("win").contains("release failed"));

    fs::rename(drivers.join("amdgpu.away"), drivers.join("amdgpu")).unwrap();
    env.ok(&["gpu", "reattach", GPU]);
    assert!(env.on_host(), "{:?}", env.drivers());
    assert!(
        env.record("win").is_none(),
        "reattach should settle the record"
    );
    let list = env.ok(&["vm", "list"]);
    assert!(!list.contains("not given back"), "{list}");
}

#[test]
fn hot_plug_into_a_running_vm_and_unplug() {
    let env = Env::new();
    env.define("win", &[]);
    env.ok(&["vm", "start", "win"]);
    let out = env.ok(&["gpu", "assign", GPU, "--to", "win", "--yes"]);
    assert!(out.contains("hot-plugged 0000:0b:00.0"), "{out}");
    assert!(out.contains("hot-plugged 0000:0b:00.1"), "{out}");
    assert!(vfio(&env));
    let info: Value = serde_json::from_str(&env.ok(&["vm", "info", "win", "--json"])).unwrap();
    let devices = info["info"]["config"]["devices"]
        .as_array()
        .cloned()
        .unwrap();
    let paths: Vec<&str> = devices.iter().filter_map(|d| d["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            "/sys/bus/pci/devices/0000:0b:00.0/",
            "/sys/bus/pci/devices/0000:0b:00.1/"
        ]
    );
    assert_eq!(env.gpu_state()["vm"], "win");

    let out = env.ok(&["gpu", "unassign", AUDIO]);
    assert!(out.contains("unplugged 0000:0b:00.0"), "{out}");
    assert!(env.on_host(), "{:?}", env.drivers());
    let info: Value = serde_json::from_str(&env.ok(&["vm", "info", "win", "--json"])).unwrap();
    let left = info["info"]["config"]["devices"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(left, 0, "{info}");

    // Hot-plugged again, then the VM stops: the console's stop gives them back (this VMM
    // runs without a device supervisor, it had no devices when it started).
    env.ok(&["gpu", "assign", GPU, "--to", "win", "--yes"]);
    assert!(vfio(&env));
    env.ok(&["vm", "stop", "win", "--force", "--yes"]);
    assert!(env.on_host(), "{:?}", env.drivers());
}

#[test]
fn a_start_that_would_take_the_root_disk_is_refused() {
    let env = Env::new();
    env.define("win", &["0000:01:00.0"]);
    let out = env.fails(&["vm", "start", "win"]);
    assert!(out.contains("root"), "{out}");
    assert_eq!(env.driver("0000:01:00.0").as_deref(), Some("nvme"));
    assert!(!env.run.join("vms/win/vmm.pid").exists());
    let list = env.ok(&["vm", "list"]);
    assert!(list.contains("Stopped"), "{list}");
}
