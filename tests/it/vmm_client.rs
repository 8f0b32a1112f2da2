//! The Cloud Hypervisor client against the VMM test double (a separate process speaking CH's
//! REST API on a Unix socket), and against a real `cloud-hypervisor` when `CH_BIN` is set.
//! Every request body is checked against CH's OpenAPI spec, by the double on receipt and here
//! from the double's request log.

use crate::support::vmm::backend as ch_backend;
use crate::support::vmm::double as vmm_double;
use crate::support::vmm::openapi;

use std::path::Path;
use std::time::{Duration, Instant};

use phyllome::vmm::api::VmState;
use phyllome::vmm::client::ChClient;
use phyllome::vmm::error::VmmError;
use serde_json::{json, Value};
use vmm_double::Double;

const T: Duration = Duration::from_secs(5);

fn client(d: &Double) -> ChClient {
    ChClient::new(d.api_socket.clone(), T)
}

fn vm_config(serial: Option<&Path>) -> Value {
    let mut c = json!({
        "cpus": {"boot_vcpus": 2, "max_vcpus": 2},
        "memory": {"size": 536_870_912u64},
        "payload": {"kernel": "/nonexistent/vmlinux", "cmdline": "console=ttyS0"},
        "disks": [{"path": "/nonexistent/root.img", "readonly": false}],
        "net": [{"tap": "tap0"}],
        "console": {"mode": "Off"},
        "serial": {"mode": "Null"},
    });
    if let Some(s) = serial {
        c["serial"] = json!({"mode": "Socket", "socket": s});
    }
    c
}

/// Every body the double received matches the spec of its route (the double checked them
/// too; this makes a test fail even if the double's own check were loosened).
fn assert_requests_valid(d: &Double) {
    let requests = d.requests();
    assert!(!requests.is_empty(), "the request log is empty");
    for (method, route, body) in requests {
        let raw = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        if let Err(e) = openapi::validate_request(&route, &raw) {
            panic!("{method} {route} sent an invalid body: {e}");
        }
    }
}

