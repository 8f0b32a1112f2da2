//! Building the test image: build.sh with the VMM double, the ttyS1 channel and the SSH keys,
//! the disks the test machine gets, and the skip policy.

use crate::support::qemu::GUEST_READY_MARKER;
use crate::support::vmm::double as vmm_double;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The test's command channel on ttyS1, in the shape the qemu harness drives (raw, no echo,
/// the ready marker, then commands read by `sh` from a pipe). The UART settings make every
/// received byte raise an interrupt: TCG's receive timeout is unreliable (see support::qemu).
pub(super) fn probe_unit() -> String {
    format!(
        "[Unit]\n\
         Description=End-to-end test command channel on ttyS1 (test images only)\n\
         After=systemd-user-sessions.service\n\
         Before=getty.target\n\n\
         [Service]\n\
         ExecStartPre=/bin/sh -c 'for t in ttyS0 ttyS1; do echo 1 >/sys/class/tty/$t/rx_trig_bytes; done'\n\
         ExecStart=/bin/sh -c 'stty raw -echo; echo {GUEST_READY_MARKER}; while true; do cat | sh; done'\n\
         StandardInput=tty\n\
         StandardOutput=tty\n\
         TTYPath=/dev/ttyS1\n\
         Restart=always\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

pub(super) struct Image {
    pub(super) vmlinuz: PathBuf,
    pub(super) initrd: PathBuf,
    pub(super) cmdline: String,
    pub(super) medium_key: PathBuf,
    /// The hybrid ISO of the same root, for the BIOS and UEFI boots.
    pub(super) iso: PathBuf,
}

pub(super) fn skip(reason: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "\n==========\nSKIPPED: host image end-to-end test: {reason}\n==========\n"
    );
}

pub(super) fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

pub(super) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub(super) fn write_if_changed(path: &Path, data: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(data) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// Builds (or finds up to date) the test image, or `None` after a skip notice.
pub(super) fn image_or_skip() -> Option<Image> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache = std::env::var_os("PHYLLOME_IMAGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".cache/host-image"));
    if Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_err()
    {
        // run.sh installs qemu (test-kernel/prepare.sh): under CI its absence is a broken setup.
        assert!(!under_ci(), "qemu-system-x86_64 is missing under CI");
        skip("qemu-system-x86_64 is not installed");
        return None;
    }
    let has_base = std::fs::read_dir(&cache)
        .map(|d| {
            d.flatten().any(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with("base-") && !n.ends_with(".tmp")
            })
        })
        .unwrap_or(false);
    if !is_root() && !has_base {
        skip("building the image's root needs root (mmdebstrap keeps file owners), and none is cached");
        return None;
    }

    // The VMM double as the image's cloud-hypervisor; the ttyS1 channel as the overlay.
    let ch_dir = cache.join("e2e-ch");
    let double = std::fs::read(vmm_double::ch_double_path()).unwrap();
    write_if_changed(&ch_dir.join("cloud-hypervisor"), &double);
    let exec = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(ch_dir.join("cloud-hypervisor"), exec).unwrap();
    let overlay = cache.join("e2e-overlay");
    let unit_dir = overlay.join("etc/systemd/system");
    write_if_changed(
        &unit_dir.join("phyllome-test-probe.service"),
        probe_unit().as_bytes(),
    );
    let wants = unit_dir.join("multi-user.target.wants/phyllome-test-probe.service");
    if std::fs::symlink_metadata(&wants).is_err() {
        std::fs::create_dir_all(wants.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("/etc/systemd/system/phyllome-test-probe.service", &wants)
            .unwrap();
    }

    // Key pairs for the SSH checks: "e2e_key" given at build time (SSH_KEYS), "medium" on the
    // boot medium.
    let key = key_pair(&cache, &overlay, "e2e_key");
    let medium_key = key_pair(&cache, &overlay, "medium");

    let out = cache.join("e2e");
    let started = Instant::now();
    let build = Command::new("sh")
        .arg(repo.join("host-image/build.sh"))
        .arg(&out)
        .env("PHYLLOME_BIN", env!("CARGO_BIN_EXE_phyllome"))
        .env("CH_DIR", &ch_dir)
        .env("OVERLAY", &overlay)
        .env("SSH_KEYS", &key)
        .env("CACHE_DIR", &cache)
        // On the ISO's command line too: a panic ends qemu (-no-reboot) instead of waiting out
        // the boot, and TCG under load can fail the kernel's timer check, as real hardware never
        // does.
        .env("CMDLINE_EXTRA", "panic=-1 no_timer_check")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    if !build.status.success() {
        assert!(!under_ci(), "host-image/build.sh failed under CI:\n{log}");
        skip(&format!("host-image/build.sh failed:\n{log}"));
        return None;
    }
    eprintln!("image built in {:.1?}:\n{log}", started.elapsed());
    let cmdline = std::fs::read_to_string(out.join("cmdline")).unwrap();
    Some(Image {
        vmlinuz: out.join("vmlinuz"),
        initrd: out.join("initrd.img"),
        cmdline: cmdline.trim().to_owned(),
        medium_key,
        iso: out.join("phyllome.iso"),
    })
}

/// A key pair in `cache/e2e-key/NAME` (made once), its private half copied into the overlay's
/// `/root/.ssh/NAME` for the guest's own ssh client. Returns the public key's path.
pub(super) fn key_pair(cache: &Path, overlay: &Path, name: &str) -> PathBuf {
    let key = cache.join("e2e-key").join(name);
    if !key.exists() {
        std::fs::create_dir_all(key.parent().unwrap()).unwrap();
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key)
            .status();
        assert!(matches!(made, Ok(s) if s.success()), "ssh-keygen failed");
    }
    let private = overlay.join("root/.ssh").join(name);
    write_if_changed(&private, &std::fs::read(&key).unwrap());
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    key.with_extension("pub")
}

/// Disks attached to the test machine: a boot medium labelled `PHYLLOME` carrying
/// `phyllome/authorized_keys` (the medium key), and an empty `PHYLLOME-DATA` filesystem for the
/// VM definitions. ext4 both, made without mounting (`mkfs.ext4 -d`).
pub(super) fn disks(dir: &Path, medium_key: &Path) -> Vec<String> {
    let content = dir.join("medium");
    std::fs::create_dir_all(content.join("phyllome")).unwrap();
    std::fs::copy(medium_key, content.join("phyllome/authorized_keys")).unwrap();
    let mkfs = |image: &Path, label: &str, from: Option<&Path>| {
        std::fs::File::create(image)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        let mut cmd = Command::new("mkfs.ext4");
        cmd.args(["-q", "-F", "-L", label]);
        if let Some(from) = from {
            cmd.arg("-d").arg(from);
        }
        let status = cmd.arg(image).status().expect("mkfs.ext4 (e2fsprogs)");
        assert!(status.success(), "mkfs.ext4 {label} failed");
    };
    let medium = dir.join("medium.img");
    let data = dir.join("data.img");
    mkfs(&medium, "PHYLLOME", Some(&content));
    mkfs(&data, "PHYLLOME-DATA", None);
    let mut args = Vec::new();
    for (id, image, ro) in [("medium", &medium, ",readonly=on"), ("data", &data, "")] {
        args.push("-drive".to_owned());
        args.push(format!(
            "file={},format=raw,if=none,id={id}{ro}",
            image.display()
        ));
        args.push("-device".to_owned());
        args.push(format!("virtio-blk-pci,drive={id}"));
    }
    args
}
