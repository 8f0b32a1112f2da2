//! Running VMs end to end: the real `phyllome` binary drives the Cloud Hypervisor test double
//! (`examples/ch_double`, built by `cargo test`; a filtered run needs
//! `cargo build --example ch_double` first). The same CLI against the real Cloud Hypervisor is
//! in `real_vmm.rs`. Every test kills whatever VMM it left behind, by pidfile and by command
//! line.

use crate::support::vmm::backend as ch_backend;
use crate::support::vmm::double as vmm_double;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::cli::Cli;

/// VMs on the test double (or the real VMM), with their payload kernel.
struct Env {
    cli: Cli,
    kernel: PathBuf,
}

impl std::ops::Deref for Env {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

impl std::ops::DerefMut for Env {
    fn deref_mut(&mut self) -> &mut Cli {
        &mut self.cli
    }
}

impl Env {
    fn new() -> Self {
        Self::with_bin(vmm_double::ch_double_path())
    }

    fn with_bin(ch_bin: PathBuf) -> Self {
        let cli = Cli::new().ch_bin(ch_bin);
        Env {
            kernel: cli.fake_kernel(),
            cli,
        }
    }

    fn define(&self, name: &str, extra: &str) {
        let payload = format!("kernel = {:?}\ncmdline = \"console=ttyS0\"", self.kernel);
        self.define_with(name, &payload, extra)
    }

    fn define_with(&self, name: &str, boot: &str, extra: &str) {
        let text =
            format!("{extra}\n[cpus]\nboot = 2\n\n[memory]\nsize = \"512M\"\n\n[boot]\n{boot}\n");
        self.define_toml(name, &text);
    }

    /// Live (non-zombie) processes whose command line names this VM's API socket.
    fn vmm_processes(&self, name: &str) -> Vec<u32> {
        let marker = self.vm_dir(name).join("api.sock");
        let marker = marker.to_string_lossy().into_owned();
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if !alive(pid) {
                continue;
            }
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&marker) && !cmdline.contains("phyllome ") {
                pids.push(pid);
            }
        }
        pids
    }

    /// SIGSTOPs a VMM of this environment; the guard continues and kills it however the test
    /// ends.
    fn freeze(&self, pid: u32) -> Frozen {
        let frozen = Frozen {
            pid,
            vms: self.run.join("vms"),
        };
        phyllome::vmm::launch::signal(pid, rustix::process::Signal::STOP);
        let start = Instant::now();
        while !phyllome::vmm::launch::pid_stopped(pid) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{pid} not stopped"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        frozen
    }

    /// Overwrites a VM's pidfile with something that is no pid.
    fn garble_pidfile(&self, name: &str) {
        std::fs::write(self.vm_dir(name).join("vmm.pid"), "garbage\n").unwrap();
        assert_eq!(self.pid(name), None);
    }

    fn wait_state(&self, name: &str, want: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.list_state(name).unwrap_or_default();
            if s == want || start.elapsed() > limit {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A SIGSTOPped VMM: continued and killed on drop, even when an assertion failed first.
struct Frozen {
    pid: u32,
    vms: PathBuf,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // Only while it is still the VMM: a pid gone since may be someone else's now.
        if vmm_double::processes_naming(&self.vms).contains(&self.pid) {
            phyllome::vmm::launch::signal(self.pid, rustix::process::Signal::CONT);
            kill(self.pid);
        }
    }
}

fn kill(pid: u32) {
    phyllome::vmm::launch::signal(pid, rustix::process::Signal::KILL);
}

fn alive(pid: u32) -> bool {
    phyllome::vmm::launch::pid_running(pid)
}

fn lifecycle(env: &Env, name: &str) {
    let out = env.ok(&["vm", "start", name]);
    assert!(out.contains("Started"), "{out}");
    let info = env.info(name);
    assert_eq!(info["state"], "Running", "{info:#}");
    assert!(
        info["info"]["config"].is_object(),
        "vm.info config: {info:#}"
    );
    let pid = env.pid(name).expect("pidfile");
    assert!(alive(pid));
    assert!(env.vm_dir(name).join("events.json").exists());

    env.ok(&["vm", "pause", name]);
    assert_eq!(env.state(name), "Paused");
    env.ok(&["vm", "resume", name]);
    assert_eq!(env.state(name), "Running");

    // Graceful: the power button; the double's guest powers off, the real one (nested KVM)
    // ignores it and is forced off when the grace period ends. Either way the VMM goes away.
    env.ok(&["vm", "stop", name, "--timeout", "3"]);
    assert_eq!(env.state(name), "Stopped");
    assert!(
        crate::support::wait_gone(pid, Duration::from_secs(5)),
        "VMM {pid} still runs"
    );
    assert!(!env.vm_dir(name).exists(), "runtime dir left behind");

    env.ok(&["vm", "delete", name, "--yes"]);
    assert!(env.list_state(name).is_none());
}

#[test]
fn start_pause_resume_stop_delete() {
    let env = Env::new();
    env.define("t1", "");
    lifecycle(&env, "t1");
}

/// The same lifecycle on the real Cloud Hypervisor, booting Debian's kernel.
#[test]
fn start_pause_resume_stop_delete_on_the_real_vmm() {
    let Some(ch) = ch_backend::real_or_skip("start_pause_resume_stop_delete_on_the_real_vmm")
    else {
        return;
    };
    // Its guest spins: no CPU figure of another test is measured meanwhile.
    let _cpu = crate::support::cpu_busy();
    let mut env = Env::with_bin(ch.bin);
    env.kernel = ch.kernel;
    env.define("t1", "");
    lifecycle(&env, "t1");
}

/// Routes the double was asked, in order (`vm.power-button`, `vm.shutdown`, ...).
fn routes(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["route"].as_str().map(str::to_string))
        .collect()
}

