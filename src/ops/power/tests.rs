use std::cell::RefCell;

use super::*;
use crate::vmm::supervisor::SupervisorError;

/// Stops as scripted per VM: what the graceful stop returns, and whether forcing works.
struct Script {
    graceful: fn(&str) -> Result<StopOutcome, ManagerError>,
    force_works: bool,
    log: RefCell<Vec<String>>,
}

impl StopVm for Script {
    async fn stop_vm(&self, name: &str, mode: StopMode) -> Result<StopOutcome, ManagerError> {
        self.log.borrow_mut().push(format!("{name}: {mode:?}"));
        match mode {
            StopMode::Graceful { .. } => (self.graceful)(name),
            StopMode::Force if self.force_works => Ok(StopOutcome::Forced),
            StopMode::Force => Err(ManagerError::Supervisor(SupervisorError::NotGone {
                vm: name.into(),
                pid: 4242,
                dir: format!("/run/phyllome/vms/{name}"),
            })),
        }
    }
}

fn plan(names: &[&str]) -> Plan {
    Plan {
        action: PowerAction::PowerOff,
        vms: names
            .iter()
            .map(|n| PlannedVm {
                name: n.to_string(),
                state: "Running".into(),
                stop_timeout_secs: 30,
            })
            .collect(),
        bus: "test".into(),
    }
}

fn run(script: &Script, plan: &Plan) -> (Result<(), PowerError>, Vec<Progress>) {
    let mut seen = Vec::new();
    let rt = runtime().unwrap();
    let r = rt.block_on(stop_each(script, plan, &mut |p| seen.push(p)));
    (r, seen)
}

#[test]
fn each_vm_gets_its_grace_period_and_says_how_it_went_down() {
    let script = Script {
        graceful: |n| {
            Ok(if n == "web" {
                StopOutcome::PoweredOff
            } else {
                StopOutcome::TimedOut
            })
        },
        force_works: true,
        log: RefCell::default(),
    };
    let (r, seen) = run(&script, &plan(&["web", "db"]));
    r.unwrap();
    let grace = Duration::from_secs(30);
    assert_eq!(
        seen,
        vec![
            Progress::Stopping {
                vm: "web".into(),
                grace
            },
            Progress::Stopped {
                vm: "web".into(),
                how: Stopped::PoweredOff
            },
            Progress::Stopping {
                vm: "db".into(),
                grace
            },
            Progress::Stopped {
                vm: "db".into(),
                how: Stopped::TimedOut
            },
        ]
    );
    assert_eq!(
        *script.log.borrow(),
        vec![
            "web: Graceful { timeout: 30s }",
            "db: Graceful { timeout: 30s }"
        ]
    );
}

#[test]
fn a_failed_stop_is_forced_and_says_why() {
    let script = Script {
        graceful: |n| {
            Err(ManagerError::InUse {
                name: n.into(),
                what: "a test".into(),
            })
        },
        force_works: true,
        log: RefCell::default(),
    };
    let (r, seen) = run(&script, &plan(&["web"]));
    r.unwrap();
    assert!(
        matches!(&seen[1], Progress::Forcing { vm, why } if vm == "web" && why.contains("still in use")),
        "{seen:?}"
    );
    assert_eq!(
        seen[2],
        Progress::Stopped {
            vm: "web".into(),
            how: Stopped::Forced
        }
    );
}

#[test]
fn a_vm_that_survives_force_ends_it_before_the_next_one() {
    let script = Script {
        graceful: |n| {
            Err(ManagerError::InUse {
                name: n.into(),
                what: "a test".into(),
            })
        },
        force_works: false,
        log: RefCell::default(),
    };
    let (r, _) = run(&script, &plan(&["web", "db"]));
    let e = r.unwrap_err();
    assert!(
        matches!(&e, PowerError::VmStillRuns { vm, .. } if vm == "web"),
        "{e:?}"
    );
    let text = crate::error::Chain(&e).to_string();
    assert!(text.contains("the host was not powered off"), "{text}");
    assert!(text.contains("still runs after SIGKILL"), "{text}");
    // db was never touched: the power-off is off.
    assert_eq!(script.log.borrow().len(), 2, "{:?}", script.log.borrow());
}

#[test]
fn no_logind_on_the_named_bus_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:path={}", dir.path().join("none").display());
    // Only the connection: nothing here can ask a real logind for anything.
    let r = runtime()
        .unwrap()
        .block_on(Logind::connect(Some(address.as_str())));
    let e = r.err().expect("no bus there");
    let text = crate::error::Chain(&e).to_string();
    assert!(matches!(e, PowerError::Unreachable { .. }), "{e:?}");
    assert!(
        text.contains(&address) && text.contains("systemd-logind"),
        "{text}"
    );
}