fn api_causes(e: &VmmError) -> (u16, Vec<String>) {
    match e {
        VmmError::Api { status, causes, .. } => (*status, causes.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn wait_state(c: &ChClient, want: VmState, limit: Duration) {
    let start = Instant::now();
    loop {
        let state = c.info().await.expect("vm.info").state;
        if state == want {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "still {state} after {limit:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- the spec validator itself ------------------------------------------------------------

#[test]
fn spec_accepts_a_good_config_and_names_what_is_wrong_in_a_bad_one() {
    openapi::validate("VmConfig", &vm_config(Some(Path::new("/run/s.sock")))).unwrap();

    let mut misspelt = vm_config(None);
    misspelt["cpus"] = json!({"boot_vcpu": 2, "max_vcpus": 2});
    let e = openapi::validate("VmConfig", &misspelt).unwrap_err();
    assert!(
        e.contains("$.cpus.boot_vcpu: unknown property of CpusConfig"),
        "{e}"
    );
    assert!(e.contains("missing required property `boot_vcpus`"), "{e}");

    let mut wrong_type = vm_config(None);
    wrong_type["memory"]["size"] = json!("512M");
    let e = openapi::validate("VmConfig", &wrong_type).unwrap_err();
    assert!(
        e.contains("$.memory.size: expected an integer, found a string"),
        "{e}"
    );

    let mut bad_enum = vm_config(None);
    bad_enum["console"]["mode"] = json!("off");
    let e = openapi::validate("VmConfig", &bad_enum).unwrap_err();
    assert!(e.contains("$.console.mode"), "{e}");

    let e = openapi::validate(
        "VmConfig",
        &json!({"cpus": {"boot_vcpus": 0, "max_vcpus": 1}}),
    )
    .unwrap_err();
    assert!(e.contains("missing required property `payload`"), "{e}");
    assert!(e.contains("below the minimum 1"), "{e}");

    let e = openapi::validate(
        "DeviceConfig",
        &json!({"path": "/sys/x", "pci_segment": 70000}),
    )
    .unwrap_err();
    assert!(e.contains("does not fit int16"), "{e}");
}

#[test]
fn spec_knows_each_route_body() {
    let spec = openapi::spec();
    assert_eq!(
        spec.request_schema("vm.create").as_deref(),
        Some("VmConfig")
    );
    assert_eq!(
        spec.request_schema("/api/v1/vm.add-device").as_deref(),
        Some("DeviceConfig")
    );
    assert_eq!(
        spec.request_schema("vm.snapshot").as_deref(),
        Some("VmSnapshotConfig")
    );
    assert_eq!(
        spec.request_schema("vm.restore").as_deref(),
        Some("RestoreConfig")
    );
    assert_eq!(
        spec.request_schema("vm.remove-device").as_deref(),
        Some("VmRemoveDevice")
    );
    assert_eq!(
        spec.request_schema("vm.resize").as_deref(),
        Some("VmResize")
    );
    assert_eq!(spec.request_schema("vm.boot"), None);
    assert_eq!(spec.method("vm.nmi").as_deref(), Some("put"));
    assert_eq!(spec.method("vmm.ping").as_deref(), Some("get"));
    assert!(openapi::validate_request("vm.boot", b"").is_ok());
    assert!(openapi::validate_request("vm.boot", b"{}").is_err());
    assert!(openapi::validate_request("vm.create", b"not json").is_err());
}

#[test]
fn replies_are_held_leniently_requests_strictly() {
    let info = json!({"state": "Running", "config": {"payload": {"kernel": "k", "igvm": null},
        "new_in_v99": true}, "memory_actual_size": 1});
    openapi::validate_reply("VmInfo", &info, openapi::Mode::Reply).unwrap();
    assert!(openapi::validate_reply("VmInfo", &info, openapi::Mode::Request).is_err());
    let bad = json!({"state": "running", "config": {"payload": {}}});
    assert!(openapi::validate_reply("VmInfo", &bad, openapi::Mode::Reply).is_err());
}

// ---- against the double -------------------------------------------------------------------

#[tokio::test]
async fn lifecycle_create_boot_pause_resume_power_button_delete() {
    let d = Double::spawn(&[
        ("CH_DOUBLE_POWEROFF", "stay"),
        ("CH_DOUBLE_POWEROFF_MS", "50"),
    ]);
    let c = client(&d);
    let t0 = Instant::now();

    let ping = c.ping().await.unwrap();
    assert_eq!(ping.version, "54.0.0");
    assert_eq!(ping.build_version.as_deref(), Some("v54.0.0-double"));
    assert_eq!(ping.pid, Some(i64::from(d.child.id())));

    c.create(&vm_config(None)).await.unwrap();
    assert_eq!(c.info().await.unwrap().state, VmState::Created);
    c.boot().await.unwrap();
    let info = c.info().await.unwrap();
    assert_eq!(info.state, VmState::Running);
    assert_eq!(info.memory_actual_size, Some(536_870_912));
    assert_eq!(info.config["cpus"]["boot_vcpus"], 2);

    c.pause().await.unwrap();
    assert_eq!(c.info().await.unwrap().state, VmState::Paused);
    c.resume().await.unwrap();
    assert_eq!(c.info().await.unwrap().state, VmState::Running);
    c.reboot().await.unwrap();
    c.nmi().await.unwrap();
    c.power_button().await.unwrap();
    wait_state(&c, VmState::Shutdown, Duration::from_secs(2)).await;
    c.delete().await.unwrap();
    let elapsed = t0.elapsed();

    // One request on a fresh connection each: what a monitoring tick costs.
    let t1 = Instant::now();
    for _ in 0..50 {
        c.ping().await.unwrap();
    }
    let per_ping = t1.elapsed() / 50;

    let (status, causes) = api_causes(&c.info().await.unwrap_err());
    assert_eq!(status, 404);
    assert_eq!(causes.last().map(String::as_str), Some("VM is not created"));

    let events: Vec<String> = d
        .events()
        .into_iter()
        .map(|(s, e)| format!("{s}:{e}"))
        .collect();
    assert_eq!(
        events,
        [
            "vmm:starting",
            "vm:booting",
            "vm:booted",
            "vm:pausing",
            "vm:paused",
            "vm:resuming",
            "vm:resumed",
            "vm:rebooting",
            "vm:rebooted",
            "vm:shutdown",
            "vm:deleted",
        ]
    );
    assert_requests_valid(&d);
    eprintln!(
        "lifecycle against the double: {elapsed:?} (incl. 50 ms power-off); ping {per_ping:?}"
    );
}

#[tokio::test]
async fn guest_power_off_ends_the_vmm_like_cloud_hypervisor() {
    let mut d = Double::spawn(&[("CH_DOUBLE_POWEROFF_MS", "20")]);
    let c = client(&d);
    c.create(&vm_config(None)).await.unwrap();
    c.boot().await.unwrap();
    c.power_button().await.unwrap();
    let status = d.wait_exit(Duration::from_secs(3)).expect("the VMM exits");
    assert!(status.success(), "{status:?}");
    assert!(!d.api_socket.exists(), "the double removes its own socket");
    let events = d.events();
    let tail: Vec<&str> = events
        .iter()
        .rev()
        .take(3)
        .map(|(_, e)| e.as_str())
        .collect();
    assert_eq!(tail, ["shutdown", "deleted", "shutdown"]);
    assert!(matches!(c.ping().await, Err(VmmError::Connect { .. })));
}

#[tokio::test]
async fn shutdown_then_boot_again_and_counters_grow_at_known_rates() {
    let d = Double::spawn(&[]);
    let c = client(&d);
    c.create(&vm_config(None)).await.unwrap();
    c.boot().await.unwrap();
    let before = Instant::now();
    let a = c.counters().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = c.counters().await.unwrap();
    let span = before.elapsed().as_millis() as u64;
    let grew = b["_disk0"]["read_bytes"] - a["_disk0"]["read_bytes"];
    // CH names generated ids with one counter: the NIC after the one disk is `_net1`.
    // 1 MiB/s of running time: at least the 300 ms slept, at most the whole span measured here.
    let (lo, hi) = (299 * 1_048_576 / 1000, (span + 2) * 1_048_576 / 1000);
    assert!(
        (lo..=hi).contains(&grew),
        "read_bytes grew by {grew}, want {lo}..={hi}"
    );
    assert!(b["_net1"]["rx_frames"] > a["_net1"]["rx_frames"]);
    for key in ["read_bytes", "write_bytes", "read_ops", "write_ops"] {
        assert!(b["_disk0"].contains_key(key), "{key}");
    }
    for key in ["rx_bytes", "tx_bytes", "rx_frames", "tx_frames"] {
        assert!(b["_net1"].contains_key(key), "{key}");
    }

    // As in CH: the VM is dropped, its config kept.
    c.shutdown().await.unwrap();
    assert_eq!(c.info().await.unwrap().state, VmState::Created);
    assert!(
        c.counters().await.is_err(),
        "no counters without a running VM"
    );
    c.boot().await.unwrap();
    assert_eq!(c.info().await.unwrap().state, VmState::Running);
    assert_requests_valid(&d);
}

#[tokio::test]
async fn replies_of_the_double_match_the_spec() {
    let d = Double::spawn(&[]);
    let c = client(&d);
    c.create(&vm_config(None)).await.unwrap();
    c.boot().await.unwrap();
    c.add_device("/sys/bus/pci/devices/0000:01:00.0/", Some("gpu0"))
        .await
        .unwrap();
    let ping = serde_json::to_value(c.ping().await.unwrap()).unwrap();
    openapi::validate_reply("VmmPingResponse", &ping, openapi::Mode::Request).unwrap();
    // The double checks its replies strictly before sending; this checks what the client kept.
    let info = serde_json::to_value(c.info().await.unwrap()).unwrap();
    openapi::validate_reply("VmInfo", &info, openapi::Mode::Reply).unwrap();
    openapi::validate("VmConfig", &info["config"]).unwrap();
    // Real CH reports idle latencies as u64::MAX, beyond the spec's int64: the shape is
    // checked against the recordings (tests/ch_conformance.rs), the values here.
    let counters = c.counters().await.unwrap();
    assert_eq!(counters["_disk0"]["read_latency_min"], u64::MAX);
    assert!(counters["_net1"].contains_key("tx_frames"));
}

#[tokio::test]
async fn wrong_state_errors_come_back_as_cause_lists() {
    let d = Double::spawn(&[]);
    let c = client(&d);
    let e = c.boot().await.unwrap_err();
    let (status, causes) = api_causes(&e);
    assert_eq!(status, 404);
    assert_eq!(
        causes,
        [
            "Error from API",
            "The VM could not boot",
            "VM config is missing"
        ]
    );
    assert_eq!(e.to_string(), "vm.boot failed: The VM could not boot");
    assert_eq!(e.causes().len(), 3);

    c.create(&vm_config(None)).await.unwrap();
    let (_, causes) = api_causes(&c.create(&vm_config(None)).await.unwrap_err());
    assert_eq!(causes.last().unwrap(), "VM is already created");
    let (_, causes) = api_causes(&c.resume().await.unwrap_err());
    assert_eq!(causes.last().unwrap(), "VM is not running");
    let (_, causes) = api_causes(&c.power_button().await.unwrap_err());
    assert_eq!(causes.last().unwrap(), "VM is not running");
    // Deleting twice is fine, as in CH.
    c.delete().await.unwrap();
    c.delete().await.unwrap();
}

#[tokio::test]
async fn a_body_that_breaks_the_spec_is_refused_with_the_reason() {
    let d = Double::spawn(&[]);
    let c = client(&d);
    let mut bad = vm_config(None);
    bad["memory"] = json!({"size": 1, "huge_pages": true});
    let (status, causes) = api_causes(&c.create(&bad).await.unwrap_err());
    assert_eq!(status, 400);
    assert!(
        causes.iter().any(|m| m.contains("$.memory.huge_pages")),
        "{causes:?}"
    );
    assert!(c.info().await.is_err(), "nothing was created");
}

#[tokio::test]
async fn device_hotplug_cold_plug_204_and_removal() {
    let d = Double::spawn(&[]);
    let c = client(&d);
    c.create(&vm_config(None)).await.unwrap();
    // Before boot CH answers 204 with no body: a success, no PCI address yet.
    let cold = c
        .add_device("/sys/bus/pci/devices/0000:01:00.1/", None)
        .await
        .unwrap();
    assert_eq!(cold, None);
    c.boot().await.unwrap();
    let hot = c
        .add_device("/sys/bus/pci/devices/0000:01:00.0/", Some("gpu0"))
        .await
        .unwrap()
        .expect("a hot-plugged device has a PCI address");
    assert_eq!(hot.id, "gpu0");
    let info = c.info().await.unwrap();
    assert!(info.device_tree.contains_key("gpu0"));
    assert_eq!(info.config["devices"].as_array().map(Vec::len), Some(2));
    let (_, causes) = api_causes(
        &c.add_device("/sys/bus/pci/devices/0000:02:00.0/", Some("gpu0"))
            .await
            .unwrap_err(),
    );
    assert!(causes.last().unwrap().contains("gpu0"));
    c.remove_device("gpu0").await.unwrap();
    assert!(c.remove_device("gpu0").await.is_err());
    assert_requests_valid(&d);
}

#[tokio::test]
async fn snapshot_a_paused_vm_and_restore_it() {
    let d = Double::spawn(&[]);
    let c = client(&d);
    let snap = d.dir.path().join("snap");
    std::fs::create_dir(&snap).unwrap();
    let url = format!("file://{}", snap.display());
    c.create(&vm_config(None)).await.unwrap();
    c.boot().await.unwrap();
    let (_, causes) = api_causes(&c.snapshot(&url).await.unwrap_err());
    // Worded as the real binary answers (tests/golden/cloud-hypervisor/snapshots.json).
    assert_eq!(
        causes.last().unwrap(),
        "Trying to snapshot while VM is running"
    );
    c.pause().await.unwrap();
    c.snapshot(&url).await.unwrap();
    c.delete().await.unwrap();
    c.restore(&url).await.unwrap();
    let info = c.info().await.unwrap();
    assert_eq!(info.state, VmState::Paused);
    assert_eq!(info.config["memory"]["size"], 536_870_912u64);
    assert_requests_valid(&d);
}

#[tokio::test]
async fn injected_failure_is_an_api_error() {
    let d = Double::spawn(&[("CH_DOUBLE_FAIL", "vm.boot")]);
    let c = client(&d);
    c.create(&vm_config(None)).await.unwrap();
    let (status, causes) = api_causes(&c.boot().await.unwrap_err());
    assert_eq!(status, 500);
    assert_eq!(causes.last().unwrap(), "Injected failure of vm.boot");
}

#[tokio::test]
async fn a_hung_route_times_out_quickly_and_blocks_the_api_like_ch() {
    let d = Double::spawn(&[("CH_DOUBLE_HANG", "vm.boot")]);
    let c = ChClient::new(d.api_socket.clone(), Duration::from_millis(200));
    c.create(&vm_config(None)).await.unwrap();
    let t0 = Instant::now();
    let e = c.boot().await.unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(e, VmmError::Timeout { op: "vm.boot", after } if after == Duration::from_millis(200)),
        "{e:?}"
    );
    assert!(took < Duration::from_secs(2), "timed out after {took:?}");
    assert_eq!(e.to_string(), "vm.boot timed out after 200 ms");
    // CH's single API thread is stuck: the next request waits too.
    assert!(c.ping().await.unwrap_err().is_timeout());
    eprintln!("hung vm.boot reported as a timeout after {took:?}");
}

#[tokio::test]
async fn a_slow_boot_blocks_the_api_for_its_duration() {
    let d = Double::spawn(&[("CH_DOUBLE_BOOT_MS", "1000")]);
    let c = client(&d);
    c.create(&vm_config(None)).await.unwrap();
    let short = c.with_timeout(Duration::from_millis(200));
    assert!(short.boot().await.unwrap_err().is_timeout());
    // The boot carried on inside the VMM; a ping waits for it like on CH.
    let t0 = Instant::now();
    c.ping().await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(c.info().await.unwrap().state, VmState::Running);
}

#[tokio::test]
async fn no_socket_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("missing.sock");
    let c = ChClient::new(socket.clone(), T);
    match c.ping().await.unwrap_err() {
        VmmError::Connect { socket: s, source } => {
            assert_eq!(s, socket);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    // A stale socket file whose VMM is gone: connection refused.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let e = ChClient::new(stale, T).ping().await.unwrap_err();
    assert!(matches!(e, VmmError::Connect { .. }), "{e:?}");
    assert!(
        e.to_string().starts_with("Cannot connect to the VMM at "),
        "{e}"
    );
}

#[tokio::test]
async fn vmm_shutdown_ends_the_process_and_sigterm_too() {
    let mut d = Double::spawn(&[]);
    let c = client(&d);
    c.create(&vm_config(None)).await.unwrap();
    c.boot().await.unwrap();
    c.vmm_shutdown().await.unwrap();
    let status = d
        .wait_exit(Duration::from_secs(3))
        .expect("exits on vmm.shutdown");
    assert!(status.success());
    assert!(!d.api_socket.exists());
    assert!(d.events.exists(), "the event log stays");
    let last: Vec<String> = d
        .events()
        .into_iter()
        .map(|(s, e)| format!("{s}:{e}"))
        .collect();
    assert!(last.ends_with(&[
        "vm:shutdown".into(),
        "vm:deleted".into(),
        "vmm:shutdown".into()
    ]));

    let mut d = Double::spawn(&[]);
    let status = d.terminate().expect("exits on SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(!d.api_socket.exists());
}

#[test]
fn malformed_http_gets_a_400_and_unknown_routes_a_404() {
    use std::io::{Read, Write};
    let d = Double::spawn(&[]);
    let exchange = |raw: &[u8]| {
        let mut s = std::os::unix::net::UnixStream::connect(&d.api_socket).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let r = exchange(b"\x00\x01garbage\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let r = exchange(b"GET /api/v1/vm.nosuch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    // A wrong method: CH answers 400, as for a request it cannot parse.
    let r = exchange(b"GET /api/v1/vm.boot HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let r = exchange(
        b"PUT /api/v1/vm.create HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{{{{{",
    );
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    // Still serving.
    let r = exchange(b"GET /api/v1/vmm.ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

#[tokio::test]
async fn serial_socket_of_the_config_carries_the_boot_banner() {
    use tokio::io::AsyncReadExt;
    let d = Double::spawn(&[]);
    let c = client(&d);
    c.create(&vm_config(Some(&d.serial))).await.unwrap();
    c.boot().await.unwrap();
    let mut s = tokio::net::UnixStream::connect(&d.serial).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(3);
    // The banner went out before we connected; the heartbeat follows within a second.
    while !String::from_utf8_lossy(&seen).contains("heartbeat") {
        assert!(Instant::now() < deadline, "no serial output: {seen:?}");
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("serial output")
            .unwrap();
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn the_double_takes_cloud_hypervisors_command_line() {
    let out = std::process::Command::new(vmm_double::ch_double_path())
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("cloud-hypervisor v54"));
    // Bare socket path, CH flags the double ignores, and --serial socket= which (as in CH) only
    // counts with a payload on the command line.
    let dir = tempfile::tempdir().unwrap();
    let api = dir.path().join("api");
    let serial = dir.path().join("serial");
    let mut child = std::process::Command::new(vmm_double::ch_double_path())
        .args(["--api-socket", api.to_str().unwrap(), "-v", "--log-file"])
        .arg(dir.path().join("log"))
        .args([
            "--seccomp",
            "true",
            "--console",
            "off",
            "--kernel",
            "/x",
            "--serial",
        ])
        .arg(format!("socket={}", serial.display()))
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !(api.exists() && serial.exists()) {
        assert!(start.elapsed() < T, "sockets did not appear");
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

// ---- against a real Cloud Hypervisor ------------------------------------------------------

/// phyllome's client against the real Cloud Hypervisor (`support::vmm::backend`: the binary
/// beside the checkout or `CH_BIN`, Debian's kernel as the payload): every call it makes, each
/// reply decoded into its types. The VMM is killed on drop, a failed assertion included.
#[tokio::test]
async fn real_cloud_hypervisor_lifecycle() {
    let Some(ch) = ch_backend::real_or_skip("real_cloud_hypervisor_lifecycle") else {
        return;
    };
    let mut vmm = ch_backend::VmmProcess::spawn(&ch.bin, &[], &[]);
    let c = ChClient::new(vmm.api_socket.clone(), Duration::from_secs(30));
    let ping = c.ping().await.unwrap();
    assert_eq!(ping.version, "54.0.0");
    assert_eq!(ping.pid, Some(i64::from(vmm.child.id())));
    let disk = vmm.dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let config = json!({
        "cpus": {"boot_vcpus": 1, "max_vcpus": 1},
        "memory": {"size": 134_217_728u64},
        "payload": {"kernel": ch.kernel, "cmdline": "console=ttyS0 panic=0"},
        "disks": [{"path": disk}],
        "serial": {"mode": "Socket", "socket": vmm.dir.path().join("serial.sock")},
        "console": {"mode": "Off"},
    });
    openapi::validate("VmConfig", &config).unwrap();
    let t0 = Instant::now();
    c.create(&config).await.unwrap();
    c.boot().await.unwrap();
    let boot = t0.elapsed();
    let info = c.info().await.unwrap();
    assert_eq!(info.state, VmState::Running);
    assert_eq!(info.memory_actual_size, Some(134_217_728));
    let raw = serde_json::to_value(&info).unwrap();
    openapi::validate_reply("VmInfo", &raw, openapi::Mode::Reply).unwrap();
    let counters = c.counters().await.unwrap();
    assert!(
        counters["_disk0"].contains_key("read_bytes"),
        "{counters:?}"
    );
    c.pause().await.unwrap();
    assert_eq!(c.info().await.unwrap().state, VmState::Paused);
    let (status, causes) = api_causes(&c.pause().await.unwrap_err());
    assert_eq!(status, 500);
    assert!(causes
        .last()
        .unwrap()
        .contains("InvalidStateTransition(Paused, Paused)"));
    c.resume().await.unwrap();
    assert_eq!(c.info().await.unwrap().state, VmState::Running);
    c.reboot().await.unwrap();
    c.nmi().await.unwrap();
    let (status, causes) = api_causes(&c.remove_device("nosuch").await.unwrap_err());
    assert_eq!(status, 404);
    assert!(
        causes.last().unwrap().ends_with("identifier: nosuch"),
        "{causes:?}"
    );
    // The guest cannot act on the power button here; vm.shutdown drops the VM, keeps its config.
    c.power_button().await.unwrap();
    c.shutdown().await.unwrap();
    assert_eq!(c.info().await.unwrap().state, VmState::Created);
    c.boot().await.unwrap();
    assert_eq!(c.info().await.unwrap().state, VmState::Running);
    c.delete().await.unwrap();
    let (status, _) = api_causes(&c.info().await.unwrap_err());
    assert_eq!(status, 404);
    c.vmm_shutdown().await.unwrap();
    let exit = vmm
        .wait_exit(Duration::from_secs(10))
        .expect("the VMM exits");
    assert!(exit.success(), "{exit:?}");
    eprintln!("real Cloud Hypervisor: create + boot in {boot:?}");
}

#[tokio::test]
async fn serial_file_of_the_config_gets_the_guest_output() {
    let d = Double::spawn(&[]);
    let c = client(&d);
    let log = d.dir.path().join("serial.log");
    let mut config = vm_config(None);
    config["serial"] = json!({"mode": "File", "file": log});
    c.create(&config).await.unwrap();
    assert!(!log.exists(), "nothing is written before boot");
    c.boot().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("Linux version"), "{text}");
}
