//! The host image end to end: `host-image/build.sh` builds it (cached), qemu boots it under
//! software emulation with the desktop GPU topology (a root port holding VGA + HDA, one IOMMU
//! group), and the test plays a serial terminal on ttyS0, where the image runs the console in
//! place of a login prompt. Real systemd, real dbus, real cgroups: VMs are the transient units the
//! console asks systemd for. There is no KVM inside that guest, so the image's `cloud-hypervisor`
//! is the VMM test double (`examples/ch_double`), for this test only.
//!
//! The test's own channel is a root shell on ttyS1, laid over the image through build.sh's
//! `OVERLAY` (the images build.sh makes without it have no such thing). Two small disks stand
//! for the boot medium (label `PHYLLOME`, carrying SSH keys) and the data disk (label
//! `PHYLLOME-DATA`, holding the VM definitions).
//!
//! One boot per run: TCG on two shared cores takes minutes to bring systemd up.
//! It says `SKIPPED:` with the reason when the image cannot be built or booted here (not root
//! and no cached root, no qemu, a build that fails); under `CI` only a missing prerequisite
//! (not root without a cache) may skip, and a failing build fails.

use crate::support::qemu::{lock_guest, Guest, GuestOptions, GUEST_READY_MARKER};
use crate::support::vmm::double as vmm_double;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const VM: &str = "e2e";

/// The test's command channel on ttyS1, in the shape the qemu harness drives (raw, no echo,
/// the ready marker, then commands read by `sh` from a pipe). The UART settings make every
/// received byte raise an interrupt: TCG's receive timeout is unreliable (see support::qemu).
fn probe_unit() -> String {
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

struct Image {
    vmlinuz: PathBuf,
    initrd: PathBuf,
    cmdline: String,
    medium_key: PathBuf,
}

fn skip(reason: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "\n==========\nSKIPPED: host image end-to-end test: {reason}\n==========\n"
    );
}

fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn write_if_changed(path: &Path, data: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(data) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// Builds (or finds up to date) the test image, or `None` after a skip notice.
fn image_or_skip() -> Option<Image> {
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
        .env("NO_ISO", "1")
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
    })
}

/// The VGA function's address and IOMMU group, read in the guest.
fn gpu_of(guest: &mut Guest) -> (String, u64) {
    let out = guest
        .run_ok(
            "for d in /sys/bus/pci/devices/*; do \
               if [ \"$(cat $d/class)\" = 0x030000 ]; then \
                 echo \"${d##*/} $(basename $(readlink $d/iommu_group))\"; fi; done",
        )
        .unwrap();
    let line = out
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no VGA: {out}"));
    let (addr, group) = line.split_once(' ').unwrap();
    (addr.to_owned(), group.trim().parse().unwrap())
}

/// True if `screen` says "group N" for this `id` (any case, "group: N", "group #N", ...).
fn mentions_group(screen: &str, id: u64) -> bool {
    let lower = screen.to_lowercase();
    lower.match_indices("group").any(|(i, w)| {
        let rest = lower[i + w.len()..].trim_start_matches([' ', ':', '#', '=']);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse() == Ok(id)
    })
}

static ONE_BOOT: Mutex<()> = Mutex::new(());