/// Stops `name` (extra arguments after it) and says how long it took and what it printed.
fn timed_stop(env: &Env, name: &str, extra: &[&str]) -> (Duration, String) {
    let mut args = vec!["vm", "stop", name];
    args.extend_from_slice(extra);
    let start = Instant::now();
    let out = env.run(&args);
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args:?}:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("Stopped {name}")), "{stdout}");
    eprintln!("phyllome {args:?} took {took:?}");
    (took, stderr)
}

#[test]
fn a_guest_ignoring_the_power_button_gets_its_stop_timeout_then_vm_shutdown() {
    let mut env = Env::new();
    let log = env.run.with_file_name("requests.jsonl");
    // The guest would take 100 s to act on the power button.
    env.set("CH_DOUBLE_POWEROFF_MS", "100000");
    env.set("CH_DOUBLE_REQUEST_LOG", &log.to_string_lossy());
    env.define("slow", "stop_timeout = \"1s\"");
    env.ok(&["vm", "start", "slow"]);
    let pid = env.pid("slow").expect("pidfile");

    let (took, stderr) = timed_stop(&env, "slow", &[]);
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(
        stderr.contains("slow did not power off within 1 s") && stderr.contains("vm.shutdown"),
        "{stderr}"
    );
    let asked = routes(&log);
    let button = asked.iter().position(|r| r.ends_with("vm.power-button"));
    let shutdown = asked.iter().rposition(|r| r.ends_with("vm.shutdown"));
    assert!(
        matches!((button, shutdown), (Some(b), Some(s)) if b < s),
        "the power button, then vm.shutdown: {asked:#?}"
    );
    assert_eq!(env.state("slow"), "Stopped");
    assert!(
        crate::support::wait_gone(pid, Duration::from_secs(5)),
        "VMM {pid} still runs"
    );
}

