//! Mounting read-only, checking, and the refusals: another process or a VM of ours holding
//! the image, a loop device over it, no root. Mounts need root (CI runs as root); elsewhere
//! these print SKIPPED.

use std::path::Path;
use std::process::{Child, Command};

use serde_json::Value;

use super::{gpt_image, have, qcow2_of, sh, skip};
use crate::support::cli::Cli;

fn root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    skip(test, "mounting needs root");
    false
}

const TOOLS: [(&str, &str); 4] = [
    ("sfdisk", "fdisk"),
    ("mkfs.ext4", "e2fsprogs"),
    ("mkfs.vfat", "dosfstools"),
    ("losetup", "mount"),
];

/// Loop devices backed by `file` (`losetup -j`).
fn loops_of(file: &Path) -> String {
    sh("losetup", &["-j", file.to_str().unwrap()])
}

/// Unmounts whatever a failed test left, so no loop device outlives it.
struct MountGuard<'a>(&'a Cli, std::path::PathBuf);

impl Drop for MountGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.run(&["disk", "umount", self.1.to_str().unwrap()]);
        }
    }
}

#[test]
fn mount_raw_read_only_read_a_file_back_and_umount() {
    if !have("mount_raw", &TOOLS) || !root("mount_raw") {
        return;
    }
    let cli = Cli::new();
    let img = gpt_image(cli.path());
    let dir = cli.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let (i, d) = (img.to_str().unwrap(), dir.to_str().unwrap());
    // Two partitions: the one to mount must be named.
    let err = cli.fails(&["disk", "mount", i, d]);
    assert!(
        err.contains("several partitions (1, 2): choose one with --partition N"),
        "{err}"
    );
    let err = cli.fails(&["disk", "mount", i, "--partition", "7", d]);
    assert!(err.contains("No partition 7 (partitions: 1, 2)"), "{err}");
    let m = cli.json(&["disk", "mount", i, "--partition", "2", d, "--json"]);
    let _guard = MountGuard(&cli, dir.clone());
    assert_eq!(m["filesystem"], "ext4");
    assert_eq!(m["partition"], 2);
    assert_eq!(m["export"], Value::Null);
    let dev = m["device"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(dir.join("note.txt")).unwrap(),
        "hello from the guest\n"
    );
    let err = std::fs::write(dir.join("new.txt"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(30), "EROFS: {err}");
    assert!(loops_of(&img).contains(&dev));
    // Mounted: a second mount and a check are refused, naming the loop device.
    let dir2 = cli.path().join("mnt2");
    std::fs::create_dir(&dir2).unwrap();
    let err = cli.fails(&[
        "disk",
        "mount",
        i,
        "--partition",
        "2",
        dir2.to_str().unwrap(),
    ]);
    assert!(
        err.contains(&format!("is in use by loop device {dev}")),
        "{err}"
    );
    let err = cli.fails(&["disk", "fsck", i, "--partition", "2"]);
    assert!(err.contains(&format!("loop device {dev}")), "{err}");
    let out = cli.ok(&["disk", "umount", d]);
    assert!(out.contains(&format!("detached {dev}")), "{out}");
    assert_eq!(loops_of(&img), "", "the loop device is gone");
    let err = cli.fails(&["disk", "umount", d]);
    assert!(err.contains("is not a mount point"), "{err}");
    // The host's own filesystems are not ours to unmount.
    let err = cli.fails(&["disk", "umount", "/"]);
    assert!(err.contains("not by `disk mount`"), "{err}");
}

#[test]
fn mount_qcow2_through_its_export() {
    let mut tools = TOOLS.to_vec();
    tools.push(("qemu-img", "qemu-utils"));
    tools.push(("qemu-storage-daemon", "qemu-system-common"));
    if !have("mount_qcow2", &tools) || !root("mount_qcow2") {
        return;
    }
    if !Path::new("/dev/fuse").exists() {
        skip(
            "mount_qcow2",
            "no /dev/fuse for qemu-storage-daemon's export",
        );
        return;
    }
    let cli = Cli::new();
    let raw = gpt_image(cli.path());
    let q = qcow2_of(&raw, "d.qcow2");
    let dir = cli.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let m = cli.json(&[
        "disk",
        "mount",
        q.to_str().unwrap(),
        "--partition",
        "2",
        d,
        "--json",
    ]);
    let _guard = MountGuard(&cli, dir.clone());
    let export = m["export"].as_str().unwrap().to_string();
    assert!(
        export.starts_with(cli.run.join("disks").to_str().unwrap()),
        "{m}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("note.txt")).unwrap(),
        "hello from the guest\n"
    );
    // The daemon holds the image: another mount is refused naming it.
    let err = cli.fails(&["disk", "fsck", q.to_str().unwrap(), "--partition", "2"]);
    assert!(err.contains("(qemu-storage-d"), "{err}");
    let out = cli.ok(&["disk", "umount", d]);
    assert!(out.contains("export stopped"), "{out}");
    assert!(!Path::new(&export).exists(), "export file removed");
    assert_eq!(loops_of(Path::new(&export)), "");
    let r = cli.json(&[
        "disk",
        "fsck",
        q.to_str().unwrap(),
        "--partition",
        "2",
        "--json",
    ]);
    assert_eq!(r["clean"], true, "{r}");
    assert_eq!(std::fs::read_dir(cli.run.join("disks")).unwrap().count(), 0);
}

#[test]
fn fsck_tells_clean_from_damaged() {
    if !have("fsck", &TOOLS) || !root("fsck") {
        return;
    }
    let cli = Cli::new();
    let img = gpt_image(cli.path());
    let i = img.to_str().unwrap();
    let r = cli.json(&["disk", "fsck", i, "--partition", "2", "--json"]);
    assert_eq!(r["clean"], true, "{r}");
    assert_eq!(r["filesystem"], "ext4");
    assert!(r["output"].as_str().unwrap().contains("Pass 5"), "{r}");
    let r = cli.json(&["disk", "fsck", i, "--partition", "1", "--json"]);
    assert_eq!(r["clean"], true, "{r}");
    assert_eq!(r["filesystem"], "vfat");
    // Damage the ext4 partition's root inode table area: e2fsck -n finds problems it does
    // not fix, and the command fails.
    let ins = super::inspect(&cli, &img);
    let start = ins["partitions"][1]["start"].as_u64().unwrap();
    let before = std::fs::read(&img).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    use std::os::unix::fs::FileExt;
    // The block group descriptors follow the superblock (1 KiB blocks: block 2).
    f.write_all_at(&[0xFF; 64], start + 2048).unwrap();
    drop(f);
    let out = cli.run(&["disk", "fsck", i, "--partition", "2", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["clean"], false, "{r}");
    assert!(r["exit_code"].as_i64().unwrap() >= 4, "{r}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("found problems"));
    // Nothing was written: -n and a read-only loop device.
    let after = std::fs::read(&img).unwrap();
    assert_eq!(before.len(), after.len());
    assert_ne!(before, after, "the test's own damage is there");
    assert_eq!(loops_of(&img), "");
}

/// A process that has `image` open on fd 3 and sleeps.
fn holder(image: &Path) -> Child {
    Command::new("sh")
        .args(["-c", "exec 3<\"$1\"; exec sleep 60", "sh"])
        .arg(image)
        .spawn()
        .unwrap()
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn another_process_holding_the_image_is_named_in_the_refusal() {
    let cli = Cli::new();
    let img = cli.path().join("held.img");
    super::blank(&img, super::MIB);
    let h = Kill(holder(&img));
    let pid = h.0.id();
    // Wait until the shell has opened it and become sleep.
    let comm = format!("/proc/{pid}/comm");
    for _ in 0..500 {
        if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let dir = cli.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let want = format!("is in use by pid {pid} (sleep); stop it first");
    let err = cli.fails(&["disk", "fsck", img.to_str().unwrap()]);
    assert!(err.contains(&want), "{err}");
    let err = cli.fails(&[
        "disk",
        "mount",
        img.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(err.contains(&want), "{err}");
    // Through another name of the same file too.
    let link = cli.path().join("link.img");
    std::os::unix::fs::symlink(&img, &link).unwrap();
    let err = cli.fails(&["disk", "fsck", link.to_str().unwrap()]);
    assert!(err.contains(&format!("pid {pid} (sleep)")), "{err}");
    drop(h);
    // Let go: the refusal is gone (what remains is that an empty image has no filesystem).
    let err = cli.fails(&["disk", "fsck", img.to_str().unwrap()]);
    assert!(!err.contains("in use"), "{err}");
}

#[test]
fn a_running_vm_of_ours_is_named_in_the_refusal() {
    let Some(ch) = crate::support::vmm::backend::real_or_skip("disks holder") else {
        return;
    };
    let _cpu = crate::support::cpu_busy();
    let cli = Cli::new().ch_bin(&ch.bin);
    let img = cli.path().join("vm.img");
    super::blank(&img, super::MIB);
    cli.define_toml(
        "rescued",
        &format!(
            "[cpus]\nboot = 1\n\n[memory]\nsize = \"128M\"\n\n[boot]\nkernel = {:?}\n\
             cmdline = \"console=ttyS0 panic=0\"\n\n[[disks]]\npath = {img:?}\n",
            ch.kernel
        ),
    );
    cli.ok(&["vm", "start", "rescued"]);
    let pid = cli.pid("rescued").expect("VMM pid");
    let err = cli.fails(&["disk", "fsck", img.to_str().unwrap()]);
    assert!(
        err.contains(&format!(
            "is in use by VM rescued (pid {pid}, cloud-hyperviso"
        )),
        "{err}"
    );
    cli.ok(&["vm", "stop", "rescued", "--force", "--yes"]);
    let err = cli.fails(&["disk", "fsck", img.to_str().unwrap()]);
    assert!(!err.contains("in use"), "{err}");
}

/// A VMM that has not opened the disk (the test double never does) still holds it: its VM's
/// definition lists the image and the VMM runs. A link to the image names it too.
#[test]
fn a_vm_whose_definition_lists_the_image_holds_it_while_its_vmm_runs() {
    let cli = Cli::double();
    let img = cli.path().join("listed.img");
    super::blank(&img, super::MIB);
    let link = cli.path().join("other-name.img");
    std::os::unix::fs::symlink(&img, &link).unwrap();
    let kernel = cli.fake_kernel();
    cli.define_toml(
        "listed",
        &format!(
            "[cpus]\nboot = 1\n\n[memory]\nsize = \"512M\"\n\n[boot]\nkernel = {kernel:?}\n\n\
             [[disks]]\npath = {link:?}\n"
        ),
    );
    cli.ok(&["vm", "start", "listed"]);
    let pid = cli.pid("listed").expect("VMM pid");
    let err = cli.fails(&["disk", "fsck", img.to_str().unwrap()]);
    assert!(
        err.contains(&format!("is in use by VM listed (pid {pid}, ch_double)")),
        "{err}"
    );
    cli.ok(&["vm", "stop", "listed", "--force", "--yes"]);
    let err = cli.fails(&["disk", "fsck", img.to_str().unwrap()]);
    assert!(!err.contains("in use"), "{err}");
}

#[test]
fn without_root_mounting_is_refused_clearly() {
    let cli = Cli::new();
    let img = cli.path().join("x.img");
    super::blank(&img, super::MIB);
    if rustix::process::geteuid().is_root() {
        // As root, drop to nobody for this one command.
        if !have("not_root", &[("setpriv", "util-linux")]) {
            return;
        }
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_phyllome"))
            .args(["disk", "umount", "/tmp"])
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("`disk umount` needs root"), "{err}");
    } else {
        let err = cli.fails(&["disk", "umount", cli.path().to_str().unwrap()]);
        assert!(err.contains("`disk umount` needs root"), "{err}");
    }
}
