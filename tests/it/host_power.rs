//! `phyllome host poweroff|reboot` on VMs of the test double, with a stand-in logind on a
//! private bus (`support::fake_logind`, found through `PHYLLOME_LOGIND_BUS`): every VMM is
//! gone before PowerOff is called, the plan of `--dry-run` changes nothing, no terminal and no
//! `--yes` refuses, and a host without logind (or a logind that says no) stops nothing.

use std::path::Path;

use crate::support::cli::{text, Cli};
use crate::support::fake_logind::{Answers, FakeLogind};
use crate::support::fake_systemd::{self, Bus};
use crate::support::vmm::double;

const LOGIND_BUS: &str = "PHYLLOME_LOGIND_BUS";

/// VMs on the double, a logind stand-in; every VMM killed on drop.
struct Env {
    cli: Cli,
    logind: Option<FakeLogind>,
    address: String,
    _bus: Bus,
}

impl Drop for Env {
    fn drop(&mut self) {
        double::kill_vmms(&self.cli.run);
    }
}

impl Env {
    fn new(test: &str, answers: Option<Answers>) -> Option<Env> {
        let Some(bus) = Bus::start() else {
            fake_systemd::skip_without_dbus(test);
            return None;
        };
        let logind = answers.map(|a| FakeLogind::serve(&bus.address, a));
        let mut cli = Cli::double();
        cli.set(LOGIND_BUS, &bus.address);
        Some(Env {
            cli,
            logind,
            address: bus.address.clone(),
            _bus: bus,
        })
    }

    fn logind(&self) -> &FakeLogind {
        self.logind.as_ref().expect("a logind")
    }

    fn start(&self, name: &str, stop_timeout: &str) -> u32 {
        self.define(name, stop_timeout);
        self.cli.ok(&["vm", "start", name]);
        let pid = double::vmm_pid(&self.cli.run, name).expect("pidfile");
        assert!(phyllome::vmm::launch::pid_running(pid));
        pid
    }

    /// Started however the supervisor records it (under systemd: no pidfile of ours).
    fn start_unchecked(&self, name: &str) {
        self.define(name, "30s");
        self.cli.ok(&["vm", "start", name]);
    }

    fn define(&self, name: &str, stop_timeout: &str) {
        let kernel = self.cli.fake_kernel();
        self.cli.define_toml(
            name,
            &format!(
                "stop_timeout = {stop_timeout:?}\n[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n\
                 [boot]\nkernel = {kernel:?}\ncmdline = \"console=ttyS0\"\n"
            ),
        );
    }

    fn running(&self, name: &str) -> bool {
        self.cli.list_state(name).as_deref() == Some("Running")
    }
}

fn gone(pid: u32) -> bool {
    !phyllome::vmm::launch::pid_running(pid)
}

#[test]
fn poweroff_stops_every_vm_before_logind_is_asked() {
    let Some(mut env) = Env::new("host_power", Some(Answers::default())) else {
        return;
    };
    let web = env.start("web", "30s");
    // This one's guest would take 100 s to act on the power button: forced after 1 s.
    env.cli.set("CH_DOUBLE_POWEROFF_MS", "100000");
    let slow = env.start("slow", "1s");
    env.logind().watch(&[web, slow]);

    let out = env.cli.ok(&["host", "poweroff", "--yes"]);
    let actions = env.logind().actions();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].method, "PowerOff");
    assert_eq!(actions[0].interactive, Some(false));
    assert_eq!(
        actions[0].alive,
        Vec::<u32>::new(),
        "VMMs still running when PowerOff came"
    );
    assert!(gone(web) && gone(slow));
    let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("no {s:?} in:\n{out}"));
    assert!(at("Stopping slow (power button, up to 1 s)") < at("slow: forced off"));
    assert!(at("slow: forced off (the grace period ran out; vm.shutdown)") > 0);
    assert!(at("web: stopped (the guest powered off)") < at("asking logind to power off"));
    assert!(at("slow: forced off") < at("asking logind to power off"));
}