#[test]
fn timeout_on_the_command_line_overrides_the_definition() {
    let mut env = Env::new();
    env.set("CH_DOUBLE_POWEROFF_MS", "100000");
    // An hour in the definition: only --timeout can make this quick.
    env.define("patient", "stop_timeout = \"1h\"");
    env.ok(&["vm", "start", "patient"]);
    let (took, stderr) = timed_stop(&env, "patient", &["--timeout", "1"]);
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(stderr.contains("within 1 s"), "{stderr}");
    assert_eq!(env.state("patient"), "Stopped");

    // A guest that powers off in time: no fallback, no warning.
    let mut env = Env::new();
    env.set("CH_DOUBLE_POWEROFF_MS", "200");
    env.define("quick", "stop_timeout = \"1h\"");
    env.ok(&["vm", "start", "quick"]);
    let (took, stderr) = timed_stop(&env, "quick", &[]);
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert!(!stderr.contains("vm.shutdown"), "{stderr}");

    // 0 would be a force off without --force's question.
    let out = env.run(&["vm", "stop", "quick", "--timeout", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("use --force"), "{stderr}");
}

/// The console's X during a countdown: the worker ends the graceful stop's wait instead of
/// queueing a second stop behind its lock, and that stop reports being cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_during_a_graceful_stop_cuts_its_grace_period_short() {
    use phyllome::vmm::manager::{ManagerConfig, StopMode, StopOutcome, VmManager};
    use phyllome::vmm::runtime::RunRoot;
    use phyllome::vmm::worker::{self, VmRequest, VmUpdate};

    let mut env = Env::new();
    env.set("CH_DOUBLE_POWEROFF_MS", "100000");
    env.define("win", "stop_timeout = \"1h\"");
    env.ok(&["vm", "start", "win"]);
    // The same supervisor as the CLI above; every test of this file uses it. The manager
    // runs in this process and reads it from here, until the test ends.
    let mut process_env = crate::support::EnvLock::take();
    process_env.set("PHYLLOME_SUPERVISOR", "process");
    let root = RunRoot::resolve(Some(&env.run)).unwrap();
    let cfg = ManagerConfig::new(Some(env.state.clone()), root, env.ch_bin.clone());
    let (tx, mut rx) = worker::spawn(
        std::sync::Arc::new(VmManager::new(cfg)),
        Duration::from_millis(100),
    );
    let start = Instant::now();
    let stop = |mode| VmRequest::Stop {
        name: "win".into(),
        mode,
    };
    tx.send(stop(StopMode::Graceful {
        timeout: Duration::from_secs(3600),
    }))
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.send(stop(StopMode::Force)).unwrap();
    let mut done = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    // Every Done within a moment after the first: there must be exactly one.
    while let Ok(Some(update)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if let VmUpdate::Done { action, result, .. } = update {
            done.push((action, result));
            if done.len() == 1 {
                eprintln!("forced after {:?}", start.elapsed());
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Some(u) = rx.recv().await {
                        if let VmUpdate::Done { action, result, .. } = u {
                            done.push((action, result));
                        }
                    }
                })
                .await;
                break;
            }
        }
    }
    assert!(start.elapsed() < Duration::from_secs(10), "{done:?}");
    assert_eq!(done, vec![("stop", Ok(Some(StopOutcome::CutShort)))]);
    assert_eq!(env.state("win"), "Stopped");
}

#[test]
fn list_shows_definitions_states_and_invalid_files() {
    let env = Env::new();
    env.define("good", "autostart = true");
    std::fs::write(env.state.join("vms/bad.toml"), "[memory]\nsize = \"2X\"\n").unwrap();
    let rows = env.list();
    let good = rows.iter().find(|r| r["name"] == "good").unwrap();
    assert_eq!(good["state"], "Stopped");
    assert_eq!(good["vcpus"], 2);
    assert_eq!(good["memory_bytes"], 512u64 << 20);
    let bad = rows.iter().find(|r| r["name"] == "bad").unwrap();
    assert!(
        bad["error"].as_str().unwrap().contains("memory.size"),
        "{bad}"
    );
    let table = env.ok(&["vm", "list"]);
    assert!(
        table.contains("good") && table.contains("Stopped"),
        "{table}"
    );
    assert!(
        table.contains("bad") && table.contains("memory.size"),
        "{table}"
    );
}

#[test]
fn vms_outlive_a_killed_cli_and_are_found_again() {
    let mut env = Env::new();
    env.define("a", "");
    env.define("b", "");
    env.ok(&["vm", "start", "a"]);
    let pid_a = env.pid("a").unwrap();

    // Kill a CLI in the middle of starting b (vm.boot takes a while): SIGKILL, no cleanup.
    env.set("CH_DOUBLE_BOOT_MS", "1500");
    let mut cli = env.cmd(&["vm", "start", "b"]).spawn().unwrap();
    let start = Instant::now();
    while env.pid("b").is_none() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    cli.kill().unwrap();
    let _ = cli.wait();
    let pid_b = env.pid("b").expect("b's VMM was launched");

    assert!(alive(pid_a) && alive(pid_b));
    assert_eq!(
        env.wait_state("a", "Running", Duration::from_secs(5)),
        "Running"
    );
    assert_eq!(
        env.wait_state("b", "Running", Duration::from_secs(10)),
        "Running"
    );
    env.ok(&["vm", "stop", "a", "--force", "--yes"]);
    env.ok(&["vm", "stop", "b", "--force", "--yes"]);
    assert!(crate::support::wait_gone(pid_a, Duration::from_secs(5)));
    assert!(crate::support::wait_gone(pid_b, Duration::from_secs(5)));
}

