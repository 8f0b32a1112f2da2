//! phyllome against a real Linux kernel: a Debian 6.1 kernel under qemu (TCG, q35, intel-iommu
//! with interrupt remapping) with a GPU and its audio function behind one PCIe root port.
//! Needs `host-image/test-kernel/prepare.sh`; without it the tests skip (fail under `CI`).
//!
//! The tests of this file share one guest (one boot) when they run concurrently.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::qemu::{lock_guest, Guest, GuestOptions, KernelCache, SharedGuest, PROMPT};

static GUEST: SharedGuest = SharedGuest::new();

/// The shared guest with phyllome inside, or `None` when the kernel is not prepared (skip).
pub(crate) fn guest() -> Option<Arc<Mutex<Guest>>> {
    let kernel = KernelCache::require()?;
    let guest = GUEST
        .get(&kernel, &GuestOptions::with_phyllome())
        .unwrap_or_else(|e| panic!("booting the test kernel: {e}"));
    eprintln!(
        "guest: kernel {} ready in {:.1} s",
        kernel.version,
        lock_guest(&guest).boot_time.as_secs_f64()
    );
    Some(guest)
}

/// One PCI function as the guest kernel reports it in sysfs.
#[derive(Debug, Clone)]
struct KernelDevice {
    vendor: u32,
    device: u32,
    class: u32,
    driver: Option<String>,
    group: Option<u64>,
}

/// What the kernel itself says, read with busybox, independently of phyllome.
struct KernelView {
    devices: BTreeMap<String, KernelDevice>,
    groups: BTreeMap<u64, BTreeSet<String>>,
}

fn hex(s: &str) -> u32 {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("not hex: {s:?}: {e}"))
}

fn kernel_view(guest: &mut Guest) -> KernelView {
    let run = |guest: &mut Guest, cmd: &str| {
        guest
            .run_ok(cmd)
            .unwrap_or_else(|e| panic!("{e}\n{}", guest.diagnostics()))
    };
    let listing = run(
        guest,
        r#"for d in /sys/bus/pci/devices/*; do
             drv=-; [ -e "$d/driver" ] && drv=$(basename "$(readlink "$d/driver")")
             grp=-; [ -e "$d/iommu_group" ] && grp=$(basename "$(readlink "$d/iommu_group")")
             echo "${d##*/}" $(cat "$d/vendor" "$d/device" "$d/class") "$drv" "$grp"
           done"#,
    );
    let mut devices = BTreeMap::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 6, "unexpected sysfs listing line {line:?}");
        devices.insert(
            f[0].to_owned(),
            KernelDevice {
                vendor: hex(f[1]),
                device: hex(f[2]),
                class: hex(f[3]),
                driver: (f[4] != "-").then(|| f[4].to_owned()),
                group: (f[5] != "-").then(|| f[5].parse().expect("group number")),
            },
        );
    }
    let listing = run(
        guest,
        r#"for g in /sys/kernel/iommu_groups/*; do echo "${g##*/}" $(ls "$g/devices"); done"#,
    );
    let groups = listing
        .lines()
        .map(|line| {
            let mut f = line.split_whitespace();
            let id = f.next().expect("group id").parse().expect("group number");
            (id, f.map(str::to_owned).collect())
        })
        .collect();
    KernelView { devices, groups }
}

/// The emulated GPU (`-device VGA`, 1234:1111) and the HDA function sharing its group: checks
/// the topology the other assertions rely on, so a qemu or kernel change fails loudly here.
fn kernel_gpu(view: &KernelView) -> (String, u64, String) {
    let (gpu, dev) = view
        .devices
        .iter()
        .find(|(_, d)| d.vendor == 0x1234 && d.device == 0x1111 && d.class == 0x030000)
        .expect("kernel lists the 1234:1111 VGA device");
    let group = dev.group.expect("the VGA device has an IOMMU group");
    let members = &view.groups[&group];
    let audio = members
        .iter()
        .find(|a| view.devices[*a].class >> 8 == 0x0403)
        .unwrap_or_else(|| panic!("no HDA function in the GPU's group {group}: {members:?}"));
    assert_eq!(
        dev.driver.as_deref(),
        Some("bochs-drm"),
        "bochs-drm should own the GPU"
    );
    (gpu.clone(), group, audio.clone())
}

