//! The systemd supervision path end to end, on a host whose PID 1 is not systemd: a private
//! `dbus-daemon` with a fake `org.freedesktop.systemd1.Manager` (`support::fake_systemd`),
//! which phyllome finds through `PHYLLOME_SYSTEMD_BUS`. The real `phyllome` binary starts the VMM
//! test double (`examples/ch_double`) as a transient unit, later processes find and stop it.
//!
//! Without `dbus-daemon` the bus tests print `SKIPPED:` and pass, except under CI (`CI` set),
//! which installs it and where a skip is a failure.

use crate::support::fake_systemd;
use crate::support::vmm::double as vmm_double;

use std::path::PathBuf;
use std::time::Duration;

use fake_systemd::{Bus, FakeSystemd, UnitEnv};

use crate::support::cli::Cli;

const SYSTEMD_BUS_ENV: &str = "PHYLLOME_SYSTEMD_BUS";

/// VMs on the test double, started through the systemd at `bus_address`.
struct Env {
    cli: Cli,
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
    fn new(bus_address: &str) -> Self {
        // Absolute, as systemd requires of ExecStart (phyllome makes it so anyway).
        let ch_bin = std::path::absolute(vmm_double::ch_double_path()).unwrap();
        let mut cli = Cli::new().ch_bin(ch_bin);
        cli.set(SYSTEMD_BUS_ENV, bus_address);
        // Whatever the developer's shell says, these tests are about the systemd path.
        cli.unset("PHYLLOME_SUPERVISOR");
        Env { cli }
    }

    fn define(&self, name: &str) {
        let kernel = self.fake_kernel();
        let text = format!(
            "[cpus]\nboot = 2\n\n[memory]\nsize = \"512M\"\n\n[boot]\nkernel = {kernel:?}\n\
             cmdline = \"console=ttyS0\"\n"
        );
        self.define_toml(name, &text);
    }
}

fn alive(pid: u32) -> bool {
    phyllome::vmm::launch::pid_running(pid)
}

/// A bus with the fake manager on it, or None (after saying SKIPPED) without dbus-daemon.
fn fake(test: &str, unit_env: &[(&str, &str)]) -> Option<(Bus, FakeSystemd)> {
    let Some(bus) = Bus::start() else {
        fake_systemd::skip_without_dbus(test);
        return None;
    };
    let env = UnitEnv(
        unit_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let sd = FakeSystemd::serve(&bus.address, env, bus.dir.path());
    Some((bus, sd))
}

/// phyllome's own view of the units (ListUnitsByPatterns through its zbus_systemd proxy).
fn units_seen_by_phyllome(address: &str) -> Vec<phyllome::vmm::systemd::VmUnit> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sd = phyllome::vmm::systemd::Systemd::at(address)
            .await
            .expect("connect to the fake bus");
        sd.list().await.expect("ListUnitsByPatterns")
    })
}

