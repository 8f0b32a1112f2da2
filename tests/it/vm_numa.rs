//! CPU pinning and host NUMA placement: `cpus.pin` and `memory.host_numa_node` read, checked
//! (on their own and against a fixture host with two nodes), turned into Cloud Hypervisor's
//! `cpus.affinity` and memory zone (JSON and command line) and imported back, and the host
//! check that warns when a GPU guest runs away from its GPU's node.

use crate::support::cli::Cli;
use crate::support::snap;
use crate::support::vmm::openapi;

use phyllome::fixture::presets;
use phyllome::vm::{self, load, to_cli_args, to_vm_config, RuntimePaths};
use serde_json::json;

fn rt() -> RuntimePaths {
    RuntimePaths::in_dir(std::path::Path::new("/run/phyllome/vms/t"))
}

fn def(cpus: &str, memory: &str) -> String {
    format!("[cpus]\n{cpus}\n[memory]\nsize = \"2G\"\n{memory}\n[boot]\nfirmware = \"/fw\"\n")
}

fn errors(text: &str) -> Vec<String> {
    match load(text, "t") {
        Ok(_) => Vec::new(),
        Err(p) => p.0.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn pin_lists_and_nodes_are_checked_by_field() {
    let cases = [
        (
            def("boot = 2\npin = \"2-x\"", ""),
            "cpus.pin: \"2-x\" is not a CPU list; write e.g. 2-7",
        ),
        (
            def("boot = 2\npin = \"5-3\"", ""),
            "cpus.pin: \"5-3\" is not a CPU list",
        ),
        (
            def("boot = 2\npin = 3", ""),
            "cpus.pin: expected a string, found the number 3",
        ),
        (
            def("boot = 4\npin = \"2-3\"", ""),
            "cpus.pin: 2 host CPUs for 4 vCPUs (cpus.boot); give exactly one per vCPU",
        ),
        (
            def("boot = 2\nmax = 4\npin = \"2-3\"", ""),
            "cpus.pin: 2 host CPUs for 4 vCPUs (cpus.max)",
        ),
        (
            def("boot = 2\npin = \"1-3\"", ""),
            "cpus.pin: 3 host CPUs for 2 vCPUs (cpus.boot)",
        ),
        (
            def("boot = 3\npin = \"1,2,1\"", ""),
            "cpus.pin: CPU 1 is listed twice",
        ),
        (
            def("boot = 1", "host_numa_node = -1"),
            "memory.host_numa_node: -1 is out of range; write 0 to 1023",
        ),
        (
            def("boot = 1", "host_numa_node = \"1\""),
            "memory.host_numa_node: expected a whole number, found the string \"1\"",
        ),
    ];
    for (text, want) in cases {
        let got = errors(&text);
        assert!(
            got.iter().any(|e| e.starts_with(want)),
            "{text}\nwanted {want}\ngot {got:#?}"
        );
    }
    let ok = load(
        &def("boot = 4\npin = \"3,0-1,7\"", "host_numa_node = 1"),
        "t",
    )
    .unwrap();
    assert_eq!(ok.cpus.pin.as_ref().unwrap().0, [3, 0, 1, 7]);
    assert_eq!(ok.memory.host_numa_node, Some(1));
}

#[test]
fn pinning_and_the_node_become_affinity_and_one_memory_zone() {
    let text = def(
        "boot = 2\nmax = 3\npin = \"4-5,9\"",
        "hugepages = true\nhugepage_size = \"2M\"\nshared = true\nhost_numa_node = 1",
    );
    let spec = load(&text, "t").unwrap();
    let v = to_vm_config(&spec, &rt());
    assert_eq!(
        v["cpus"]["affinity"],
        json!([
            {"vcpu": 0, "host_cpus": [4]},
            {"vcpu": 1, "host_cpus": [5]},
            {"vcpu": 2, "host_cpus": [9]},
        ])
    );
    // CH takes size 0 beside zones, and the zone's own flags (measured: a top-level
    // hugepages = true with zones leaves the zone on normal pages).
    assert_eq!(
        v["memory"],
        json!({"size": 0, "zones": [{
            "id": "mem0", "size": 2u64 << 30, "hugepages": true, "hugepage_size": 2u64 << 20,
            "shared": true, "host_numa_node": 1
        }]})
    );
    openapi::validate("VmConfig", &v).expect("the real API spec takes it");
    let args = to_cli_args(&spec, &rt());
    let pair = |flag: &str| {
        let i = args.iter().position(|a| a == flag).expect(flag);
        args[i + 1].clone()
    };
    assert_eq!(pair("--cpus"), "boot=2,max=3,affinity=[0@[4],1@[5],2@[9]]");
    assert_eq!(pair("--memory"), "size=0");
    assert_eq!(
        pair("--memory-zone"),
        "id=mem0,size=2G,hugepages=on,hugepage_size=2M,shared=on,host_numa_node=1"
    );
    // And back, from JSON and from TOML.
    let back = vm::from_vm_config(&v, "t").expect("import");
    assert_eq!(back.spec.cpus, spec.cpus);
    assert_eq!(back.spec.memory, spec.memory);
    let toml = vm::doc::to_document(&spec).to_string();
    assert!(toml.contains("pin = \"4,5,9\""), "{toml}");
    assert_eq!(load(&toml, "t").unwrap(), spec);
}

#[test]
fn import_refuses_affinity_and_zones_it_cannot_carry_by_name() {
    let base = json!({
        "cpus": {"boot_vcpus": 2, "max_vcpus": 2},
        "memory": {"size": 2u64 << 30},
        "payload": {"firmware": "/fw"},
    });
    let refused = |patch: &dyn Fn(&mut serde_json::Value), want: &str| {
        let mut c = base.clone();
        patch(&mut c);
        let e = vm::from_vm_config(&c, "t").unwrap_err().to_string();
        assert!(e.contains(want), "wanted {want}\ngot {e}");
    };
    refused(
        &|c| c["cpus"]["affinity"] = json!([{"vcpu": 0, "host_cpus": [0, 1]}]),
        "cpus.affinity: vCPU 0 may run on several host CPUs",
    );
    refused(
        &|c| c["cpus"]["affinity"] = json!([{"vcpu": 1, "host_cpus": [0]}]),
        "cpus.affinity: not one entry per vCPU in order",
    );
    refused(
        &|c| {
            c["memory"] = json!({"size": 0, "zones": [
                {"id": "a", "size": 1u64 << 30, "host_numa_node": 0},
                {"id": "b", "size": 1u64 << 30, "host_numa_node": 1},
            ]})
        },
        "memory.zones: phyllome carries one memory zone",
    );
    refused(
        &|c| {
            c["memory"] = json!({"size": 0, "zones": [
                {"id": "a", "size": 1u64 << 30, "file": "/dev/shm/x"},
            ]})
        },
        "memory.zones[0].file: \"/dev/shm/x\" is not supported",
    );
    refused(
        &|c| {
            c["memory"] = json!({"size": 0, "hugepages": true, "zones": [
                {"id": "a", "size": 1u64 << 30, "host_numa_node": 0},
            ]})
        },
        "memory.hugepages: true beside memory zones",
    );
    // What `vm.info` reports for a pinned VM on node 0 (recorded from v54) comes in whole.
    let mut info = base.clone();
    info["cpus"]["affinity"] =
        json!([{"vcpu": 0, "host_cpus": [1]}, {"vcpu": 1, "host_cpus": [0]}]);
    info["memory"] = json!({"size": 0, "mergeable": false, "hotplug_method": "Acpi",
        "shared": false, "hugepages": false, "prefault": false, "reserve": false, "thp": true,
        "zones": [{"id": "mem0", "size": 134217728, "shared": false, "hugepages": false,
            "host_numa_node": 0, "prefault": false, "reserve": false, "mergeable": false}]});
    let got = vm::from_vm_config(&info, "t").expect("import").spec;
    assert_eq!(got.cpus.pin.unwrap().to_string(), "1,0");
    assert_eq!(got.memory.host_numa_node, Some(0));
    assert_eq!(got.memory.size.0, 134217728);
}

/// A CLI on the two-node fixture host (CPUs 0-7 on node 0, 8-15 and the GPU on node 1).
fn two_nodes() -> Cli {
    Cli::new().host(presets::two_nodes())
}

fn gpu_vm(cpus: &str, memory: &str) -> String {
    format!("[cpus]\n{cpus}\n[memory]\nsize = \"2G\"\n{memory}\n[boot]\nfirmware = \"/fw\"\n[[vfio]]\naddress = \"0000:81:00.0\"\n")
}

#[test]
fn cpus_and_nodes_the_host_lacks_are_refused() {
    let cli = two_nodes();
    let file = cli.path().join("vm.toml");
    std::fs::write(
        &file,
        gpu_vm("boot = 2\npin = \"15-16\"", "host_numa_node = 2"),
    )
    .unwrap();
    let out = cli.run(&["vm", "define", "big", "--from", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cpus.pin: this host has no CPU 16 (its CPUs: 0-15); pin to those"),
        "{err}"
    );
    assert!(
        err.contains("memory.host_numa_node: this host has no NUMA node 2 (its nodes: 0, 1)"),
        "{err}"
    );
    // --force lifts neither: Cloud Hypervisor's boot would hang on the first, fail on the second.
    let forced = cli.run(&[
        "vm",
        "define",
        "big",
        "--from",
        file.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(forced.status.code(), Some(4));
    std::fs::write(
        &file,
        gpu_vm("boot = 2\npin = \"8-9\"", "host_numa_node = 1"),
    )
    .unwrap();
    cli.ok(&["vm", "define", "big", "--from", file.to_str().unwrap()]);
}

#[test]
fn the_host_check_warns_when_a_gpu_guest_runs_off_its_gpus_node() {
    let cli = two_nodes();
    cli.define_toml("floating", &gpu_vm("boot = 4", ""));
    cli.define_toml(
        "away",
        &gpu_vm("boot = 2\npin = \"2,9\"", "host_numa_node = 0"),
    );
    cli.define_toml(
        "local",
        &gpu_vm("boot = 2\npin = \"8-9\"", "host_numa_node = 1"),
    );
    // CPUs on the GPU's node, memory left wherever the VMM's threads fault it in.
    cli.define_toml("cpus_only", &gpu_vm("boot = 2\npin = \"8-9\"", ""));
    // No VFIO device: nothing to be near.
    cli.define_toml("plain", &def("boot = 2", ""));
    let host = cli.json(&["host", "--json"]);
    let numa: Vec<&serde_json::Value> = host["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "vm_numa")
        .collect();
    assert_eq!(numa.len(), 4, "{numa:#?}");
    let by = |vm: &str| {
        numa.iter()
            .find(|c| c["title"] == format!("NUMA placement of VM {vm}"))
            .unwrap_or_else(|| panic!("no check for {vm}: {numa:#?}"))
    };
    assert_eq!(by("away")["status"], "warn");
    assert_eq!(
        by("away")["detail"],
        "vCPUs pinned to CPU 2, off node 1 where 0000:81:00.0 is; its memory is on node 0, 0000:81:00.0 on node 1"
    );
    assert_eq!(
        by("away")["fix"],
        "in VM away, set [cpus] pin = \"8,9\" and [memory] host_numa_node = 1"
    );
    assert_eq!(by("floating")["status"], "warn");
    assert_eq!(
        by("floating")["fix"],
        "in VM floating, set [cpus] pin = \"8-11\" and [memory] host_numa_node = 1"
    );
    assert_eq!(by("local")["status"], "pass");
    assert_eq!(by("cpus_only")["status"], "warn");
    assert_eq!(
        by("cpus_only")["detail"],
        "its memory is not placed on node 1 where 0000:81:00.0 is"
    );
    let text = cli.ok(&["host"]);
    let checks: String = text
        .lines()
        .skip_while(|l| *l != "Checks")
        .take_while(|l| !l.starts_with("IOMMU groups"))
        .filter(|l| l.contains("NUMA") || l.contains("fix: in VM"))
        .map(|l| format!("{l}\n"))
        .collect();
    snap("host_numa_checks", checks);
}

#[test]
fn one_node_or_no_numa_gives_no_check() {
    // The desktop preset has no node directory and its devices say -1.
    let cli = Cli::new().host(presets::desktop());
    cli.define_toml("gpu", "[memory]\nsize = \"2G\"\n[boot]\nfirmware = \"/fw\"\n[[vfio]]\naddress = \"0000:0b:00.0\"\n");
    let host = cli.json(&["host", "--json"]);
    assert!(
        !host["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "vm_numa"),
        "{:#?}",
        host["checks"]
    );
    // A node directory with one node: nothing to be away from.
    let mut one = presets::two_nodes();
    one.numa_nodes.truncate(1);
    let cli = Cli::new().host(one);
    cli.define_toml("gpu", &gpu_vm("boot = 2", ""));
    let host = cli.json(&["host", "--json"]);
    assert!(!host["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == "vm_numa"));
}

#[test]
fn vm_define_takes_pin_and_numa_node_flags() {
    let cli = two_nodes();
    let fw = cli.fake_kernel();
    let fw = fw.to_str().unwrap();
    cli.ok(&[
        "vm",
        "define",
        "w",
        "--vcpus",
        "2",
        "--memory",
        "2G",
        "--firmware",
        fw,
        "--pin",
        "9,8",
        "--numa-node",
        "1",
        "--vfio",
        "0000:81:00.0",
    ]);
    let text = std::fs::read_to_string(cli.state.join("vms/w.toml")).unwrap();
    assert!(text.contains("pin = \"9,8\""), "{text}");
    assert!(text.contains("host_numa_node = 1"), "{text}");
    let info = cli.ok(&["vm", "info", "w"]);
    assert!(
        info.contains("placement: vCPUs pinned to host CPUs 9,8, memory on host node 1"),
        "{info}"
    );
    let info = cli.info("w");
    assert_eq!(info["definition"]["cpus"]["pin"], "9,8", "{info:#}");
    assert_eq!(
        info["definition"]["memory"]["host_numa_node"], 1,
        "{info:#}"
    );
    let host = cli.json(&["host", "--json"]);
    let check = host["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "vm_numa")
        .cloned()
        .unwrap();
    assert_eq!(check["status"], "pass", "{check}");
    // A list that is not one is a usage error (exit 2) naming the flag.
    let out = cli.run(&["vm", "define", "x", "--firmware", fw, "--pin", "2-x"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--pin") && err.contains("\"2-x\" is not a CPU list"),
        "{err}"
    );
    // Too few for the vCPUs: the definition's own rule, by field.
    let out = cli.run(&[
        "vm",
        "define",
        "x",
        "--firmware",
        fw,
        "--vcpus",
        "4",
        "--pin",
        "8-9",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cpus.pin: 2 host CPUs for 4 vCPUs"), "{err}");
}

#[test]
fn a_start_pinned_to_a_cpu_the_host_lacks_is_refused_before_the_vmm() {
    // Written by hand (or copied from a bigger machine): saving would have refused it.
    let cli = Cli::double().host(presets::two_nodes());
    let kernel = cli.fake_kernel();
    cli.define_toml(
        "far",
        &format!("[cpus]\nboot = 1\npin = \"40\"\n[memory]\nsize = \"128M\"\n[boot]\nkernel = {kernel:?}\n"),
    );
    let err = cli.fails(&["vm", "start", "far"]);
    assert!(
        err.contains("cpus.pin: this host has no CPU 40 (its CPUs: 0-15)"),
        "{err}"
    );
    assert!(cli.vmm_pids().is_empty(), "no VMM was started");
    assert_eq!(cli.state("far"), "Stopped");
}
