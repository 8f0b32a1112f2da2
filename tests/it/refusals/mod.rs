//! Definitions that would hurt the host are refused at `vm define`, `vm import` and `vm edit`
//! (exit 4, nothing saved, the field and the fix named): a disk the host uses (its root, a
//! mounted or swapped-on device, a disk holding one, found through `/dev/disk/by-*` links),
//! a serial or console file that exists, a disk another VM writes (through links too),
//! memory above the host's; `--force` lets the owner overwrite the file or overcommit.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::Cli;

/// Runs `args`, which must be refused: exit 4; returns stderr.
fn refused(cli: &Cli, args: &[&str]) -> String {
    let out = cli.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "{args:?}:\n{stderr}");
    assert!(stderr.contains("nothing was saved"), "{args:?}:\n{stderr}");
    stderr
}

/// Runs `args`, which must succeed; returns stdout and stderr.
fn accepted(cli: &Cli, args: &[&str]) -> (String, String) {
    let out = cli.run(args);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{args:?}:\n{}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

fn saved(cli: &Cli, name: &str) -> bool {
    cli.state.join(format!("vms/{name}.toml")).exists()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn link(target: &str, at: &Path) {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, at).unwrap();
}

/// A block device node; false where this user may not make one.
fn mknod(at: &Path, major: u32, minor: u32) -> bool {
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    Command::new("mknod")
        .arg(at)
        .args(["b", &major.to_string(), &minor.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// A host tree with block devices as the kernel shows them: sdz (8:0) whose partition sdz1
/// is mounted on /data and reached by `/dev/disk/by-id/ata-DISK`; sdy (8:16) whose
/// partition sdy1 holds the device-mapper volume dm-0 (253:0), mounted on /home by its
/// `/dev/mapper` name as btrfs does (an anonymous device number); sdv, mounted the same way
/// on `/srv/my data` by a label with a space (both escaped in mountinfo); sdw used as swap;
/// sdx unused. None when device nodes cannot be made here.
fn block_host(cli: &mut Cli) -> Option<PathBuf> {
    let root = cli.path().join("blockhost");
    let devs: [(&str, Option<&str>, u32, u32); 8] = [
        ("sdz", None, 8, 0),
        ("sdz1", Some("sdz"), 8, 1),
        ("sdy", None, 8, 16),
        ("sdy1", Some("sdy"), 8, 17),
        ("dm-0", None, 253, 0),
        ("sdw", None, 8, 48),
        ("sdx", None, 8, 32),
        ("sdv", None, 8, 64),
    ];
    for (name, disk, major, minor) in devs {
        let dir = match disk {
            Some(d) => format!("devices/virtual/block/{d}/{name}"),
            None => format!("devices/virtual/block/{name}"),
        };
        write(
            &root.join("sys").join(&dir).join("dev"),
            &format!("{major}:{minor}\n"),
        );
        if disk.is_some() {
            write(&root.join("sys").join(&dir).join("partition"), "1\n");
        }
        link(
            &format!("../../{dir}"),
            &root.join(format!("sys/class/block/{name}")),
        );
        if !mknod(&root.join(format!("dev/{name}")), major, minor) {
            return None;
        }
    }
    link(
        "../../../dm-0",
        &root.join("sys/devices/virtual/block/sdy/sdy1/holders/dm-0"),
    );
    link("../../sdz", &root.join("dev/disk/by-id/ata-DISK"));
    link("../dm-0", &root.join("dev/mapper/home"));
    link("../../sdv", &root.join("dev/disk/by-label/My Data"));
    write(
        &root.join("proc/self/mountinfo"),
        "30 1 8:1 / /data rw,relatime shared:1 - ext4 /dev/sdz1 rw\n\
         31 1 0:40 / /home rw,relatime shared:2 - btrfs /dev/mapper/home rw\n\
         32 1 0:41 / /srv/my\\040data rw,relatime shared:3 - btrfs /dev/disk/by-label/My\\040Data rw\n",
    );
    write(
        &root.join("proc/swaps"),
        "Filename\tType\tSize\tUsed\tPriority\n/dev/sdw  partition\t8388604\t0\t-2\n",
    );
    write(&root.join("img/vm.img"), "");
    cli.host_root = Some(root.clone());
    Some(root)
}

#[test]
fn disks_the_host_uses_are_refused_through_links_partitions_and_holders() {
    let mut cli = Cli::new();
    if block_host(&mut cli).is_none() {
        eprintln!("skipped: cannot make device nodes here (mknod needs CAP_MKNOD)");
        return;
    }
    fn define(disk: &str) -> Vec<&str> {
        vec!["vm", "define", "x", "--kernel", "/k", "--disk", disk]
    }
    let cases = [
        (
            "/dev/disk/by-id/ata-DISK",
            "disks[0].path: /dev/disk/by-id/ata-DISK (sdz) holds sdz1, mounted on /data; the host needs it",
        ),
        ("/dev/sdz1", "disks[0].path: /dev/sdz1 (sdz1) is mounted on /data;"),
        (
            "/dev/sdy",
            "disks[0].path: /dev/sdy (sdy) holds dm-0, mounted on /home;",
        ),
        ("/dev/mapper/home", "(dm-0) is mounted on /home;"),
        ("/dev/sdw", "disks[0].path: /dev/sdw (sdw) is used as swap;"),
        (
            "/dev/sdv",
            "disks[0].path: /dev/sdv (sdv) is mounted on /srv/my data;",
        ),
    ];
    for (disk, want) in cases {
        let err = refused(&cli, &define(disk));
        assert!(err.contains(want), "{disk}:\n{err}");
        assert!(
            err.contains("give the VM an image file or a disk the host does not use"),
            "{err}"
        );
        assert!(!saved(&cli, "x"), "{disk}: nothing saved");
    }
    // A disk the host does not use, and an image file, are the VM's to have.
    accepted(&cli, &define("/dev/sdx"));
    accepted(
        &cli,
        &[
            "vm",
            "define",
            "y",
            "--kernel",
            "/k",
            "--disk",
            "/img/vm.img",
        ],
    );
}

/// This machine's own root filesystem, on the real `/`: its block device is refused.
#[test]
fn the_hosts_root_disk_is_refused() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mounts = phyllome::host::mountinfo::parse(&mountinfo);
    let source = phyllome::host::mountinfo::mounted_at(&mounts, "/").map(|m| m.source.clone());
    let is_block = |p: &str| {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device())
    };
    let Some(source) = source.filter(|s| is_block(s)) else {
        eprintln!("skipped: / is not on a block device here");
        return;
    };
    let cli = Cli::new();
    let err = refused(
        &cli,
        &["vm", "define", "x", "--kernel", "/k", "--disk", &source],
    );
    assert!(
        err.contains(&format!("disks[0].path: {source} ("))
            && err.contains("mounted on / (the host's root)"),
        "{err}"
    );
    assert!(!saved(&cli, "x"));
}

#[test]
fn an_existing_serial_or_console_file_is_refused_unless_forced() {
    let cli = Cli::new();
    let existing = cli.path().join("existing.log");
    std::fs::write(&existing, "keep me\n").unwrap();
    let e = existing.display().to_string();
    for field in ["serial", "console"] {
        let toml = cli.path().join(format!("{field}.toml"));
        let text =
            format!("{field} = \"file={e}\"\n[memory]\nsize = \"1G\"\n[boot]\nkernel = \"/k\"\n");
        std::fs::write(&toml, text).unwrap();
        let from = toml.to_str().unwrap();
        let err = refused(&cli, &["vm", "define", field, "--from", from]);
        assert!(
            err.contains(&format!("{field}: {e} exists and Cloud Hypervisor empties it when the VM starts; name a new file, or save with --force")),
            "{err}"
        );
        assert!(!saved(&cli, field));
        let (out, warn) = accepted(&cli, &["vm", "define", field, "--from", from, "--force"]);
        assert!(out.contains(&format!("Defined VM {field}")), "{out}");
        assert!(
            warn.contains(&format!(
                "warning: {field}: {e} exists and will be overwritten"
            )),
            "{warn}"
        );
    }
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me\n");
    // A VM's own file, there since it ran, is no stranger's: replacing the VM keeps it.
    accepted(
        &cli,
        &[
            "vm",
            "define",
            "serial",
            "--from",
            cli.path().join("serial.toml").to_str().unwrap(),
            "--replace",
            "--vcpus",
            "2",
        ],
    );
}

#[test]
fn an_import_whose_serial_file_exists_is_refused_unless_forced() {
    let cli = Cli::new();
    let victim = cli.path().join("passwd");
    std::fs::write(&victim, "root:x:0:0::/root:/bin/sh\n").unwrap();
    let json = serde_json::json!({
        "cpus": {"boot_vcpus": 1, "max_vcpus": 1},
        "memory": {"size": 1u64 << 30},
        "payload": {"kernel": "/k"},
        "serial": {"mode": "File", "file": victim},
    });
    let file = cli.path().join("ch.json");
    std::fs::write(&file, json.to_string()).unwrap();
    let f = file.to_str().unwrap();
    let err = refused(&cli, &["vm", "import", f]);
    assert!(
        err.contains(&format!("serial: {} exists", victim.display())),
        "{err}"
    );
    assert!(!saved(&cli, "ch"));
    accepted(&cli, &["vm", "import", f, "--force"]);
    assert!(saved(&cli, "ch"));
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root:x:0:0::/root:/bin/sh\n"
    );
}

#[test]
fn a_disk_of_another_vm_is_refused_through_links() {
    let cli = Cli::new();
    let img = cli.path().join("shared.img");
    std::fs::write(&img, "").unwrap();
    let alias = cli.path().join("alias.img");
    std::os::unix::fs::symlink(&img, &alias).unwrap();
    let (i, a) = (img.to_str().unwrap(), alias.to_str().unwrap());
    accepted(&cli, &["vm", "define", "a", "--kernel", "/k", "--disk", i]);
    let err = refused(&cli, &["vm", "define", "b", "--kernel", "/k", "--disk", a]);
    assert!(
        err.contains(&format!(
            "disks[0].path: {a} is also a disk of VM a (as {i}); two writers corrupt it: make both readonly"
        )),
        "{err}"
    );
    assert!(!saved(&cli, "b"));
    // Read-only on both sides is sharing, not corruption.
    let ro = |p: &str| format!("{p},readonly");
    accepted(
        &cli,
        &[
            "vm",
            "define",
            "a",
            "--kernel",
            "/k",
            "--disk",
            &ro(i),
            "--replace",
        ],
    );
    accepted(
        &cli,
        &["vm", "define", "b", "--kernel", "/k", "--disk", &ro(a)],
    );
}

#[test]
fn memory_above_the_hosts_is_refused_unless_forced() {
    let mut cli = Cli::new();
    let root = cli.path().join("smallhost");
    write(
        &root.join("proc/meminfo"),
        "MemTotal:        4096000 kB\nMemAvailable:    2048000 kB\n",
    );
    cli.host_root = Some(root);
    let define = ["vm", "define", "big", "--kernel", "/k", "--memory", "8G"];
    let err = refused(&cli, &define);
    assert!(
        err.contains("memory.size: 8G is more than this host's 4000M of memory; the host would swap or kill processes: give at most 4000M, or save with --force"),
        "{err}"
    );
    assert!(!saved(&cli, "big"));
    let mut forced = define.to_vec();
    forced.push("--force");
    let (_, warn) = accepted(&cli, &forced);
    assert!(
        warn.contains("warning: memory.size: 8G is more than this host's"),
        "{warn}"
    );
    assert!(saved(&cli, "big"));
}

/// An old version comes back only if today's host can take it.
#[test]
fn a_rollback_to_a_version_that_would_hurt_the_host_is_refused_unless_forced() {
    let mut cli = Cli::new();
    let root = cli.path().join("smallhost");
    write(&root.join("proc/meminfo"), "MemTotal:        4096000 kB\n");
    cli.host_root = Some(root);
    let define = [
        "vm", "define", "web", "--kernel", "/k", "--memory", "8G", "--force",
    ];
    accepted(&cli, &define);
    accepted(
        &cli,
        &[
            "vm",
            "define",
            "web",
            "--kernel",
            "/k",
            "--memory",
            "1G",
            "--replace",
        ],
    );
    let err = refused(&cli, &["vm", "rollback", "web", "--yes"]);
    assert!(
        err.contains("memory.size: 8G is more than this host's"),
        "{err}"
    );
    let text = std::fs::read_to_string(cli.state.join("vms/web.toml")).unwrap();
    assert!(text.contains("size = \"1G\""), "nothing restored: {text}");
    accepted(&cli, &["vm", "rollback", "web", "--yes", "--force"]);
    let text = std::fs::read_to_string(cli.state.join("vms/web.toml")).unwrap();
    assert!(text.contains("size = \"8G\""), "{text}");
}

/// `vm edit` on a terminal: the edited text is refused like a define, and kept for the user.
#[test]
fn an_edit_that_would_hurt_the_host_is_not_saved() {
    use crate::support::pty::Pty;
    let mut cli = Cli::new();
    let root = cli.path().join("smallhost");
    write(&root.join("proc/meminfo"), "MemTotal:        4096000 kB\n");
    cli.host_root = Some(root);
    accepted(
        &cli,
        &["vm", "define", "web", "--kernel", "/k", "--memory", "1G"],
    );
    let before = std::fs::read_to_string(cli.state.join("vms/web.toml")).unwrap();
    let editor = cli.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/size = \"1G\"/size = \"64G\"/' \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut pty = Pty::open();
    let slave = pty.slave();
    let mut cmd = cli.cmd(&["vm", "edit", "web"]);
    cmd.env("VISUAL", &editor)
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave);
    let mut child = cmd.spawn().unwrap();
    pty.wait_for("Edit again? [Y/n]");
    pty.type_line("n");
    let status = child.wait().unwrap();
    let seen = pty.wait_for("Not saved");
    assert_eq!(status.code(), Some(4), "{seen}");
    assert!(
        seen.contains("memory.size: 64G is more than this host's"),
        "{seen}"
    );
    assert!(seen.contains("your text is kept in"), "{seen}");
    let after = std::fs::read_to_string(cli.state.join("vms/web.toml")).unwrap();
    assert_eq!(after, before, "nothing saved");
}

mod console;
