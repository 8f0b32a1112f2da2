//! phyllome against the real Cloud Hypervisor: the CLI's whole lifecycle, several VMs listed
//! and watched at once, the export taken by the real `ch-remote create`, and the console's VMs
//! view and dashboard. The VMs boot Debian's kernel; on these machines' nested KVM the guest
//! makes no progress (its vCPU spins, it ignores the power button), which is exactly what the
//! graceful stop's fallback and the CPU figures need.
//!
//! Runs whenever the binary is there and `/dev/kvm` opens (see `support::vmm::backend`);
//! otherwise each test prints `SKIPPED` with the reason.

use crate::support::vmm::backend as ch_backend;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::ui;
use crate::support::vmm::real_vms::{wait_gone, RealVms as Env};

#[test]
fn the_whole_lifecycle_on_the_real_vmm() {
    let Some(ch) = ch_backend::real_or_skip("the_whole_lifecycle_on_the_real_vmm") else {
        return;
    };
    let env = Env::new(ch);
    env.define("t1", "");

    let t0 = Instant::now();
    let out = env.ok(&["vm", "start", "t1"]);
    let started = t0.elapsed();
    assert!(out.contains("Started"), "{out}");
    let pid = env.pid("t1").expect("pidfile");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(
        exe.file_name(),
        env.ch.bin.file_name(),
        "the pidfile names the real VMM"
    );
    let info = env.json(&["vm", "info", "t1", "--json"]);
    assert_eq!(info["state"], "Running", "{info:#}");
    assert_eq!(info["info"]["config"]["memory"]["size"], 128u64 << 20);
    assert_eq!(
        info["info"]["config"]["serial"]["mode"], "Socket",
        "the serial socket came with vm.create: {info:#}"
    );
    assert!(env.run.join("vms/t1/serial.sock").exists());

    env.ok(&["vm", "pause", "t1"]);
    assert_eq!(env.state("t1"), "Paused");
    let refused = env.run(&["vm", "pause", "t1"]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("InvalidStateTransition(Paused, Paused)"),
        "{err}"
    );
    // The same refusal as a document: CH's messages become its causes, the exit code stays 5.
    let refused = env.run(&["vm", "pause", "t1", "--json"]);
    assert_eq!(refused.status.code(), Some(5));
    let doc: Value = serde_json::from_slice(&refused.stdout).expect("one document");
    let causes = doc["error"]["causes"].to_string();
    assert!(
        causes.contains("InvalidStateTransition(Paused, Paused)"),
        "{doc:#}"
    );
    let resumed = env.json(&["vm", "resume", "t1", "--json"]);
    assert_eq!(
        (&resumed["schema_version"], &resumed["state"]),
        (&1.into(), &"Running".into())
    );
    assert_eq!(resumed["pid"], pid, "{resumed:#}");
    env.ok(&["vm", "reboot", "t1", "--yes"]);
    assert_eq!(env.state("t1"), "Running");

    // The guest ignores the power button here: the grace period runs out, then vm.shutdown.
    let t1 = Instant::now();
    env.ok(&["vm", "stop", "t1", "--timeout", "1"]);
    let stopped = t1.elapsed();
    assert_eq!(env.state("t1"), "Stopped");
    assert!(
        wait_gone(pid, Duration::from_secs(5)),
        "VMM {pid} still runs"
    );
    assert!(!env.run.join("vms/t1").exists(), "runtime dir left behind");
    assert!(
        stopped >= Duration::from_secs(1),
        "the grace period was not waited: {stopped:?}"
    );

    // Starts again after a stop, then goes at once when forced.
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").expect("pidfile");
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    assert!(wait_gone(pid, Duration::from_secs(5)));
    assert_eq!(env.state("t1"), "Stopped");
    env.ok(&["vm", "delete", "t1", "--yes"]);
    assert!(env.vmm_pids().is_empty(), "{:?}", env.vmm_pids());
    eprintln!("real VMM: vm start {started:?}, graceful stop with a 1 s grace period {stopped:?}");
}