#[test]
fn two_concurrent_starts_make_one_vmm() {
    let mut env = Env::new();
    env.set("CH_DOUBLE_BOOT_MS", "300");
    env.define("t1", "");
    let children: Vec<_> = (0..2)
        .map(|_| env.cmd(&["vm", "start", "t1"]).spawn().unwrap())
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let ok = outs.iter().filter(|o| o.status.success()).count();
    let refused: Vec<String> = outs
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert_eq!(ok, 1, "exactly one start succeeds: {refused:?}");
    assert!(refused[0].contains("already running"), "{refused:?}");
    assert_eq!(env.vmm_processes("t1").len(), 1);
    assert_eq!(env.state("t1"), "Running");
}

#[test]
fn hung_vmm_socket_gives_a_timeout_not_a_hang() {
    let mut env = Env::new();
    env.set("CH_DOUBLE_HANG", "vm.info");
    env.set("PHYLLOME_VMM_TIMEOUT", "1");
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);

    let start = Instant::now();
    let out = env.run(&["vm", "info", "t1", "--json"]);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("timed out"), "{err}");
    // Generous against a loaded machine; a hang would never return at all.
    assert!(took < Duration::from_secs(15), "took {took:?}");

    let start = Instant::now();
    assert_eq!(env.list_state("t1").as_deref(), Some("Unresponsive"));
    assert!(start.elapsed() < Duration::from_secs(15));

    // A hung VMM still goes away when forced.
    let pid = env.pid("t1").unwrap();
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    assert!(crate::support::wait_gone(pid, Duration::from_secs(5)));
    assert!(!env.vm_dir("t1").exists());
}

#[test]
fn a_frozen_vmm_with_a_garbled_pidfile_is_killed_before_stopped_is_said() {
    let mut env = Env::new();
    env.set("PHYLLOME_VMM_TIMEOUT", "1");
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").unwrap();
    let _frozen = env.freeze(pid);
    env.garble_pidfile("t1");

    let start = Instant::now();
    let out = env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    eprintln!("force stop of a frozen VMM took {:?}", start.elapsed());
    assert!(out.contains("Stopped t1"), "{out}");
    // Said only once the VMM is gone: no waiting for it here.
    assert!(!alive(pid), "VMM {pid} still runs after {out:?}");
    assert!(env.vmm_processes("t1").is_empty());
    assert!(!env.vm_dir("t1").exists(), "runtime dir left behind");

    env.ok(&["vm", "start", "t1"]);
    assert_eq!(env.vmm_processes("t1").len(), 1);
}

