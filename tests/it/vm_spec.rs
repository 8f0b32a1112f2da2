//! VM definitions: parse and validation messages, Cloud Hypervisor export and import.

use crate::support::vmm::openapi;

use phyllome::host::SysRoot;
use phyllome::vm::{self, load, to_cli_args, to_vm_config, RuntimePaths, VmSpec, EXAMPLE_TOML};
use proptest::prelude::*;
use serde_json::json;

const BASE: &str = r#"
[cpus]
boot = 2
[memory]
size = "2G"
[boot]
firmware = "/fw/CLOUDHV.fd"
"#;

fn rt() -> RuntimePaths {
    RuntimePaths::in_dir(std::path::Path::new("/run/phyllome/vms/t"))
}

fn errors(text: &str) -> Vec<String> {
    match load(text, "t") {
        Ok(_) => Vec::new(),
        Err(p) => p.0.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn the_example_is_valid() {
    let spec = load(EXAMPLE_TOML, "desktop").expect("example");
    assert_eq!(spec.cpus.boot, 8);
    assert!(spec.cpus.kvm_hyperv);
    assert_eq!(spec.vfio.len(), 2);
    assert_eq!(spec.serial, vm::spec::SerialMode::Socket);
}

#[test]
fn every_bad_field_is_named_with_its_fix() {
    // (added to BASE or replacing it, expected message)
    let cases: &[(&str, &str)] = &[
        ("[cpus]\nboot = 0\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "cpus.boot: 0 vCPUs; at least 1"),
        ("[cpus]\nboot = 4\nmax = 2\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "cpus.max: 2 is below cpus.boot (4)"),
        ("[cpus]\nboot = -1\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "cpus.boot: -1 is out of range"),
        ("[cpus]\nboot = \"two\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "cpus.boot: expected a whole number, found the string \"two\""),
        ("[cpus]\nboot = 4\ntopology = { threads_per_core = 2, cores_per_die = 1, dies_per_package = 1, packages = 1 }\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "cpus.topology: 2 threads x 1 cores x 1 dies x 1 packages = 2 vCPUs, but cpus.max is 4"),
        ("[cpus]\nboot = 2\ntopology = { threads_per_core = 2 }\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "cpus.topology.cores_per_die: missing"),
        ("[cpus]\nboot = 2\nkvm_hyperv = \"yes\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "cpus.kvm_hyperv: expected true or false"),
        ("[memory]\nsize = \"2X\"\n[boot]\nfirmware = \"/f\"", "memory.size: \"2X\" is not a size; write e.g. 2G"),
        ("[memory]\nsize = \"8GB\"\n[boot]\nfirmware = \"/f\"", "memory.size: \"8GB\" is not a size (units are binary: use G or GiB)"),
        ("[memory]\nsize = \"1M\"\n[boot]\nfirmware = \"/f\"", "memory.size: 1M is too small; at least 64M"),
        ("[boot]\nfirmware = \"/f\"", "memory: missing"),
        ("[memory]\nhugepages = true\n[boot]\nfirmware = \"/f\"", "memory.size: missing"),
        ("[memory]\nsize = \"2G\"\nhugepage_size = \"2M\"\n[boot]\nfirmware = \"/f\"", "memory.hugepage_size: set, but hugepages is off"),
        ("[memory]\nsize = \"2G\"\nhugepages = true\nhugepage_size = \"4M\"\n[boot]\nfirmware = \"/f\"", "memory.hugepage_size: 4M is not a hugepage size; write 2M or 1G"),
        ("[memory]\nsize = \"2G\"\nballoon = { size = \"4G\" }\n[boot]\nfirmware = \"/f\"", "memory.balloon.size: 4G leaves the guest no memory"),
        ("[memory]\nsize = \"2G\"\nballoon = { deflate_on_oom = true }\n[boot]\nfirmware = \"/f\"", "memory.balloon.size: missing"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\nkernel = \"/k\"", "boot: give either firmware or kernel, not both"),
        ("[memory]\nsize = \"2G\"", "boot: nothing to boot"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\ncmdline = \"x\"", "boot: initramfs and cmdline go with kernel"),
        ("[memory]\nsize = \"2G\"\n[boot]\nkernel = \"vmlinuz\"", "boot.kernel: \"vmlinuz\" is not an absolute path"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[disks]]\nreadonly = true", "disks[0].path: missing"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[disks]]\npath = \"/d\"\nformat = \"vmdk\"", "disks[0].format: \"vmdk\" is not a disk format; write raw or qcow2"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[disks]]\npath = \"/d\"\n[[disks]]\npath = \"/d\"", "disks[1].path: /d is listed twice"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[disks]]\npath = \"/d\"\nid = \"x\"\n[[net]]\ntap = \"t0\"\nid = \"x\"", "net[0].id: \"x\" is used by another device"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[net]]\nmac = \"52:54:00:00:00:01\"", "net[0]: give tap = \"NAME\" or macvtap = \"NAME\""),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[net]]\ntap = \"a\"\nmacvtap = \"b\"", "net[0]: give either tap or macvtap, not both"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[net]]\ntap = \"t0\"\nmac = \"zz\"", "net[0].mac: \"zz\" is not a MAC address"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[net]]\ntap = \"t0\"\nmac = \"01:00:5e:00:00:01\"", "net[0].mac: 01:00:5e:00:00:01 is not a unicast address"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[net]]\ntap = \"a-very-long-interface-name\"", "net[0]: \"a-very-long-interface-name\" is not an interface name"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[vfio]]\naddress = \"01:00\"", "vfio[0].address: \"01:00\" is not a PCI address"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[vfio]]\naddress = \"01:00.0\"\n[[vfio]]\naddress = \"0000:01:00.0\"", "vfio[1].address: 0000:01:00.0 is listed twice"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[[vfio]]\nid = \"gpu\"", "vfio[0].address: missing"),
        ("serial = \"tcp\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "serial: \"tcp\" is not a serial mode; write socket, pty, file=PATH or off"),
        ("console = \"file=\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "console: \"file=\" is not a console mode"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[platform]\nuuid = \"nope\"", "platform.uuid: \"nope\" is not a UUID"),
        ("[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"\n[platform]\nserial_number = \"a,b\"", "platform.serial_number: use 1 to 64 ASCII characters without ','"),
        ("autostart = 1\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "autostart: expected true or false, found the number 1"),
        ("stop_timeout = \"x\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "stop_timeout: \"x\" is not a duration; write e.g. 90s"),
        ("stop_timeout = \"90\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "stop_timeout: \"90\" is not a duration; write e.g. 90s"),
        ("stop_timeout = \"0s\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "stop_timeout: 0s gives the guest no time; write at least 1s"),
        ("stop_timeout = \"25h\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "stop_timeout: 25h is too long; at most 24h"),
        ("stop_timeout = -5\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "stop_timeout: expected a duration such as \"90s\", found the number -5"),
        ("stop_timeout = true\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "stop_timeout: expected a duration such as \"90s\", found true"),
        ("name = \"other\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "name: \"other\" differs from the VM's name \"t\""),
        ("colour = \"red\"\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "colour: unknown field; expected one of name,"),
        ("disks = 3\n[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/f\"", "disks: expected a list of tables ([[disks]]), found the number 3"),
        ("[memory\nsize = 1", "Not valid TOML"),
    ];
    for (text, want) in cases {
        let got = errors(text);
        assert!(
            got.iter().any(|e| e.contains(want)),
            "for\n{text}\nwanted {want:?}\ngot {got:#?}"
        );
    }
}

#[test]
fn all_problems_are_listed_at_once() {
    let text = "[cpus]\nboot = 0\nbot = 1\n[memory]\nsize = \"2X\"\n[boot]\nfirmware = \"/a\"\nkernel = \"/b\"\n";
    let got = errors(text);
    assert_eq!(
        got,
        [
            "cpus.bot: unknown field; expected one of boot, max, topology, kvm_hyperv, pin",
            "memory.size: \"2X\" is not a size; write e.g. 2G",
            "cpus.boot: 0 vCPUs; at least 1",
            "boot: give either firmware or kernel, not both",
        ]
    );
}

#[test]
fn stop_timeout_defaults_to_a_minute_and_takes_units_or_seconds() {
    assert_eq!(load(BASE, "t").unwrap().stop_timeout.secs(), 60);
    for (value, secs) in [
        ("\"90s\"", 90),
        ("\"2m\"", 120),
        ("\"1m30s\"", 90),
        ("\"1h\"", 3600),
        ("\"24h\"", 86_400),
        ("45", 45),
        ("\"1s\"", 1),
    ] {
        let text = format!("stop_timeout = {value}\n{BASE}");
        let spec = load(&text, "t").unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(spec.stop_timeout.secs(), secs, "{value}");
    }
}

#[test]
fn stop_timeout_is_not_part_of_the_vm_config() {
    let spec = load(&format!("stop_timeout = \"5m\"\n{BASE}"), "t").unwrap();
    let config = to_vm_config(&spec, &rt());
    assert!(!config.to_string().contains("stop_timeout"), "{config:#}");
    assert!(!to_cli_args(&spec, &rt()).join(" ").contains("stop"));
    openapi::validate("VmConfig", &config).expect("valid VmConfig");
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = load(&text, "t");
    }

    #[test]
    fn arbitrary_toml_like_text_never_panics(
        key in "(cpus|memory|boot|disks|net|vfio|platform|size|boot|max|topology)",
        val in "(\"[0-9A-Za-z.:/ -]{0,12}\"|-?[0-9]{1,20}|true|\\[\\]|\\{\\})",
    ) {
        let text = format!("{BASE}\n{key} = {val}\n[[disks]]\n{key} = {val}\n[cpus.topology]\n{key} = {val}\n");
        let _ = load(&text, "t");
    }

    #[test]
    fn arbitrary_size_strings_never_panic(size in "\\PC{0,20}") {
        let text = format!("[memory]\nsize = {size:?}\n[boot]\nfirmware = \"/f\"\n");
        let _ = load(&text, "t");
    }

    #[test]
    fn arbitrary_duration_strings_never_panic(d in "[0-9hms .-]{0,24}|\\PC{0,20}") {
        let text = format!("stop_timeout = {d:?}\n{BASE}");
        let _ = load(&text, "t");
    }
}

fn full_spec() -> VmSpec {
    let text = r#"
autostart = true
stop_timeout = "3m"
serial = "socket"
console = "file"
[cpus]
boot = 4
max = 8
kvm_hyperv = true
topology = { threads_per_core = 2, cores_per_die = 2, dies_per_package = 1, packages = 2 }
[memory]
size = "8G"
hugepages = true
hugepage_size = "2M"
shared = true
balloon = { size = "1G", deflate_on_oom = true }
[boot]
firmware = "/usr/share/cloud-hypervisor/CLOUDHV.fd"
[[disks]]
path = "/img/win.qcow2"
id = "system"
[[disks]]
path = "/img/data.img"
readonly = true
[[net]]
tap = "tap0"
mac = "52:54:00:12:34:56"
id = "lan"
[[vfio]]
address = "0000:01:00.0"
id = "gpu"
[platform]
uuid = "9f3f1c2e-5b7a-4c1e-9d0f-3a2b1c4d5e6f"
serial_number = "PHY-1"
"#;
    load(text, "t").expect("full spec")
}

#[test]
fn vm_config_has_cloud_hypervisors_fields() {
    let got = to_vm_config(&full_spec(), &rt());
    let want = json!({
        "cpus": {
            "boot_vcpus": 4, "max_vcpus": 8, "kvm_hyperv": true,
            "topology": {"threads_per_core": 2, "cores_per_die": 2, "dies_per_package": 1, "packages": 2}
        },
        "memory": {"size": 8u64 << 30, "hugepages": true, "hugepage_size": 2u64 << 20, "shared": true},
        "payload": {"firmware": "/usr/share/cloud-hypervisor/CLOUDHV.fd"},
        "disks": [
            {"path": "/img/win.qcow2", "readonly": false, "image_type": "Qcow2", "id": "system"},
            {"path": "/img/data.img", "readonly": true, "image_type": "Raw"}
        ],
        "net": [{"tap": "tap0", "mac": "52:54:00:12:34:56", "id": "lan"}],
        "balloon": {"size": 1u64 << 30, "deflate_on_oom": true},
        "serial": {"mode": "Socket", "socket": "/run/phyllome/vms/t/serial.sock"},
        "console": {"mode": "File", "file": "/run/phyllome/vms/t/console.log"},
        "devices": [{"path": "/sys/bus/pci/devices/0000:01:00.0/", "id": "gpu"}],
        "platform": {"uuid": "9f3f1c2e-5b7a-4c1e-9d0f-3a2b1c4d5e6f", "serial_number": "PHY-1"}
    });
    assert_eq!(got, want);
}

#[test]
fn kernel_boot_payload() {
    let text = "[memory]\nsize = \"1G\"\n[boot]\nkernel = \"/k\"\ninitramfs = \"/i\"\ncmdline = \"console=ttyS0\"\n";
    let spec = load(text, "k").expect("kernel spec");
    let v = to_vm_config(&spec, &rt());
    assert_eq!(
        v["payload"],
        json!({"kernel": "/k", "initramfs": "/i", "cmdline": "console=ttyS0"})
    );
    assert_eq!(
        v["cpus"],
        json!({"boot_vcpus": 1, "max_vcpus": 1, "kvm_hyperv": false})
    );
    assert_eq!(v["console"], json!({"mode": "Off"}));
}

#[test]
fn cli_args_match_cloud_hypervisors_syntax() {
    let args = to_cli_args(&full_spec(), &rt());
    let want = [
        "--cpus",
        "boot=4,max=8,topology=2:2:1:2,kvm_hyperv=on",
        "--memory",
        "size=8G,hugepages=on,hugepage_size=2M,shared=on",
        "--firmware",
        "/usr/share/cloud-hypervisor/CLOUDHV.fd",
        "--disk",
        "path=/img/win.qcow2,image_type=qcow2,id=system",
        "--disk",
        "path=/img/data.img,readonly=on,image_type=raw",
        "--net",
        "tap=tap0,mac=52:54:00:12:34:56,id=lan",
        "--balloon",
        "size=1G,deflate_on_oom=on",
        "--device",
        "path=/sys/bus/pci/devices/0000:01:00.0/,id=gpu",
        "--serial",
        "socket=/run/phyllome/vms/t/serial.sock",
        "--console",
        "file=/run/phyllome/vms/t/console.log",
        "--platform",
        "uuid=9f3f1c2e-5b7a-4c1e-9d0f-3a2b1c4d5e6f,serial_number=PHY-1",
    ];
    assert_eq!(args, want);
}

#[test]
fn macvtap_is_left_to_the_supervisor_not_dropped() {
    let text = format!("{BASE}[[net]]\nmacvtap = \"macvtap0\"\nmac = \"52:54:00:00:00:02\"\n[[net]]\ntap = \"tap1\"\n");
    let spec = load(&text, "t").expect("spec");
    let v = to_vm_config(&spec, &rt());
    assert_eq!(v["net"], json!([{"tap": "tap1"}]));
    assert_eq!(vm::macvtap_nets(&spec).len(), 1);
    let args = to_cli_args(&spec, &rt());
    assert!(
        args.contains(&"fd=3,mac=52:54:00:00:00:02".to_string()),
        "{args:?}"
    );
}

#[test]
fn round_trip_through_vm_config() {
    let mut spec = full_spec();
    // The console file and serial socket are the supervisor's: they come back as defaults.
    let back = vm::from_vm_config(&to_vm_config(&spec, &rt()), "t").expect("import");
    spec.console = vm::spec::ConsoleMode::File(Some("/run/phyllome/vms/t/console.log".into()));
    // Not Cloud Hypervisor notions.
    spec.autostart = false;
    spec.stop_timeout = vm::StopTimeout::DEFAULT;
    assert_eq!(back.spec, spec);
    assert!(
        back.warnings.iter().any(|w| w.field == "serial.socket"),
        "{:?}",
        back.warnings
    );
}

#[test]
fn round_trip_through_toml() {
    let spec = full_spec();
    let text = vm::doc::to_document(&spec).to_string();
    assert_eq!(load(&text, "t").expect("reload"), spec);
}

#[test]
fn import_takes_what_vm_info_reports_and_refuses_the_rest() {
    // Shaped like `vm.info`'s config: every default spelled out.
    let config = json!({
        "cpus": {"boot_vcpus": 2, "max_vcpus": 2, "topology": null, "kvm_hyperv": false, "max_phys_bits": 46, "affinity": null, "features": {}, "nested": true},
        "memory": {"size": 1073741824u64, "mergeable": false, "hotplug_method": "Acpi", "hotplug_size": null, "hotplugged_size": null, "shared": false, "hugepages": false, "hugepage_size": null, "prefault": false, "zones": null, "thp": true},
        "payload": {"firmware": null, "kernel": "/k", "cmdline": "console=ttyS0", "initramfs": null},
        "disks": [{"path": "/img/a.raw", "readonly": false, "direct": false, "iommu": false, "num_queues": 1, "queue_size": 128, "vhost_user": false, "vhost_socket": null, "rate_limit_group": null, "rate_limiter_config": null, "id": "_disk0", "disable_io_uring": false, "disable_aio": false, "pci_segment": 0, "serial": null, "queue_affinity": null}],
        "net": [{"tap": "tap0", "ip": "192.168.249.1", "mask": "255.255.255.0", "mac": "52:54:00:aa:bb:cc", "host_mac": "12:34:56:78:9a:bc", "mtu": null, "iommu": false, "num_queues": 2, "queue_size": 256, "vhost_user": false, "vhost_socket": null, "vhost_mode": "Client", "id": "_net1", "fds": null, "rate_limiter_config": null, "pci_segment": 0, "offload_tso": true, "offload_ufo": true, "offload_csum": true}],
        "rng": {"src": "/dev/urandom", "iommu": false},
        "balloon": null, "fs": null, "pmem": null,
        "serial": {"file": null, "mode": "Null", "iommu": false, "socket": null},
        "console": {"file": null, "mode": "Tty", "iommu": false, "socket": null},
        "debug_console": {"file": null, "mode": "Off", "iobase": 233},
        "devices": null, "user_devices": null, "vdpa": null, "vsock": null,
        "pvpanic": false, "iommu": false, "numa": null, "watchdog": false,
        "platform": null, "tpm": null, "preserved_fds": null, "landlock_enable": false, "landlock_rules": null
    });
    let got = vm::from_vm_config(&config, "t1").expect("import");
    assert_eq!(got.spec.cpus.boot, 2);
    assert_eq!(
        got.spec.boot.kernel.as_deref(),
        Some(std::path::Path::new("/k"))
    );
    assert_eq!(got.spec.disks[0].id, None);
    assert_eq!(got.spec.serial, vm::spec::SerialMode::Off);
    let fields: Vec<&str> = got.warnings.iter().map(|w| w.field.as_str()).collect();
    assert_eq!(fields, ["net[0].host_mac", "console.mode"]);

    let mut bad = config.clone();
    bad["watchdog"] = json!(true);
    bad["disks"][0]["num_queues"] = json!(4);
    bad["fs"] = json!([{"tag": "x", "socket": "/s"}]);
    bad["disks"][0]["image_type"] = json!("Vhdx");
    let err = vm::from_vm_config(&bad, "t1").unwrap_err().to_string();
    for want in [
        "watchdog: true is not supported by phyllome; remove it to import",
        "fs: [{\"socket\":\"/s\",\"tag\":\"x\"}] is not supported",
        "disks[0].num_queues: 4 is not supported",
        "disks[0].image_type: Vhdx images are not supported",
    ] {
        assert!(err.contains(want), "{want}\nin\n{err}");
    }
    assert!(vm::from_vm_config(&json!([1, 2]), "t").is_err());
    assert!(vm::from_vm_config(&json!({"payload": {}}), "t")
        .unwrap_err()
        .to_string()
        .contains("memory: missing"));
}

proptest! {
    #[test]
    fn import_of_arbitrary_json_never_panics(v in arb_json()) {
        let _ = vm::from_vm_config(&v, "t");
        let wrapped = json!({"cpus": v.clone(), "memory": v.clone(), "payload": v.clone(), "disks": [v.clone()], "net": [v.clone()], "devices": [v.clone()], "serial": v.clone(), "console": v});
        let _ = vm::from_vm_config(&wrapped, "t");
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-zA-Z_/:.0-9]{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("size".to_string()),
                    Just("path".to_string()),
                    Just("mode".to_string()),
                    Just("tap".to_string()),
                    Just("boot_vcpus".to_string()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn host_checks_read_the_host_root() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    let w = |rel: &str, text: &[u8]| {
        let p = r.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    w("proc/meminfo", b"MemTotal:        4096000 kB\nMemAvailable:    1024000 kB\nHugePages_Free:        0\nHugepagesize:       2048 kB\n");
    w("sys/devices/system/cpu/online", b"0-3\n");
    w("fw/CLOUDHV.fd", b"fw");
    w("img/a.img", b"QFI\xfb....");
    let dev = r.join("sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0");
    std::fs::create_dir_all(&dev).expect("dev");
    std::fs::create_dir_all(r.join("sys/bus/pci/devices")).expect("bus");
    std::os::unix::fs::symlink(
        "../../../devices/pci0000:00/0000:00:01.0/0000:01:00.0",
        r.join("sys/bus/pci/devices/0000:01:00.0"),
    )
    .expect("link");
    std::fs::create_dir_all(r.join("sys/bus/pci/drivers/nvidia")).expect("drv");
    std::os::unix::fs::symlink("../../../../bus/pci/drivers/nvidia", dev.join("driver"))
        .expect("driver link");

    let text = "[cpus]\nboot = 8\n[memory]\nsize = \"8G\"\nhugepages = true\n[boot]\nfirmware = \"/fw/CLOUDHV.fd\"\n[[disks]]\npath = \"/img/a.img\"\n[[disks]]\npath = \"/img/missing.img\"\n[[vfio]]\naddress = \"0000:01:00.0\"\n[[vfio]]\naddress = \"0000:02:00.0\"\n";
    let spec = load(text, "a").expect("spec");
    let other = load("[memory]\nsize = \"1G\"\n[boot]\nfirmware = \"/f\"\n[[disks]]\npath = \"/img/a.img\"\n[[vfio]]\naddress = \"0000:01:00.0\"\n", "b").expect("other");
    let found: Vec<String> = vm::host_check(&spec, &SysRoot::new(r), &[other])
        .iter()
        .map(|p| format!("{:?} {p}", p.severity))
        .collect();
    // Warnings only: what would hurt the host is `guard`'s (tests/it/refusals.rs).
    let want = [
        "Warning disks[0].format: /img/a.img looks like qcow2 but will be opened as raw; set format = \"qcow2\"",
        "Warning disks[1].path: /img/missing.img does not exist",
        "Warning cpus.boot: 8 vCPUs but this host has 4 CPUs online",
        "Warning memory.hugepages: 0 free hugepages of 2M hold 0",
        "Warning vfio[0].address: 0000:01:00.0 is bound to nvidia, not vfio-pci",
        "Warning vfio[0].address: 0000:01:00.0 is also passed to VM b",
        "Warning vfio[1].address: 0000:02:00.0 is not a PCI device on this host",
    ];
    assert_eq!(found.len(), want.len(), "{found:#?}");
    for (f, w) in found.iter().zip(want) {
        assert!(f.starts_with(w), "{f}\nshould start with\n{w}");
    }
}

#[test]
fn vm_config_validates_against_the_real_spec() {
    let kernel = "[cpus]\nboot = 2\n[memory]\nsize = \"1G\"\n[boot]\nkernel = \"/k\"\ninitramfs = \"/i\"\ncmdline = \"x\"\n";
    let examples = [
        full_spec(),
        load(EXAMPLE_TOML, "desktop").expect("example"),
        load(kernel, "k").expect("kernel"),
    ];
    for spec in &examples {
        let config = to_vm_config(spec, &rt());
        if let Err(e) = openapi::validate("VmConfig", &config) {
            panic!("{}: {e}\n{config:#}", spec.name);
        }
    }
    for serial in ["off", "pty", "file=/var/log/s.log"] {
        for console in ["off", "pty", "file", "file=/c.log"] {
            let text = format!("serial = {serial:?}\nconsole = {console:?}\n{BASE}");
            let config = to_vm_config(&load(&text, "t").expect("spec"), &rt());
            openapi::validate("VmConfig", &config).expect("serial/console modes");
        }
    }
}

#[test]
fn paths_never_add_a_cloud_hypervisor_option() {
    let text = format!("{BASE}[[disks]]\npath = \"/img/a,readonly=off,b.img\"\n");
    let spec = load(&text, "t").expect("a comma is a legal file name");
    let args = to_cli_args(&spec, &rt());
    assert!(
        args.iter()
            .any(|a| a.starts_with("path=\"/img/a,readonly=off,b.img\",")),
        "{args:?}"
    );
    for (field, text) in [
        (
            "disks[0].path",
            format!("{BASE}[[disks]]\npath = \"/img/a\\\"b.img\"\n"),
        ),
        (
            "disks[0].path",
            format!("{BASE}[[disks]]\npath = \"/img/\\u001b[2Jx.img\"\n"),
        ),
        ("net[0]", format!("{BASE}[[net]]\ntap = \"tap0,fd=3\"\n")),
    ] {
        let problems = load(&text, "t").expect_err(&text).to_string();
        assert!(problems.contains(field), "{field}: {problems}");
        assert!(!problems.contains('\u{1b}'), "escaped: {problems:?}");
    }
}