#[test]
fn reboot_dry_run_prints_the_plan_and_changes_nothing() {
    let Some(env) = Env::new("host_power", Some(Answers::default())) else {
        return;
    };
    let pid = env.start("web", "45s");
    let out = env.cli.ok(&["host", "reboot", "--dry-run"]);
    assert!(out.contains("To reboot the host (logind on"), "{out}");
    assert!(
        out.contains("1. stop web (Running): power button, up to 45 s, then forced off"),
        "{out}"
    );
    assert!(out.contains("2. logind Reboot(interactive=false)"), "{out}");
    assert!(env.logind().actions().is_empty());
    assert_eq!(env.logind().calls()[0].method, "CanReboot");
    assert!(env.running("web") && !gone(pid));
}

#[test]
fn without_a_terminal_and_without_yes_it_refuses_naming_the_vms() {
    let Some(env) = Env::new("host_power", Some(Answers::default())) else {
        return;
    };
    env.start("web", "30s");
    let out = env.cli.run(&["host", "poweroff"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("Refusing to power off the host, stopping VM web first without confirmation"),
        "{err}"
    );
    assert!(env.logind().actions().is_empty());
    assert!(env.running("web"));
}

fn refused_stopping_nothing(env: &Env, want: &[&str]) {
    let pid = env.start("web", "30s");
    let out = env.cli.run(&["host", "poweroff", "--yes"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for w in want {
        assert!(err.contains(w), "no {w:?} in:\n{err}");
    }
    assert!(env.running("web") && !gone(pid), "a VM was stopped");
}

#[test]
fn a_bus_without_logind_stops_nothing_and_names_the_bus_and_the_fix() {
    let Some(env) = Env::new("host_power", None) else {
        return;
    };
    let address = env.address.clone();
    refused_stopping_nothing(
        &env,
        &[
            &format!("Cannot reach logind (org.freedesktop.login1) on {address}"),
            "Nothing was stopped: the host cannot be asked to power off",
            "systemctl start systemd-logind",
            "org.freedesktop.login1",
        ],
    );
}

#[test]
fn no_bus_at_all_stops_nothing() {
    let Some(mut env) = Env::new("host_power", None) else {
        return;
    };
    let none = env.cli.tmp.path().join("no-bus");
    env.cli.set(
        LOGIND_BUS,
        &format!("unix:path={}", Path::new(&none).display()),
    );
    refused_stopping_nothing(
        &env,
        &[
            "Cannot reach logind",
            "no-bus",
            "Nothing was stopped: the host cannot be asked to power off",
        ],
    );
}

#[test]
fn logind_that_would_need_a_prompt_stops_nothing() {
    let answers = Answers {
        can: "challenge".into(),
        refuse: None,
    };
    let Some(env) = Env::new("host_power", Some(answers)) else {
        return;
    };
    refused_stopping_nothing(
        &env,
        &["will not power off this host for this user (CanPowerOff: challenge)"],
    );
    assert!(env.logind().actions().is_empty());
}

#[test]
fn logind_refusing_the_call_is_reported_with_its_cause() {
    let answers = Answers {
        can: "yes".into(),
        refuse: Some("Interactive authentication required.".into()),
    };
    let Some(env) = Env::new("host_power", Some(answers)) else {
        return;
    };
    // No VM runs: nothing to stop, logind asked at once.
    let out = env.cli.run(&["host", "reboot", "--yes"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("logind refused to reboot the host (Reboot on")
            && err.contains("Interactive authentication required."),
        "{err}"
    );
    assert_eq!(env.logind().actions()[0].method, "Reboot");
}

#[test]
fn vms_under_systemd_are_stopped_units_before_poweroff() {
    let Some(mut env) = Env::new("host_power", Some(Answers::default())) else {
        return;
    };
    // The same private bus also serves systemd's manager: each VM is a transient unit.
    let sd = fake_systemd::FakeSystemd::serve(
        &env.address,
        fake_systemd::UnitEnv::default(),
        env.cli.tmp.path(),
    );
    let address = env.address.clone();
    env.cli.set("PHYLLOME_SYSTEMD_BUS", &address);
    env.cli.unset("PHYLLOME_SUPERVISOR");
    let ch = std::path::absolute(double::ch_double_path()).unwrap();
    env.cli.ch_bin = Some(ch);
    let mut pids = Vec::new();
    for name in ["web", "db"] {
        env.start_unchecked(name);
        let unit = phyllome::vmm::systemd::unit_name(name);
        let u = sd.unit(&unit).unwrap_or_else(|| panic!("no unit {unit}"));
        assert_eq!(u.active_state, "active");
        pids.push(u.main_pid);
    }
    env.logind().watch(&pids);
    env.cli.ok(&["host", "poweroff", "--yes"]);
    let actions = env.logind().actions();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(
        actions[0].alive,
        Vec::<u32>::new(),
        "VMMs alive at PowerOff"
    );
    for name in ["web", "db"] {
        let unit = phyllome::vmm::systemd::unit_name(name);
        assert!(
            sd.wait_unit_gone(&unit, std::time::Duration::ZERO),
            "{unit} still active after the power-off was asked"
        );
    }
}

fn document(stdout: &[u8]) -> serde_json::Value {
    let text = text(stdout);
    assert!(
        text.starts_with("{\"schema_version\":1,")
            || text.starts_with("{\n  \"schema_version\": 1,"),
        "not a versioned document: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn poweroff_json_is_one_document_with_each_stop_and_the_logind_call() {
    let Some(env) = Env::new("host_power", Some(Answers::default())) else {
        return;
    };
    env.start("web", "30s");
    let dry = document(
        &env.cli
            .run(&["host", "poweroff", "--dry-run", "--json"])
            .stdout,
    );
    assert_eq!(dry["action"], "poweroff");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["vms"][0]["name"], "web");
    assert_eq!(dry["vms"][0]["stop_timeout_secs"], 30);
    assert!(dry.get("stopped").is_none(), "{dry}");
    assert!(env.running("web"));

    let out = env.cli.run(&["host", "poweroff", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = document(&out.stdout);
    assert_eq!(
        doc["stopped"],
        serde_json::json!([{"vm": "web", "outcome": "powered_off"}])
    );
    assert_eq!(doc["logind_asked"], true);
    assert!(doc.get("error").is_none(), "{doc}");
    assert_eq!(env.logind().actions()[0].method, "PowerOff");
}

#[test]
fn a_refused_reboot_with_json_is_a_document_with_the_error() {
    let answers = Answers {
        can: "yes".into(),
        refuse: Some("Interactive authentication required.".into()),
    };
    let Some(env) = Env::new("host_power", Some(answers)) else {
        return;
    };
    let out = env.cli.run(&["host", "reboot", "--yes", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc = document(&out.stdout);
    assert_eq!(doc["action"], "reboot");
    assert_eq!(doc["stopped"], serde_json::json!([]));
    assert_eq!(doc["logind_asked"], true);
    let causes = doc["error"]["causes"].to_string();
    assert!(
        causes.contains("Interactive authentication required."),
        "{doc}"
    );
}

#[test]
fn a_vm_started_while_the_others_were_stopped_is_stopped_too() {
    use phyllome::ops::power::{self, Plan, PowerAction, Progress};
    let Some(env) = Env::new("host_power", Some(Answers::default())) else {
        return;
    };
    let late = env.start("late", "30s");
    let paths = phyllome::ops::HostPaths {
        host_root: "/".into(),
        state_dir: Some(env.cli.state.clone()),
        run_dir: Some(env.cli.run.clone()),
        ch_bin: env.cli.ch_bin.clone(),
        simulate: false,
    };
    // The plan was made before `late` started: it names no VM.
    let plan = Plan {
        action: PowerAction::PowerOff,
        vms: Vec::new(),
        bus: "a test".into(),
    };
    let mut seen = Vec::new();
    power::stop_all(&paths, &plan, &mut |p| {
        if let Progress::Stopped { vm, .. } = p {
            seen.push(vm)
        }
    })
    .unwrap();
    assert_eq!(seen, ["late"]);
    assert!(gone(late), "the late VM still runs");
}