/// CH's option parser splits on `,` and `=`: a run dir holding them is quoted on the VMM's
/// command line, so the socket is where phyllome expects it and no option is added.
#[test]
fn a_run_dir_with_option_syntax_in_its_name_still_works() {
    let Some(ch) = ch_backend::real_or_skip("a_run_dir_with_option_syntax_in_its_name_still_works")
    else {
        return;
    };
    let mut env = Env::new(ch);
    env.cli.run = env.tmp.path().join("run,fd=3");
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    assert_eq!(env.state("t1"), "Running");
    assert!(env.run.join("vms/t1/api.sock").exists());
    assert!(
        !env.tmp.path().join("run").exists(),
        "the VMM took `run` for its socket path"
    );
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    assert_eq!(env.state("t1"), "Stopped");
}

#[test]
fn a_refused_vm_reports_the_real_vmms_causes() {
    let Some(ch) = ch_backend::real_or_skip("a_refused_vm_reports_the_real_vmms_causes") else {
        return;
    };
    let env = Env::new(ch);
    env.define("t1", "");
    // The disk vanishes after the definition was checked: CH refuses vm.boot with its causes.
    std::fs::remove_file(env.tmp.path().join("t1.img")).unwrap();
    let out = env.run(&["vm", "start", "t1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("t1.img"), "names the disk: {err}");
    assert!(!env.run.join("vms/t1").exists(), "runtime dir left behind");
    assert!(
        env.vmm_pids().is_empty(),
        "VMM left running: {:?}",
        env.vmm_pids()
    );
}

#[test]
fn the_export_is_taken_by_the_real_ch_remote() {
    let Some(ch) = ch_backend::real_or_skip("the_export_is_taken_by_the_real_ch_remote") else {
        return;
    };
    let env = Env::new(ch);
    env.define("t1", "");
    let json = env.tmp.path().join("t1.json");
    std::fs::write(&json, env.ok(&["vm", "export", "t1"])).unwrap();
    // The serial socket lives in the VM's runtime dir, which `vm start` makes.
    std::fs::create_dir_all(env.run.join("vms/t1")).unwrap();
    let vmm = ch_backend::VmmProcess::spawn(&env.ch.bin, &[], &[]);
    let remote = |args: &[&str]| {
        Command::new(&env.ch.ch_remote)
            .arg("--api-socket")
            .arg(&vmm.api_socket)
            .args(args)
            .output()
            .unwrap()
    };
    let created = remote(&["create", json.to_str().unwrap()]);
    assert!(
        created.status.success(),
        "ch-remote create: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let info = remote(&["info"]);
    let info: Value = serde_json::from_slice(&info.stdout).expect("ch-remote info");
    assert_eq!(info["state"], "Created");
    assert_eq!(info["config"]["cpus"]["boot_vcpus"], 1);
    assert_eq!(info["config"]["memory"]["size"], 128u64 << 20);
    assert!(remote(&["boot"]).status.success());
    assert!(remote(&["shutdown-vmm"]).status.success());
}

#[test]
fn several_real_vms_are_listed_and_watched_at_once() {
    let Some(ch) = ch_backend::real_or_skip("several_real_vms_are_listed_and_watched_at_once")
    else {
        return;
    };
    let env = Env::new(ch);
    let names = ["a", "b", "c"];
    for n in names {
        env.define(n, "");
        env.ok(&["vm", "start", n]);
    }
    let rows = env.json(&["vm", "list", "--json"]);
    for n in names {
        let row = rows["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n} not listed: {rows:#}"));
        assert_eq!(row["state"], "Running", "{row}");
    }
    env.ok(&["vm", "pause", "b"]);
    let out = env.ok(&[
        "top",
        "--batch",
        "--iterations",
        "2",
        "--json",
        "--interval",
        "1",
    ]);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let vm = |n: &str| {
        last["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} missing: {last:#}"))
    };
    for n in ["a", "c"] {
        let v = vm(n);
        assert_eq!(v["state"], "Running", "{v}");
        // The guest's vCPU spins: its VMM uses a good share of a core (3 VMs on 2 cores).
        let cpu = v["cpu_percent"].as_f64().unwrap();
        assert!(cpu > 20.0, "{n}: {cpu}% CPU: {v}");
        assert_eq!(v["memory_guest_bytes"], 128u64 << 20);
        assert!(v["memory_rss_bytes"].as_u64().is_some_and(|r| r > 0), "{v}");
    }
    let b = vm("b");
    assert_eq!(b["state"], "Paused", "{b}");
    assert!(
        b["cpu_percent"].as_f64().unwrap() < 5.0,
        "a paused VM spins no vCPU: {b}"
    );
    for n in names {
        env.ok(&["vm", "stop", n, "--force", "--yes"]);
    }
    let left = env.vmm_pids();
    assert!(left.is_empty(), "VMMs left: {left:?}");
}

/// The console itself on real VMMs: the VMs view shows them running, the dashboard samples
/// their CPU.
#[test]
fn the_console_shows_real_vms_and_their_cpu() {
    use futures::StreamExt;
    use phyllome::tui::{run_on, ConsoleOptions, Keymap};

    let Some(ch) = ch_backend::real_or_skip("the_console_shows_real_vms_and_their_cpu") else {
        return;
    };
    let env = Env::new(ch);
    env.define("web", "");
    env.define("idle", "");
    env.ok(&["vm", "start", "web"]);
    // The state and run dirs of `env`, which are under its path.
    let mut opts = ConsoleOptions {
        read_only: true,
        ..ui::console(Path::new("/"), env.path())
    };
    opts.paths.ch_bin = env.ch_bin.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // `5`: the VMs view, given time to ask the VMMs.
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 30)).unwrap();
    let result = rt.block_on(async {
        let events = futures::stream::iter([Ok(ui::key("5"))])
            .chain(ui::pause(1500))
            .boxed();
        run_on(&mut terminal, events, Keymap::defaults().unwrap(), &opts).await
    });
    assert!(result.is_ok(), "{result:?}");
    let screen = terminal.backend().to_string();
    let row = |name: &str| {
        screen
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == name))
            .unwrap_or_else(|| panic!("no row of {name}:\n{screen}"))
            .to_string()
    };
    assert!(row("web").contains("Running"), "{screen}");
    assert!(row("idle").contains("Stopped"), "{screen}");

    // `6`: the dashboard, sampling the real VMM for three seconds.
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
    let result = rt.block_on(async {
        let events = futures::stream::iter([Ok(ui::key("6"))])
            .chain(ui::pause(3200))
            .boxed();
        run_on(&mut terminal, events, Keymap::defaults().unwrap(), &opts).await
    });
    assert!(result.is_ok(), "{result:?}");
    let screen = terminal.backend().to_string();
    let row = screen
        .lines()
        .find(|l| l.contains("web") && l.contains("Running"))
        .unwrap_or_else(|| panic!("no row of web:\n{screen}"));
    // The CPU column follows the state.
    let cpu: f64 = row
        .split_whitespace()
        .skip_while(|w| *w != "Running")
        .nth(1)
        .and_then(|w| w.trim_end_matches('%').parse().ok())
        .unwrap_or_else(|| panic!("no CPU figure in {row:?}"));
    assert!(cpu > 20.0, "a spinning vCPU shows {cpu}%: {row}");
    env.ok(&["vm", "stop", "web", "--force", "--yes"]);
}

/// Where the payload kernel and the binary are, for the record in the output.
#[test]
fn real_vmm_setup_is_reported() {
    if let Some(ch) = ch_backend::real_or_skip("real_vmm_setup_is_reported") {
        let version = Command::new(&ch.bin).arg("--version").output().unwrap();
        let version = String::from_utf8_lossy(&version.stdout);
        assert!(version.starts_with("cloud-hypervisor v54"), "{version}");
        assert!(Path::new(&ch.kernel).is_file());
    }
}
