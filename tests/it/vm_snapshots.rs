//! Snapshots on the test double (`cargo build --example ch_double` before a filtered run):
//! a running VM's state taken, listed, restored into a fresh VMM and deleted, a failed one
//! leaving nothing; and a stopped VM's qcow2 internal snapshots with the real `qemu-img`.

use serde_json::Value;

use crate::vm_rescue::{after, Env};

#[test]
fn snapshots_are_taken_listed_restored_and_deleted() {
    let env = Env::new();
    env.define("t1", "");
    // A stopped VM with a raw disk: nothing to snapshot it with.
    let (code, err) = env.fails_with(&["vm", "snapshot", "t1", "create"]);
    assert!(err.contains("not qcow2"), "{err}");
    assert_eq!(code, 1);
    env.ok(&["vm", "start", "t1"]);

    let out = env.ok(&["vm", "snapshot", "t1", "create"]);
    assert!(out.contains("Snapshot 1 of t1"), "{out}");
    let routes = env.routes();
    let tail: Vec<&str> = after(&routes, "vm.boot")
        .iter()
        .map(String::as_str)
        .filter(|r| *r != "vm.info")
        .collect();
    assert_eq!(tail, ["vm.pause", "vm.snapshot", "vm.resume"], "{routes:?}");
    assert_eq!(env.state("t1"), "Running", "resumed");
    let snap = env.state.join("snapshots/t1/1");
    for f in ["config.json", "state.json", "memory-ranges"] {
        assert!(snap.join(f).is_file(), "{f} missing in {}", snap.display());
    }

    // A paused VM is snapshotted as it is and stays paused.
    env.ok(&["vm", "pause", "t1"]);
    env.ok(&["vm", "snapshot", "t1", "create"]);
    assert_eq!(env.state("t1"), "Paused");
    env.ok(&["vm", "resume", "t1"]);

    let list = env.json(&["vm", "snapshot", "t1", "list", "--json"])["snapshots"].clone();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2"], "{list:#}");
    assert_eq!(list[0]["state"], "Running");
    assert_eq!(list[1]["state"], "Paused");
    assert!(
        list[0]["size_bytes"].as_u64().unwrap() > 64 * 1024,
        "{list:#}"
    );
    let text = env.ok(&["vm", "snapshot", "t1", "list"]);
    assert!(text.starts_with("ID"), "{text}");

    // Restore wants a stopped VM and a confirmation.
    let (_, err) = env.fails_with(&["vm", "snapshot", "t1", "restore", "1", "--yes"]);
    assert!(err.contains("already running"), "{err}");
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    let (code, _) = env.fails_with(&["vm", "snapshot", "t1", "restore", "1"]);
    assert_eq!(code, 4);
    let before = env.routes().len();
    let out = env.ok(&["vm", "snapshot", "t1", "restore", "1", "--yes"]);
    assert!(
        out.contains("Restored t1 from snapshot 1: Running"),
        "{out}"
    );
    let routes = env.routes();
    let fresh: Vec<&str> = routes[before..]
        .iter()
        .map(String::as_str)
        .filter(|r| !matches!(*r, "vm.info" | "vmm.ping"))
        .collect();
    assert_eq!(fresh, ["vm.restore", "vm.resume"], "{routes:?}");
    assert_eq!(env.state("t1"), "Running");

    let (code, _) = env.fails_with(&["vm", "snapshot", "t1", "delete", "1"]);
    assert_eq!(code, 4);
    env.ok(&["vm", "snapshot", "t1", "delete", "1", "--yes"]);
    assert_eq!(env.snapshots("t1"), ["2"]);
    let (code, err) = env.fails_with(&["vm", "snapshot", "t1", "delete", "1", "--yes"]);
    assert_eq!(code, 3, "{err}");
    let (code, _) = env.fails_with(&["vm", "snapshot", "t1", "restore", "../2", "--yes"]);
    assert_eq!(code, 3);
}

#[test]
fn a_failed_snapshot_resumes_the_vm_and_keeps_nothing() {
    let mut env = Env::new();
    env.cli.set("CH_DOUBLE_FAIL", "vm.snapshot");
    env.define("t1", "");
    env.ok(&["vm", "start", "t1"]);
    let (code, err) = env.fails_with(&["vm", "snapshot", "t1", "create"]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("the VM was resumed and nothing was kept"),
        "{err}"
    );
    assert!(err.contains("Injected failure of vm.snapshot"), "{err}");
    assert_eq!(env.state("t1"), "Running");
    assert!(env.snapshots("t1").is_empty(), "{:?}", env.snapshots("t1"));
    assert_eq!(
        after(&env.routes(), "vm.snapshot")
            .first()
            .map(String::as_str),
        Some("vm.resume")
    );
    let list = env.json(&["vm", "snapshot", "t1", "list", "--json"]);
    assert_eq!(list["snapshots"], Value::Array(vec![]));
}

/// `qemu-io -c CMD IMAGE` succeeds (`read -P` checks the pattern it reads).
fn qemu_io(image: &std::path::Path, cmd: &str) -> bool {
    let out = std::process::Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", cmd])
        .arg(image)
        .output()
        .expect("qemu-io");
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && !text.contains("Pattern verification failed")
}

fn qemu_img_snapshots(image: &std::path::Path) -> String {
    let out = std::process::Command::new("qemu-img")
        .args(["snapshot", "-l"])
        .arg(image)
        .output()
        .expect("qemu-img");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_stopped_vm_is_snapshotted_as_qcow2_internal_snapshots_of_its_disks() {
    if std::process::Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no qemu-img");
        return;
    }
    let env = Env::new();
    let disk = env.path().join("t1.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("1M")
        .status()
        .unwrap();
    assert!(made.success());
    env.define_toml(
        "t1",
        &format!(
            "[cpus]\nboot = 1\n[memory]\nsize = \"256M\"\n[boot]\nkernel = {:?}\n\
             [[disks]]\npath = {disk:?}\n",
            env.fake_kernel()
        ),
    );
    assert!(qemu_io(&disk, "write -q -P 0xaa 0 4k"));
    let out = env.ok(&["vm", "snapshot", "t1", "create"]);
    assert!(out.contains("Snapshot 1 of t1"), "{out}");
    assert!(qemu_img_snapshots(&disk).contains("phyllome-1"));
    let list = env.json(&["vm", "snapshot", "t1", "list", "--json"])["snapshots"].clone();
    assert_eq!(list[0]["kind"], "disks", "{list:#}");
    assert_eq!(list[0]["state"], "Stopped");
    assert_eq!(list[0]["disks"][0], disk.to_str().unwrap());

    // The guest writes; reverting brings the old bytes back and leaves the VM stopped.
    assert!(qemu_io(&disk, "write -q -P 0x55 0 4k"));
    let out = env.ok(&["vm", "snapshot", "t1", "restore", "1", "--yes"]);
    assert!(out.contains("Stopped"), "{out}");
    assert!(qemu_io(&disk, "read -q -P 0xaa 0 4k"), "not reverted");

    // Never under a running VMM.
    env.ok(&["vm", "start", "t1"]);
    let (_, err) = env.fails_with(&["vm", "snapshot", "t1", "delete", "1", "--yes"]);
    assert!(err.contains("stop it first"), "{err}");
    env.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    env.ok(&["vm", "snapshot", "t1", "delete", "1", "--yes"]);
    assert!(!qemu_img_snapshots(&disk).contains("phyllome-1"));
    assert!(env.snapshots("t1").is_empty());

    // A raw disk has no internal snapshots.
    env.define("raw", "");
    let (_, err) = env.fails_with(&["vm", "snapshot", "raw", "create"]);
    assert!(err.contains("not qcow2"), "{err}");
    assert!(
        env.snapshots("raw").is_empty(),
        "{:?}",
        env.snapshots("raw")
    );
}
