//! Rescue on the real Cloud Hypervisor: reset and NMI, force off of a frozen VMM, unlock after
//! SIGKILL, a rescue boot with another kernel, and `vm.snapshot` failing as it does on these
//! machines' nested KVM (`GetNestedState`): one clear error, the VM resumed, nothing kept.
//! Skipped (with `SKIPPED`) where the binary or /dev/kvm is missing.

use std::time::{Duration, Instant};

use crate::support::vmm::backend as ch_backend;
use crate::support::vmm::real_vms::{wait_gone, RealVms as Env};

#[test]
fn reset_and_nmi_on_the_real_vmm() {
    let Some(ch) = ch_backend::real_or_skip("reset_and_nmi_on_the_real_vmm") else {
        return;
    };
    let env = Env::new(ch);
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let out = env.ok(&["vm", "reset", "t1", "--yes"]);
    assert!(out.contains("Reset t1"), "{out}");
    let events = env.events_until("t1", "vm:rebooted");
    assert!(events.contains(&"vm:rebooted".to_string()), "{events:?}");
    assert_eq!(env.state("t1"), "Running");
    let out = env.ok(&["vm", "nmi", "t1", "--yes"]);
    assert!(out.contains("Sent an NMI"), "{out}");
    assert_eq!(env.state("t1"), "Running");
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    let out = env.run(&["vm", "nmi", "t1", "--yes"]);
    assert!(!out.status.success());
}

#[test]
fn a_frozen_real_vmm_is_forced_off() {
    let Some(ch) = ch_backend::real_or_skip("a_frozen_real_vmm_is_forced_off") else {
        return;
    };
    let mut env = Env::new(ch);
    env.cli.set("PHYLLOME_VMM_TIMEOUT", "1");
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").unwrap();
    phyllome::vmm::launch::signal(pid, rustix::process::Signal::STOP);
    let t0 = Instant::now();
    let out = env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    eprintln!("force off of a SIGSTOPped real VMM: {:?}", t0.elapsed());
    assert!(out.contains("Stopped t1"), "{out}");
    assert!(
        wait_gone(pid, Duration::from_secs(10)),
        "VMM {pid} still runs"
    );
    assert!(!env.vm_dir("t1").exists());
}

#[test]
fn unlock_after_sigkill_of_the_real_vmm() {
    let Some(ch) = ch_backend::real_or_skip("unlock_after_sigkill_of_the_real_vmm") else {
        return;
    };
    let env = Env::new(ch);
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let pid = env.pid("t1").unwrap();
    let refused = env.fails(&["vm", "unlock", "t1"]);
    assert!(
        refused.contains(&format!("its VMM, pid {pid} (cloud-hyperviso")),
        "{refused}"
    );

    phyllome::vmm::launch::signal(pid, rustix::process::Signal::KILL);
    assert!(wait_gone(pid, Duration::from_secs(10)));
    let out = env.ok(&["vm", "unlock", "t1"]);
    assert!(
        out.contains("api.sock") && out.contains("serial.sock"),
        "{out}"
    );
    assert!(!env.vm_dir("t1").exists());
    env.ok(&["vm", "start", "t1"]);
    assert_eq!(env.state("t1"), "Running");
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
}

#[test]
fn rescue_boots_another_kernel_on_the_real_vmm() {
    let Some(ch) = ch_backend::real_or_skip("rescue_boots_another_kernel_on_the_real_vmm") else {
        return;
    };
    let env = Env::new(ch);
    env.define("t1", "");
    let other = env.path().join("rescue-vmlinuz");
    std::fs::copy(&env.ch.kernel, &other).unwrap();
    let other = other.to_str().unwrap();
    env.ok(&[
        "vm",
        "rescue",
        "t1",
        "--kernel",
        other,
        "--cmdline",
        "console=ttyS0 init=/bin/sh",
    ]);
    let info = env.info("t1");
    assert_eq!(info["state"], "Running", "{info:#}");
    assert_eq!(info["rescue"], true);
    assert_eq!(info["rescue_payload"]["kernel"], other);
    let cfg = &info["info"]["config"];
    assert_eq!(
        cfg["payload"]["kernel"], other,
        "the VMM booted it: {cfg:#}"
    );
    assert_eq!(cfg["payload"]["cmdline"], "console=ttyS0 init=/bin/sh");
    assert_eq!(cfg["disks"][0]["readonly"], true, "{cfg:#}");
    assert!(env.vm_dir("t1").join("serial.sock").exists());

    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    env.ok(&["vm", "start", "t1"]);
    let info = env.info("t1");
    assert_eq!(info["rescue"], false);
    assert_eq!(
        info["info"]["config"]["payload"]["kernel"],
        env.ch.kernel.to_str().unwrap()
    );
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
}

/// Where snapshots work this takes one; here CH fails with `GetNestedState`, and that must be
/// one clear error with CH's causes, the VM running again and no snapshot directory left.
#[test]
fn a_snapshot_the_real_vmm_cannot_take_fails_cleanly() {
    let Some(ch) = ch_backend::real_or_skip("a_snapshot_the_real_vmm_cannot_take_fails_cleanly")
    else {
        return;
    };
    let env = Env::new(ch);
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let out = env.run(&["vm", "snapshot", "t1", "create"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let snaps = env.state.join("snapshots/t1");
    let left: Vec<_> = std::fs::read_dir(&snaps)
        .map(|it| it.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if out.status.success() {
        // A host whose KVM can save nested state: the snapshot is whole.
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(env.state("t1"), "Running");
        return;
    }
    eprintln!("{err}");
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("Cannot snapshot VM t1"), "{err}");
    assert!(
        err.contains("the VM was resumed and nothing was kept"),
        "{err}"
    );
    assert!(err.contains("GetNestedState"), "CH's cause: {err}");
    assert!(!err.contains("Stack backtrace"), "{err}");
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_eq!(env.state("t1"), "Running", "not resumed");
    let list = env.json(&["vm", "snapshot", "t1", "list", "--json"]);
    assert_eq!(list["snapshots"], serde_json::json!([]));
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
}