#[test]
fn vmm_runs_as_a_transient_unit_and_outlives_the_cli() {
    let Some((bus, sd)) = fake("vmm_runs_as_a_transient_unit_and_outlives_the_cli", &[]) else {
        return;
    };
    let env = Env::new(&bus.address);
    env.define("t1");
    // The result names the unit the VMM runs in.
    let out = env.ok(&["vm", "start", "t1", "--json"]);
    let started: serde_json::Value = serde_json::from_str(&out).expect("one document");
    assert_eq!(started["state"], "Running", "{out}");
    assert_eq!(started["unit"], "phyllome-vm-t1.service", "{out}");

    // What systemd was asked: one transient service for the VMM, with systemd's property
    // types, and one for its serial keeper.
    let starts = sd.calls_of("StartTransientUnit");
    assert_eq!(starts.len(), 2, "{starts:#?}");
    let call = &starts[0];
    assert_eq!(call.unit, "phyllome-vm-t1.service");
    let keeper = &starts[1];
    assert_eq!(keeper.unit, "phyllome-serial-t1.service");
    let keeper_argv = &keeper.exec_start[0].1;
    assert!(
        keeper_argv.ends_with(&["vm".into(), "serial-keeper".into(), "t1".into()]),
        "{keeper_argv:?}"
    );
    assert_eq!(call.args[0], "fail", "job mode");
    let props: Vec<(&str, &str)> = call
        .properties
        .iter()
        .map(|(k, s)| (k.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        props,
        [
            ("Description", "s"),
            ("ExecStart", "a(sasb)"),
            ("KillMode", "s"),
            ("Type", "s"),
            ("CollectMode", "s"),
            ("TimeoutStopUSec", "t"),
        ]
    );
    assert_eq!(call.strings["KillMode"], "mixed");
    assert_eq!(call.strings["CollectMode"], "inactive-or-failed");
    assert_eq!(call.strings["Type"], "simple");
    let dir = env.vm_dir("t1");
    let (path, argv, ignore) = &call.exec_start[0];
    assert_eq!(call.exec_start.len(), 1);
    assert_eq!(Some(PathBuf::from(path)), env.ch_bin);
    assert!(!ignore);
    assert_eq!(
        argv[1..],
        [
            "--api-socket".to_string(),
            format!("path={}", dir.join("api.sock").display()),
            "--event-monitor".to_string(),
            format!("path={}", dir.join("events.json").display()),
        ]
    );

    // The unit runs the double; phyllome learnt its pid from the VMM and recorded the unit.
    let unit = sd.unit("phyllome-vm-t1.service").expect("unit known");
    assert_eq!(
        (unit.active_state.as_str(), unit.sub_state.as_str()),
        ("active", "running")
    );
    assert_eq!(env.pid("t1"), Some(unit.main_pid));
    assert_eq!(
        env.meta("t1")["supervisor"],
        serde_json::json!({"systemd": {"unit": "phyllome-vm-t1.service"}}),
        "{}",
        env.meta("t1")
    );

    // The keeper unit runs: it serves viewers beside the VM's sockets.
    let viewers = dir.join("viewers.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !viewers.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no keeper serving {viewers:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Every phyllome process so far has exited; new ones find the VM.
    assert_eq!(env.info("t1")["state"], "Running");
    assert_eq!(env.list_state("t1").as_deref(), Some("Running"));
    let units = units_seen_by_phyllome(&bus.address);
    assert_eq!(units.len(), 1, "{units:?}");
    assert_eq!(units[0].vm, "t1");
    assert_eq!(units[0].active_state, "active");
    assert!(!sd.calls_of("ListUnitsByPatterns").is_empty());

    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    let stops = sd.calls_of("StopUnit");
    assert!(
        stops.iter().any(|c| c.unit == "phyllome-vm-t1.service"),
        "{:#?}",
        sd.calls()
    );
    assert!(crate::support::wait_gone(
        unit.main_pid,
        Duration::from_secs(5)
    ));
    assert!(sd.wait_unit_gone("phyllome-vm-t1.service", Duration::from_secs(5)));
    // The keeper leaves with its VM.
    assert!(sd.wait_unit_gone("phyllome-serial-t1.service", Duration::from_secs(5)));
    assert_eq!(env.list_state("t1").as_deref(), Some("Stopped"));
    assert!(units_seen_by_phyllome(&bus.address).is_empty());
}

#[test]
fn unit_names_are_escaped_for_systemd() {
    let Some((bus, sd)) = fake("unit_names_are_escaped_for_systemd", &[]) else {
        return;
    };
    let env = Env::new(&bus.address);
    // '-' separates words of unit names, so a VM's own '-' is escaped (systemd-escape).
    env.define("dev-box.2");
    env.ok(&["vm", "start", "dev-box.2"]);
    let unit = "phyllome-vm-dev\\x2dbox.2.service";
    let starts = sd.calls_of("StartTransientUnit");
    assert_eq!(starts[0].unit, unit, "{starts:#?}");
    assert!(sd.unit(unit).is_some());
    let units = units_seen_by_phyllome(&bus.address);
    assert_eq!(units.len(), 1);
    assert_eq!(units[0].vm, "dev-box.2");
    assert_eq!(units[0].unit, unit);
    assert_eq!(env.info("dev-box.2")["state"], "Running");
    env.ok(&["vm", "stop", "dev-box.2", "--force", "--yes"]);
    assert!(sd.wait_unit_gone(unit, Duration::from_secs(5)));
}

#[test]
fn a_vmm_that_ignores_shutdown_is_killed_through_the_unit() {
    // The VMM's API hangs, so neither vm.shutdown nor vmm.shutdown ends it: only systemd can.
    let Some((bus, sd)) = fake(
        "a_vmm_that_ignores_shutdown_is_killed_through_the_unit",
        &[("CH_DOUBLE_HANG", "vm.shutdown")],
    ) else {
        return;
    };
    let mut env = Env::new(&bus.address);
    env.set("PHYLLOME_VMM_TIMEOUT", "1");
    env.define("stuck");
    env.ok(&["vm", "start", "stuck"]);
    let unit = "phyllome-vm-stuck.service";
    let pid = sd.unit(unit).expect("unit").main_pid;
    env.ok(&["vm", "stop", "stuck", "--force", "--yes"]);
    let kills = sd.calls_of("KillUnit");
    assert!(
        kills
            .iter()
            .any(|c| c.unit == unit && c.args == ["all".to_string(), "9".to_string()]),
        "{:#?}",
        sd.calls()
    );
    assert!(
        crate::support::wait_gone(pid, Duration::from_secs(5)),
        "the VMM survived"
    );
    assert!(sd.wait_unit_gone(unit, Duration::from_secs(5)));
}

#[test]
fn a_bus_that_does_not_answer_falls_back_to_a_detached_process() {
    // No dbus-daemon needed: nothing listens at this address.
    let tmp = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", tmp.path().join("no-bus").display());
    let env = Env::new(&address);
    env.define("fb");
    env.ok(&["vm", "start", "fb"]);
    let pid = env.pid("fb").expect("pidfile of the detached VMM");
    assert!(alive(pid));
    assert_eq!(
        env.meta("fb")["supervisor"],
        "process",
        "{}",
        env.meta("fb")
    );
    assert_eq!(env.info("fb")["state"], "Running");
    env.ok(&["vm", "stop", "fb", "--force", "--yes"]);
    assert!(crate::support::wait_gone(pid, Duration::from_secs(5)));

    // The choice is logged. CLI commands install no log subscriber, so the line is checked
    // in this process, whose environment is set for it alone (the other tests pass theirs to
    // their children) and restored after.
    let mut process_env = crate::support::EnvLock::take();
    process_env.set(SYSTEMD_BUS_ENV, &address);
    process_env.remove("PHYLLOME_SUPERVISOR");
    let log = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sup = tracing::subscriber::with_default(subscriber, || {
        rt.block_on(phyllome::vmm::supervisor::Supervisor::detect())
    });
    drop(process_env);
    assert!(
        matches!(sup, phyllome::vmm::supervisor::Supervisor::Process),
        "{sup:?}"
    );
    let text = log.text();
    assert!(
        text.contains("WARN") && text.contains("systemd bus does not answer"),
        "no log line about the fallback: {text}"
    );
    assert!(
        text.contains("no-bus"),
        "the line names the address: {text}"
    );
}

/// A log writer the test can read back.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