#[test]
fn host_image_boots_into_the_console_and_runs_vms_under_systemd() {
    let _one = ONE_BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let Some(image) = image_or_skip() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let opts = GuestOptions {
        memory_mib: 2048,
        qemu_args: disks(scratch.path(), &image.medium_key),
        // A panic ends qemu (-no-reboot) instead of waiting out the boot timeout; under a
        // loaded TCG the kernel's check of the timer through the remapped IO-APIC can time
        // out and panic, which real hardware never sees.
        kernel_args: vec!["panic=-1".into(), "no_timer_check".into()],
        terminal_size: (30, 100),
        // systemd under TCG on two shared cores.
        boot_timeout: Duration::from_secs(600),
        ..GuestOptions::default()
    };
    let started = Instant::now();
    let guest = Guest::boot_image(&image.vmlinuz, &image.initrd, &image.cmdline, &opts)
        .unwrap_or_else(|e| panic!("the image did not boot: {e}"));
    let guest = Mutex::new(guest);
    let mut guest = lock_guest(&guest);
    eprintln!("ttyS1 channel up after {:.1?}", guest.boot_time);

    // 1. The console's first screen, with no login, naming the GPU and its group.
    let (gpu_addr, gpu_group) = gpu_of(&mut guest);
    let short_addr = gpu_addr.trim_start_matches("0000:").to_owned();
    let first = guest
        .console()
        .wait_screen(Duration::from_secs(300), |s| {
            s.contains("[Overview]") && s.contains(&short_addr) && mentions_group(s, gpu_group)
        })
        .unwrap_or_else(|e| {
            let units = guest
                .run("systemctl status serial-getty@ttyS0.service --no-pager -l 2>&1 | tail -n 20")
                .map(|o| o.stdout)
                .unwrap_or_default();
            panic!(
                "no first screen showing {gpu_addr} in group {gpu_group}: {e}\n{units}\n{}",
                guest.diagnostics()
            )
        });
    eprintln!(
        "first screen {:.1?} after qemu started:\n{first}",
        started.elapsed()
    );
    assert!(
        !first.to_lowercase().contains("login:"),
        "a login prompt on the console line:\n{first}"
    );
    let who = guest.run_ok("ps -o user=,args= -C phyllome").expect("ps");
    assert!(
        who.lines().any(|l| l.starts_with("root")),
        "the console runs as root: {who}"
    );
    // The data disk holds /var/lib/phyllome (mounted by fstab, by label, when it shows up).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mount = loop {
        let out = guest
            .run("findmnt -n -o FSTYPE,LABEL /var/lib/phyllome")
            .unwrap();
        if out.code == 0 || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    if mount.stdout.split_whitespace().collect::<Vec<_>>() != ["ext4", "PHYLLOME-DATA"] {
        let why = guest
            .run(
                "systemctl status var-lib-phyllome.mount --no-pager 2>&1; ls -l /dev/disk/by-label",
            )
            .map(|o| o.stdout)
            .unwrap_or_default();
        panic!("/var/lib/phyllome is not the PHYLLOME-DATA disk: {mount:?}\n{why}");
    }
    let root_mode = guest.run_ok("stat -c %a /").unwrap();
    assert_eq!(
        root_mode.trim(),
        "755",
        "/ in RAM must not be world-writable"
    );
    // The autostart unit ran at boot (no VM is marked autostart: it starts none and succeeds).
    let autostart = guest
        .run("systemctl is-active phyllome-autostart.service")
        .unwrap();
    assert_eq!(autostart.stdout.trim(), "active", "{autostart:?}");

    // 2. A VM defined on the host, started from the console: a transient unit of the real
    // systemd, in its own cgroup.
    guest
        .run_ok(&format!(
            "mkdir -p /var/lib/phyllome/vms && echo not-a-kernel >/var/lib/phyllome/vmlinuz && \
             printf '[cpus]\\nboot = 1\\n\\n[memory]\\nsize = \"256M\"\\n\\n[boot]\\n\
             kernel = \"/var/lib/phyllome/vmlinuz\"\\ncmdline = \"console=ttyS0\"\\n' \
             >/var/lib/phyllome/vms/{VM}.toml"
        ))
        .unwrap();
    let console = guest.console();
    console.send(b"5").unwrap();
    console.send(b"r").unwrap();
    console
        .wait_screen(Duration::from_secs(120), |s| {
            s.contains(VM) && s.contains("Stopped")
        })
        .unwrap_or_else(|e| panic!("the VM list never showed {VM} stopped: {e}"));
    console.send(b"s").unwrap();
    let running = console
        .wait_screen(Duration::from_secs(180), |s| s.contains("Running"))
        .unwrap_or_else(|e| panic!("{VM} never showed Running: {e}\n{}", guest.diagnostics()));
    eprintln!("VM started from the console:\n{running}");
    let unit = format!("phyllome-vm-{VM}.service");
    let state = guest
        .run_ok(&format!(
            "systemctl show -p ActiveState -p ControlGroup -p MainPID {unit}"
        ))
        .unwrap();
    assert!(state.contains("ActiveState=active"), "{state}");
    assert!(
        state.contains(&format!("ControlGroup=/system.slice/{unit}")),
        "{state}"
    );
    let cgroup = guest
        .run_ok(&format!(
            "for p in $(cat /sys/fs/cgroup/system.slice/{unit}/cgroup.procs); do cat /proc/$p/comm; done"
        ))
        .unwrap();
    assert!(
        cgroup.contains("cloud-hyperviso"),
        "the VMM is in the unit's cgroup: {cgroup}"
    );

    // 3. Killing the console leaves the VM's unit running; the console comes back by itself
    // and lists the running VM.
    let before = guest
        .run_ok("systemctl show -p MainPID --value serial-getty@ttyS0.service")
        .unwrap();
    let before = before.trim().to_owned();
    guest.run_ok(&format!("kill -KILL {before}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = guest
            .run_ok("systemctl show -p MainPID --value serial-getty@ttyS0.service")
            .unwrap();
        let now = now.trim();
        if now != before && now != "0" {
            break;
        }
        assert!(Instant::now() < deadline, "the console did not come back");
        std::thread::sleep(Duration::from_millis(500));
    }
    let active = guest.run(&format!("systemctl is-active {unit}")).unwrap();
    assert_eq!(
        active.stdout.trim(),
        "active",
        "the VM died with the console"
    );
    let console = guest.console();
    console
        .wait_screen(Duration::from_secs(300), |s| s.contains("[Overview]"))
        .unwrap_or_else(|e| panic!("the console did not come back: {e}"));
    console.send(b"5").unwrap();
    console
        .wait_screen(Duration::from_secs(120), |s| {
            s.contains(VM) && s.contains("Running")
        })
        .unwrap_or_else(|e| panic!("the new console does not list {VM} running: {e}"));

    // The VM stops from the CLI too, and its unit goes away.
    guest
        .run_ok(&format!("phyllome vm stop --force --yes {VM}"))
        .unwrap();
    let gone = guest.run(&format!("systemctl is-active {unit}")).unwrap();
    assert_ne!(gone.stdout.trim(), "active", "{gone:?}");

    managed_gpu(&mut guest, &gpu_addr);
    ssh_lands_in_the_console(&mut guest);
    medium_and_data(&mut guest, &image.medium_key);
}

/// The driver bound to `addr`, or "none".
fn driver(guest: &mut Guest, addr: &str) -> String {
    guest
        .run_ok(&format!(
            "basename $(readlink /sys/bus/pci/devices/{addr}/driver) 2>/dev/null || echo none"
        ))
        .unwrap()
        .trim()
        .to_owned()
}

/// Whether the frame buffer console is bound (`1`), unbound (`0`) or gone (empty).
fn fbcon_bound(guest: &mut Guest) -> String {
    guest
        .run_ok(
            r#"for v in /sys/class/vtconsole/*; do grep -q "frame buffer" $v/name && cat $v/bind; done; true"#,
        )
        .unwrap()
        .trim()
        .to_owned()
}

/// Step 4, the GPU in a managed VM: while it runs, both functions of its group are on vfio-pci;
/// once it stops they are back on their drivers and fbcon is back.
fn managed_gpu(guest: &mut Guest, gpu_addr: &str) {
    let audio = format!("{}.1", gpu_addr.trim_end_matches(".0"));
    let (gpu_driver, audio_driver) = (driver(guest, gpu_addr), driver(guest, &audio));
    assert_eq!(gpu_driver, "bochs-drm", "before: {gpu_addr}");
    assert_eq!(audio_driver, "snd_hda_intel", "before: {audio}");
    assert_eq!(fbcon_bound(guest), "1", "fbcon before");
    let definition = format!(
        "[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n[boot]\n\
         kernel = \"/var/lib/phyllome/vmlinuz\"\n\n[[vfio]]\naddress = \"{gpu_addr}\"\n"
    );
    guest
        .run_ok(&format!(
            "cat >/var/lib/phyllome/vms/gpu.toml <<'TOML'\n{definition}TOML"
        ))
        .unwrap();
    let started = guest.run("phyllome vm start gpu").unwrap();
    assert_eq!(started.code, 0, "vm start gpu: {started:?}");
    assert_eq!(driver(guest, gpu_addr), "vfio-pci", "{started:?}");
    assert_eq!(driver(guest, &audio), "vfio-pci", "{started:?}");
    let active = guest
        .run_ok("systemctl is-active phyllome-vm-gpu.service")
        .unwrap();
    assert_eq!(active.trim(), "active");
    guest.run_ok("phyllome vm stop --force --yes gpu").unwrap();
    // The supervisor gives the devices back once the VMM has exited.
    let deadline = Instant::now() + Duration::from_secs(120);
    while driver(guest, gpu_addr) != gpu_driver || driver(guest, &audio) != audio_driver {
        assert!(
            Instant::now() < deadline,
            "devices not given back: {} {}",
            driver(guest, gpu_addr),
            driver(guest, &audio)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while fbcon_bound(guest) != "1" {
        assert!(Instant::now() < deadline, "fbcon did not come back");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Root logs in over SSH with the key given at build time only: a command runs as asked, a
/// login without one lands in the console, and a login without the key is refused.
fn ssh_lands_in_the_console(guest: &mut Guest) {
    let ssh =
        "ssh -i /root/.ssh/e2e_key -o StrictHostKeyChecking=no -o BatchMode=yes root@127.0.0.1";
    let deadline = Instant::now() + Duration::from_secs(120);
    let out = loop {
        let out = guest.run(&format!("{ssh} echo over-ssh")).unwrap();
        if out.code == 0 || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(out.stdout.trim(), "over-ssh", "{out:?}");
    let console = guest
        .run(&format!(
            "sleep 50 | timeout 40 {ssh} -tt 2>&1 | grep -c Overview"
        ))
        .unwrap();
    assert_ne!(
        console.stdout.trim(),
        "0",
        "an SSH login shows the console: {console:?}"
    );
    let no_key = guest
        .run(
            "ssh -o StrictHostKeyChecking=no -o PubkeyAuthentication=no -o BatchMode=yes \
             root@127.0.0.1 true",
        )
        .unwrap();
    assert_ne!(no_key.code, 0, "a login without the key: {no_key:?}");
}

/// A key pair in `cache/e2e-key/NAME` (made once), its private half copied into the overlay's
/// `/root/.ssh/NAME` for the guest's own ssh client. Returns the public key's path.
fn key_pair(cache: &Path, overlay: &Path, name: &str) -> PathBuf {
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
fn disks(dir: &Path, medium_key: &Path) -> Vec<String> {
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

/// The boot medium's keys and the data filesystem: keys on the medium log in too, and the VM
/// definitions live on the disk labelled PHYLLOME-DATA.
fn medium_and_data(guest: &mut Guest, medium_pub: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let keys = loop {
        let out = guest.run("cat /run/phyllome/authorized_keys").unwrap();
        if out.code == 0 || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let expected = std::fs::read_to_string(medium_pub).unwrap();
    assert_eq!(keys.stdout.trim(), expected.trim(), "{keys:?}");
    let out = guest
        .run(
            "ssh -i /root/.ssh/medium -o StrictHostKeyChecking=no -o BatchMode=yes \
             root@127.0.0.1 echo medium-key",
        )
        .unwrap();
    if out.stdout.trim() != "medium-key" {
        let why = guest
            .run(
                "ls -la /run/phyllome /root/.ssh; sshd -T | grep -i authorizedkeys; \
                 journalctl -u ssh --no-pager -n 20",
            )
            .map(|o| format!("{}{}", o.stdout, o.stderr))
            .unwrap_or_default();
        panic!("the medium's key does not log in: {out:?}\n{why}");
    }
    let on_disk = guest.run_ok("ls /var/lib/phyllome/vms").unwrap();
    assert!(on_disk.contains("e2e.toml"), "{on_disk}");
}

/// The Fedora CoreOS variant takes its files from host-image/rootfs/ (Butane's `local:`), so
/// the two images stay in step: every file it names exists, and every unit, drop-in and script
/// of the Debian image that is not Debian's own business is in it.
#[test]
fn butane_variant_names_the_debian_images_files() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bu = std::fs::read_to_string(repo.join("host-image/butane/phyllome.bu")).unwrap();
    // Inputs the user supplies before running butane (see the file's header).
    let supplied = [
        "host-image/butane/phyllome",
        "host-image/butane/authorized_keys",
    ];
    let named: Vec<&str> = bu
        .lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("- ");
            l.strip_prefix("local: ")
                .or_else(|| l.strip_prefix("contents_local: "))
                .or_else(|| l.starts_with("host-image/").then_some(l))
        })
        .collect();
    assert!(named.len() >= 10, "{named:?}");
    for path in &named {
        assert!(
            supplied.contains(path) || repo.join(path).is_file(),
            "{path} named by phyllome.bu does not exist"
        );
    }
    // Debian-only: networkd (CoreOS has NetworkManager), sshd host keys (CoreOS makes them),
    // hosts/fstab (CoreOS installs to disk), the boot-medium key reader (CoreOS has Ignition).
    let debian_only = [
        "etc/systemd/network/80-wired.network",
        "etc/systemd/system/ssh.service.d/phyllome.conf",
        "etc/systemd/system/phyllome-keys.service",
        "usr/local/sbin/phyllome-keys",
        "etc/hosts",
        "etc/fstab",
    ];
    let rootfs = repo.join("host-image/rootfs");
    let mut stack = vec![rootfs.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path
                    .strip_prefix(&rootfs)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let full = format!("host-image/rootfs/{rel}");
                assert!(
                    debian_only.contains(&rel.as_str()) || named.contains(&full.as_str()),
                    "{full} is in the Debian image but not in host-image/butane/phyllome.bu"
                );
            }
        }
    }
}