/// An id field as a number, whether the JSON has it as a number or as hex text.
fn id_value(v: &Value) -> u32 {
    match v {
        Value::Number(n) => n.as_u64().expect("unsigned id") as u32,
        Value::String(s) => hex(s),
        other => panic!("id should be a number or hex string, got {other}"),
    }
}

#[test]
fn host_json_matches_the_kernel() {
    let Some(guest) = guest() else { return };
    let mut guest = lock_guest(&guest);
    let view = kernel_view(&mut guest);
    let (gpu_addr, gpu_group, audio_addr) = kernel_gpu(&view);
    let boot_vga = guest
        .run_ok(&format!("cat /sys/bus/pci/devices/{gpu_addr}/boot_vga"))
        .expect("boot_vga");
    assert_eq!(boot_vga.trim(), "1", "the only VGA device is the boot VGA");

    let out = guest.run("phyllome host --json").expect("running phyllome");
    assert_eq!(
        out.code, 0,
        "phyllome host --json failed\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    let json: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("invalid JSON ({e}):\n{}", out.stdout));

    assert_eq!(
        json["iommu"]["enabled"],
        Value::Bool(true),
        "iommu: {}",
        json["iommu"]
    );
    for key in ["kvm", "checks"] {
        assert!(json.get(key).is_some(), "missing top-level {key:?}");
    }

    // Every PCI function, with the kernel's ids, class, driver and group.
    let devices = json["pci_devices"].as_array().expect("pci_devices array");
    let listed: BTreeSet<&str> = devices
        .iter()
        .map(|d| d["address"].as_str().expect("address string"))
        .collect();
    let expected: BTreeSet<&str> = view.devices.keys().map(String::as_str).collect();
    assert_eq!(listed, expected, "pci_devices addresses");
    for d in devices {
        let addr = d["address"].as_str().unwrap_or_default();
        let k = &view.devices[addr];
        assert_eq!(id_value(&d["vendor_id"]), k.vendor, "{addr} vendor_id");
        assert_eq!(id_value(&d["device_id"]), k.device, "{addr} device_id");
        assert_eq!(d["class"], format!("{:06x}", k.class), "{addr} class");
        assert_eq!(d["driver"].as_str(), k.driver.as_deref(), "{addr} driver");
        assert_eq!(d["iommu_group"].as_u64(), k.group, "{addr} iommu_group");
        for name in ["vendor_name", "device_name"] {
            assert!(d.get(name).is_some(), "{addr} lacks {name}");
        }
    }

    // The groups exactly as /sys/kernel/iommu_groups has them.
    let groups: BTreeMap<u64, BTreeSet<String>> = json["iommu_groups"]
        .as_array()
        .expect("iommu_groups array")
        .iter()
        .map(|g| {
            let id = g["id"].as_u64().expect("group id");
            let devs = g["devices"].as_array().expect("group devices");
            let devs = devs.iter().map(|a| a.as_str().expect("address").to_owned());
            (id, devs.collect())
        })
        .collect();
    assert_eq!(groups, view.groups, "iommu_groups");

    // The one display-class device is the GPU, with its audio function as companion.
    let gpus = json["gpus"].as_array().expect("gpus array");
    let display: Vec<&String> = view
        .devices
        .iter()
        .filter(|(_, d)| d.class >> 16 == 0x03)
        .map(|(a, _)| a)
        .collect();
    assert_eq!(gpus.len(), display.len(), "gpus: {gpus:?}");
    let gpu = gpus
        .iter()
        .find(|g| g["address"] == gpu_addr.as_str())
        .unwrap_or_else(|| panic!("{gpu_addr} missing from gpus: {gpus:?}"));
    assert_eq!(
        gpu["iommu_group"].as_u64(),
        Some(gpu_group),
        "gpu iommu_group"
    );
    assert_eq!(gpu["boot_vga"], Value::Bool(true), "gpu boot_vga");
    let companions: Vec<&str> = gpu["companions"]
        .as_array()
        .expect("companions array")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        companions.contains(&audio_addr.as_str()),
        "{audio_addr} (HDA, same group) should be a companion of {gpu_addr}: {companions:?}"
    );
    assert!(
        !companions.contains(&gpu_addr.as_str()),
        "a GPU is not its own companion"
    );
    let verdict = gpu["passthrough"]["verdict"].as_str().expect("verdict");
    assert!(
        ["ready", "warn", "blocked"].contains(&verdict),
        "verdict {verdict:?}"
    );
    let reasons = gpu["passthrough"]["reasons"].as_array().expect("reasons");
    assert!(
        verdict == "ready" || !reasons.is_empty(),
        "a {verdict} verdict must say why"
    );
}

