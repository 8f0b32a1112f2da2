//! macvtap NICs end to end: the real `phyllome` binary starts the VMM test double
//! (`examples/ch_double`) for a VM with a macvtap interface on a fixture host root
//! (`sys/class/net/mv0/ifindex` = 42, a regular file `dev/tap42` standing in for the tap
//! device). phyllome opens the "tap" and passes it with SCM_RIGHTS alongside `vm.add-net`,
//! between `vm.create` and `vm.boot`; the double logs what each descriptor it got points to.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cli::Cli;

/// A host root with the macvtap `mv0` and its tap, VMs on the test double, which logs every
/// request.
struct Env {
    cli: Cli,
    host: PathBuf,
    request_log: PathBuf,
}

impl std::ops::Deref for Env {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

impl Env {
    fn new() -> Self {
        let mut cli = Cli::double();
        let host = cli.path().join("host");
        let net = host.join("sys/class/net/mv0");
        std::fs::create_dir_all(&net).unwrap();
        std::fs::write(net.join("ifindex"), "42\n").unwrap();
        std::fs::create_dir_all(host.join("dev")).unwrap();
        std::fs::write(host.join("dev/tap42"), b"").unwrap();
        let request_log = cli.path().join("requests.jsonl");
        cli.host_root = Some(host.clone());
        cli.set("CH_DOUBLE_REQUEST_LOG", &request_log.to_string_lossy());
        Env {
            cli,
            host,
            request_log,
        }
    }

    fn define(&self, name: &str, iface: &str) {
        let kernel = self.fake_kernel();
        let text = format!(
            "[cpus]\nboot = 2\n\n[memory]\nsize = \"512M\"\n\n[boot]\nkernel = {kernel:?}\n\n\
             [[net]]\nmacvtap = \"{iface}\"\nmac = \"52:54:00:12:34:56\"\nid = \"lan0\"\n"
        );
        self.define_toml(name, &text);
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.request_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

fn alive(pid: u32) -> bool {
    phyllome::vmm::launch::pid_running(pid)
}

/// Live processes whose command line names `marker` (a VM's API socket).
fn processes_naming(marker: &Path) -> Vec<u32> {
    let marker = marker.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if alive(pid) && String::from_utf8_lossy(&cmdline).contains(&marker) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn macvtap_nic_is_added_with_its_tap_descriptor() {
    let env = Env::new();
    env.define("mv", "mv0");
    let out = env.ok(&["vm", "start", "mv"]);
    assert!(out.contains("Started"), "{out}");

    // create, then add-net with the descriptor, then boot.
    let requests = env.requests();
    let routes: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["route"].as_str())
        .filter(|r| r.starts_with("vm.") && *r != "vm.info")
        .collect();
    assert_eq!(
        routes,
        ["vm.create", "vm.add-net", "vm.boot"],
        "{requests:#?}"
    );
    let create = requests.iter().find(|r| r["route"] == "vm.create").unwrap();
    assert!(
        create["body"].get("net").is_none(),
        "macvtap NICs are not in vm.create: {create:#}"
    );
    let add = requests
        .iter()
        .find(|r| r["route"] == "vm.add-net")
        .unwrap();
    assert_eq!(
        add["body"],
        serde_json::json!({"mac": "52:54:00:12:34:56", "id": "lan0"})
    );
    let fds = add["fds"].as_array().expect("descriptors passed");
    assert_eq!(fds.len(), 1, "{add:#}");
    let tap = std::fs::canonicalize(env.host.join("dev/tap42")).unwrap();
    assert_eq!(fds[0], tap.display().to_string());

    // The VM has the NIC.
    let info: Value = serde_json::from_str(&env.ok(&["vm", "info", "mv", "--json"])).unwrap();
    assert_eq!(info["state"], "Running");
    let nets = info["info"]["config"]["net"]
        .as_array()
        .expect("net in vm.info");
    assert_eq!(nets.len(), 1, "{info:#}");
    assert_eq!(nets[0]["mac"], "52:54:00:12:34:56");
    assert_eq!(nets[0]["id"], "lan0");
    assert!(nets[0].get("tap").is_none());
    assert!(info["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d == "net:mv0"));

    let pid = env.pid("mv").expect("pidfile");
    env.ok(&["vm", "stop", "mv", "--force", "--yes"]);
    let start = Instant::now();
    while alive(pid) && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid));
}

#[test]
fn a_missing_macvtap_interface_is_refused_before_anything_runs() {
    let env = Env::new();
    env.define("gone", "mv9");
    let out = env.run(&["vm", "start", "gone"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started anyway: {stderr}");
    assert!(stderr.contains("mv9"), "names the interface: {stderr}");
    assert!(
        stderr.contains("net[0].macvtap"),
        "names the field: {stderr}"
    );
    assert!(
        stderr.contains("ip link add") && stderr.contains("type macvtap"),
        "says how to fix it: {stderr}"
    );
    // Nothing was launched: no VMM, no request, no runtime directory left.
    assert!(env.requests().is_empty(), "{:#?}", env.requests());
    assert!(processes_naming(&env.vm_dir("gone").join("api.sock")).is_empty());
    assert!(!env.vm_dir("gone").join("vmm.pid").exists());
    let list: Value = serde_json::from_str(&env.ok(&["vm", "list", "--json"])).unwrap();
    let row = list["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "gone")
        .cloned()
        .unwrap();
    assert_eq!(row["state"], "Stopped", "{row:#}");
}

#[test]
fn a_vmm_that_refuses_the_nic_fails_the_start_and_is_stopped() {
    // A tap device that is there but gives the VMM nothing to use: the double is told to
    // refuse add-net, as CH does when the descriptor is not a tap.
    let env = Env::new();
    env.define("bad", "mv0");
    let out = env
        .cmd(&["vm", "start", "bad"])
        .env("CH_DOUBLE_FAIL", "vm.add-net")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("vm.add-net") && stderr.contains("Injected failure"),
        "{stderr}"
    );
    assert!(processes_naming(&env.vm_dir("bad").join("api.sock")).is_empty());
    assert!(!env.requests().iter().any(|r| r["route"] == "vm.boot"));
}