#[test]
fn a_frozen_vmm_with_a_garbled_pidfile_is_neither_doubled_nor_cleaned() {
    let mut env = Env::new();
    env.set("PHYLLOME_VMM_TIMEOUT", "1");
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").unwrap();
    let _frozen = env.freeze(pid);
    env.garble_pidfile("t1");

    let out = env.run(&["vm", "start", "t1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second start succeeded: {err}");
    assert!(err.contains("already running"), "{err}");
    assert_eq!(env.vmm_processes("t1"), [pid], "a second VMM was started");

    let rows = env.list();
    let row = rows.iter().find(|r| r["name"] == "t1").unwrap();
    assert_eq!(row["state"], "Unresponsive", "{row:#}");
    assert_eq!(
        row["pid"], pid,
        "the VMM is found without its pidfile: {row:#}"
    );
    assert!(
        env.vm_dir("t1").join("api.sock").exists(),
        "runtime dir cleaned"
    );
}

#[test]
fn a_vmm_that_lost_its_pidfile_and_socket_file_is_still_found() {
    let env = Env::new();
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").unwrap();
    // Nothing left to ask or to read: only its command line and its socket name the VMM.
    std::fs::remove_file(env.vm_dir("t1").join("vmm.pid")).unwrap();
    std::fs::remove_file(env.vm_dir("t1").join("api.sock")).unwrap();

    assert_eq!(env.list_state("t1").as_deref(), Some("Unresponsive"));
    assert!(
        env.vm_dir("t1").exists(),
        "runtime dir of a live VMM cleaned"
    );
    let out = env.run(&["vm", "start", "t1"]);
    assert!(!out.status.success(), "a second start succeeded");
    assert_eq!(env.vmm_processes("t1"), [pid], "a second VMM was started");

    let out = env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    assert!(out.contains("Stopped t1"), "{out}");
    assert!(!alive(pid), "VMM {pid} still runs after {out:?}");
    assert!(!env.vm_dir("t1").exists());
}

#[test]
fn a_vmm_whose_runtime_dir_was_removed_blocks_a_start_and_can_be_stopped() {
    let env = Env::new();
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").unwrap();
    std::fs::remove_dir_all(env.vm_dir("t1")).unwrap();

    let out = env.run(&["vm", "start", "t1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second start succeeded");
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    assert_eq!(env.vmm_processes("t1"), [pid], "a second VMM was started");

    let out = env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    assert!(out.contains("Stopped t1"), "{out}");
    assert!(!alive(pid), "VMM {pid} still runs after {out:?}");
}

#[test]
fn list_asks_hung_vmms_at_once() {
    let mut env = Env::new();
    let timeout = Duration::from_secs(2);
    env.set("PHYLLOME_VMM_TIMEOUT", &timeout.as_secs().to_string());
    let names: Vec<String> = (0..8).map(|i| format!("v{i}")).collect();
    for name in &names {
        env.define(name, "");
        env.ok(&["vm", "start", name]);
    }
    let hung = ["v1", "v4", "v6"];
    let _frozen: Vec<Frozen> = hung
        .iter()
        .map(|n| env.freeze(env.pid(n).unwrap()))
        .collect();

    let start = Instant::now();
    let rows = env.list();
    let took = start.elapsed();
    eprintln!("vm list with 3 of 8 VMMs frozen, {timeout:?} timeout: {took:?}");
    let listed: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(listed, names, "rows keep their order");
    for row in &rows {
        let name = row["name"].as_str().unwrap();
        let want = if hung.contains(&name) {
            "Unresponsive"
        } else {
            "Running"
        };
        assert_eq!(row["state"], want, "{row:#}");
    }
    // One after another the frozen ones take at least 3 timeouts; asked at once, about one.
    assert!(
        took < timeout * 3,
        "took {took:?}: VMMs asked one at a time?"
    );
}

#[test]
fn a_dead_vmm_is_shown_stopped_and_cleaned() {
    let env = Env::new();
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").unwrap();
    kill(pid);
    assert!(crate::support::wait_gone(pid, Duration::from_secs(5)));
    assert_eq!(env.list_state("t1").as_deref(), Some("Stopped"));
    assert!(!env.vm_dir("t1").exists(), "stale runtime dir kept");
    // And it starts again.
    env.ok(&["vm", "start", "t1"]);
    assert_eq!(env.state("t1"), "Running");
}

#[test]
fn failed_boot_reports_causes_and_cleans_up() {
    let mut env = Env::new();
    env.set("CH_DOUBLE_FAIL", "vm.boot");
    env.define("t1", "");
    let out = env.run(&["vm", "start", "t1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("vm.boot"), "{err}");
    assert!(err.contains("caused by"), "{err}");
    assert!(!env.vm_dir("t1").exists(), "runtime dir left behind");
    assert!(env.vmm_processes("t1").is_empty(), "VMM left running");
}

#[test]
fn missing_binary_is_a_clear_error() {
    let mut env = Env::new();
    env.ch_bin = Some(PathBuf::from("/nonexistent/cloud-hypervisor"));
    env.define("t1", "");
    let out = env.run(&["vm", "start", "t1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("/nonexistent/cloud-hypervisor"), "{err}");
    assert!(!env.vm_dir("t1").exists());
}

#[test]
fn destructive_commands_refuse_without_a_terminal() {
    let env = Env::new();
    env.define("t1", "");
    for args in [
        &["vm", "delete", "t1"][..],
        &["vm", "stop", "t1", "--force"][..],
        &["vm", "reboot", "t1"][..],
    ] {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains("--yes"), "{args:?}: {err}");
    }
    assert!(env.state.join("vms/t1.toml").exists());
}

#[test]
fn delete_is_refused_while_running() {
    let env = Env::new();
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let out = env.run(&["vm", "delete", "t1", "--yes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it first"));
    assert!(env.state.join("vms/t1.toml").exists());
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
}

#[test]
fn reboot_keeps_it_running() {
    let env = Env::new();
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    env.ok(&["vm", "reboot", "t1", "--yes"]);
    assert_eq!(
        env.wait_state("t1", "Running", Duration::from_secs(5)),
        "Running"
    );
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
}

#[test]
fn autostart_starts_only_marked_vms() {
    let env = Env::new();
    env.define("on", "autostart = true");
    env.define("off", "");
    let out = env.ok(&["autostart"]);
    assert!(out.contains("on: running"), "{out}");
    assert!(!out.contains("off:"), "{out}");
    assert_eq!(env.state("on"), "Running");
    assert_eq!(env.state("off"), "Stopped");
    // Again: already running counts as done.
    env.ok(&["autostart"]);
    assert_eq!(env.vmm_processes("on").len(), 1);
}
