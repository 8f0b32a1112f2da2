//! Pinning and NUMA placement on the real Cloud Hypervisor: a VM with `pin = "1,0"` and
//! `host_numa_node = 0` runs each vCPU thread on its own host CPU (the kernel's
//! `Cpus_allowed_list` of the thread CH names `vcpuN`), `top --batch` reports where each vCPU
//! last ran, and the export carries the affinity and the zone back through import.
//!
//! Needs two host CPUs (CPU 1 must exist); skips like the other real-VMM tests otherwise.

use crate::support::vmm::backend as ch_backend;

use serde_json::Value;

use crate::support::vmm::real_vms::RealVms as Env;

/// The vCPU threads of `pid` by index: (comm, Cpus_allowed_list).
fn vcpu_threads(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let comm = comm.trim().to_string();
        if !comm.starts_with("vcpu") {
            continue;
        }
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("")
            .trim()
            .to_string();
        out.push((comm, allowed));
    }
    out.sort();
    out
}

fn online_cpus() -> Vec<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    text.trim()
        .parse::<phyllome::vm::spec::CpuList>()
        .map(|l| l.0)
        .unwrap_or_default()
}

#[test]
fn pinned_vcpus_run_on_their_host_cpus() {
    let Some(ch) = ch_backend::real_or_skip("pinned_vcpus_run_on_their_host_cpus") else {
        return;
    };
    let cpus = online_cpus();
    if !cpus.contains(&1) || !cpus.contains(&0) {
        eprintln!("SKIPPED: pinned_vcpus_run_on_their_host_cpus: needs host CPUs 0 and 1");
        return;
    }
    let env = Env::new(ch);
    let disk = env.path().join("p.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let text = format!(
        "[cpus]\nboot = 2\npin = \"1,0\"\n\n[memory]\nsize = \"128M\"\nhost_numa_node = 0\n\n\
         [boot]\nkernel = {:?}\ncmdline = \"console=ttyS0 panic=0\"\n\n[[disks]]\npath = {disk:?}\n",
        env.ch.kernel
    );
    env.define_toml("p", &text);
    env.ok(&["vm", "start", "p"]);
    let pid = env.pid("p").expect("pidfile");
    // And one left to the scheduler: its vCPU runs wherever the kernel puts it.
    env.define("u", "");
    env.ok(&["vm", "start", "u"]);

    // vCPU i on the i-th CPU of the list, one CPU each.
    let threads = vcpu_threads(pid);
    assert_eq!(
        threads,
        [
            ("vcpu0".to_string(), "1".to_string()),
            ("vcpu1".to_string(), "0".to_string())
        ],
        "vCPU threads of {pid}"
    );
    let info = env.info("p");
    assert_eq!(info["state"], "Running", "{info:#}");
    let mem = &info["info"]["config"]["memory"];
    assert_eq!(mem["size"], 0, "{mem}");
    assert_eq!(mem["zones"][0]["host_numa_node"], 0, "{mem}");
    assert_eq!(mem["zones"][0]["size"], 128u64 << 20, "{mem}");

    // Where each vCPU last ran: a pinned thread can only have run on its CPU.
    let out = env.ok(&["top", "--batch", "--iterations", "1", "--json"]);
    let sample: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let vm = sample["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "p")
        .cloned()
        .unwrap_or_else(|| panic!("p missing: {sample:#}"));
    assert_eq!(vm["vcpu_host_cpus"], serde_json::json!([1, 0]), "{vm:#}");
    assert_eq!(
        vm["memory_guest_bytes"],
        128u64 << 20,
        "zones count: {vm:#}"
    );
    let u = sample["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "u")
        .cloned()
        .unwrap_or_else(|| panic!("u missing: {sample:#}"));
    let on = u["vcpu_host_cpus"].as_array().expect("one entry per vCPU");
    assert_eq!(on.len(), 1, "{u:#}");
    let cpu = on[0].as_u64().expect("a CPU number") as u32;
    assert!(
        cpus.contains(&cpu),
        "vcpu0 of u on {cpu}, not an online CPU {cpus:?}"
    );
    let text = env.ok(&["top", "--batch", "--iterations", "1"]);
    let row = text
        .lines()
        .find(|l| l.starts_with("p "))
        .unwrap_or_else(|| panic!("no row for p:\n{text}"));
    assert!(row.ends_with(" 1,0"), "VCPU_ON column: {row:?}");

    // The export is what CH runs, and it comes back whole.
    let exported = env.json(&["vm", "export", "p"]);
    assert_eq!(
        exported["cpus"]["affinity"],
        serde_json::json!([{"vcpu": 0, "host_cpus": [1]}, {"vcpu": 1, "host_cpus": [0]}])
    );
    // Without the disk, which VM p writes (a second writer is refused).
    let mut copy = exported.clone();
    copy.as_object_mut().unwrap().remove("disks");
    let file = env.path().join("p.json");
    std::fs::write(&file, copy.to_string()).unwrap();
    env.ok(&["vm", "import", file.to_str().unwrap(), "--name", "q"]);
    let q = std::fs::read_to_string(env.state.join("vms/q.toml")).unwrap();
    assert!(q.contains("pin = \"1,0\""), "{q}");
    assert!(q.contains("host_numa_node = 0"), "{q}");
    let cli = env.ok(&["vm", "export", "p", "--format", "cli"]);
    assert!(
        cli.contains("affinity=[0@[1],1@[0]]") && cli.contains("--memory-zone"),
        "{cli}"
    );

    env.ok(&["vm", "stop", "p", "--force", "--yes"]);
    env.ok(&["vm", "stop", "u", "--force", "--yes"]);
    assert!(env.vmm_pids().is_empty(), "VMMs left");
}

/// The `--format cli` export runs as it is: the real binary takes the affinity and the zone
/// from its command line and pins the same way.
#[test]
fn the_exported_command_line_pins_too() {
    let Some(ch) = ch_backend::real_or_skip("the_exported_command_line_pins_too") else {
        return;
    };
    if !online_cpus().contains(&1) {
        eprintln!("SKIPPED: the_exported_command_line_pins_too: needs host CPU 1");
        return;
    }
    let env = Env::new(ch.clone());
    let text = format!(
        "serial = \"off\"\n[cpus]\nboot = 1\npin = \"1\"\n[memory]\nsize = \"128M\"\nhost_numa_node = 0\n\
         [boot]\nkernel = {:?}\n",
        ch.kernel
    );
    env.define_toml("c", &text);
    let cmd = env.ok(&["vm", "export", "c", "--format", "cli"]);
    let api = env.path().join("api.sock");
    // `cloud-hypervisor ARGS...` on one line, as a shell would run it.
    let line = cmd.trim().replacen(
        "cloud-hypervisor",
        &format!("exec {:?} --api-socket path={}", ch.bin, api.display()),
        1,
    );
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg(&line)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let threads = loop {
        let t = vcpu_threads(pid);
        if !t.is_empty() || std::time::Instant::now() > deadline {
            break t;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("{line}\nexited {status}: {err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _guard = Kill(child);
    assert_eq!(threads, [("vcpu0".to_string(), "1".to_string())], "{line}");
}