/// (rows, columns) from `stty -a`; busybox leaves out a size of 0.
fn tty_size(settings: &str) -> (u32, u32) {
    let field = |name: &str| {
        settings
            .split(';')
            .find_map(|f| f.trim().strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("rows"), field("columns"))
}

/// True if `screen` says "group N" for this `id` (any case, "group: N", "group #N", ...).
fn mentions_group(screen: &str, id: u64) -> bool {
    let lower = screen.to_lowercase();
    lower.match_indices("group").any(|(i, w)| {
        let rest = lower[i + w.len()..].trim_start_matches([' ', ':', '#', '=']);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse() == Ok(id)
    })
}

#[test]
fn console_on_a_serial_tty_shows_the_gpu_group_and_quits() {
    let Some(guest) = guest() else { return };
    let mut guest = lock_guest(&guest);
    let view = kernel_view(&mut guest);
    let (gpu_addr, gpu_group, _) = kernel_gpu(&view);
    // The case under test: a serial tty nobody has sized.
    let settings = guest.run_ok("stty -F /dev/ttyS0 -a").expect("stty -a");
    assert_eq!(
        tty_size(&settings),
        (0, 0),
        "ttyS0 should start at 0x0: {settings}"
    );

    let console = guest.console();
    if let Err(e) = console.wait_for(0, PROMPT, Duration::from_secs(30)) {
        panic!("no shell prompt on ttyS0: {e}\n{}", guest.diagnostics());
    }
    console.send_line("TERM=linux phyllome").expect("typing");
    // The first screen (the overview) names the GPU and its group; so does the group view.
    let short_addr = gpu_addr.trim_start_matches("0000:");
    let first = console.wait_screen(Duration::from_secs(90), |s| {
        s.contains(short_addr) && mentions_group(s, gpu_group)
    });
    let first = first.unwrap_or_else(|e| {
        panic!(
            "first screen never showed {gpu_addr} in group {gpu_group}: {e}\n{}",
            guest.diagnostics()
        )
    });
    eprintln!("first screen:\n{first}");
    let transcript = console.transcript_tail(usize::MAX);
    assert!(
        transcript.contains("^[[6n") || transcript.contains("^[[18t"),
        "on a 0x0 tty the console should ask the terminal for its size"
    );
    console.send(b"2").expect("typing 2");
    let groups = console.wait_screen(Duration::from_secs(60), |s| {
        s.contains(short_addr) && mentions_group(s, gpu_group)
    });
    let groups = groups.unwrap_or_else(|e| {
        panic!(
            "group view never showed {gpu_addr} in group {gpu_group}: {e}\n{}",
            guest.diagnostics()
        )
    });
    eprintln!("group screen:\n{groups}");
    console.send(b"1").expect("typing 1");
    console
        .wait_screen(Duration::from_secs(30), |s| s.contains("[Overview]"))
        .unwrap_or_else(|e| panic!("1 did not return to the overview: {e}"));

    // `q` quits and gives the shell back.
    let before_quit = console.mark();
    console.send(b"q").expect("typing q");
    if let Err(e) = console.wait_for(before_quit, PROMPT, Duration::from_secs(30)) {
        panic!("no prompt after q: {e}\n{}", guest.diagnostics());
    }
    let after = console.mark();
    console.send_line("echo exit=$?").expect("typing");
    if let Err(e) = console.wait_for(after, "exit=0", Duration::from_secs(30)) {
        panic!("phyllome did not exit 0 on q: {e}\n{}", guest.diagnostics());
    }
}
