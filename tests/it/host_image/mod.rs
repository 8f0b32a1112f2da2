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
//! One boot of the kernel and initrd per run (the ISO's two boots are in `iso`): TCG on two
//! shared cores takes minutes to bring systemd up.
//! It says `SKIPPED:` with the reason when the image cannot be built or booted here (not root
//! and no cached root, no qemu, a build that fails); under `CI` only a missing prerequisite
//! (not root without a cache) may skip, and a failing build fails.

mod build;
mod butane;
mod checks;
mod iso;
mod power;

use build::{disks, image_or_skip};
use checks::{
    gpu_of, managed_gpu, medium_and_data, mentions_group, ssh_lands_in_the_console, state_check,
};

use crate::support::qemu::{lock_guest, Guest, GuestOptions};

use std::sync::Mutex;
use std::time::{Duration, Instant};

const VM: &str = "e2e";
/// One TCG guest at a time: the kernel+initrd test and the ISO boots take turns.
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
    // The image installs a man page per command and bash completion (issue: conventions).
    let man = guest
        .run_ok("man -w phyllome-vm-start && bash -c '. /usr/share/bash-completion/completions/phyllome && complete -p phyllome'")
        .expect("man pages and completion in the image");
    assert!(
        man.contains("/man1/phyllome-vm-start.1") && man.contains("-F _phyllome phyllome"),
        "{man}"
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
    // On the data disk, the host's state check passes (the ISO boots, with none, see it warn).
    let state = state_check(&mut guest);
    assert_eq!(state["status"], "pass", "{state}");
    // The console waited for that mount before it read the host: the end of its overview
    // has the check passing on ext4, not the RAM root underneath.
    guest.console().send(b"G").unwrap();
    guest
        .console()
        .wait_screen(Duration::from_secs(30), |s| {
            s.contains("/var/lib/phyllome is on ext4")
        })
        .unwrap_or_else(|e| panic!("the console read the host before the data disk: {e}"));
    guest.console().send(b"g").unwrap();
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

    // The console's lines are in the journal (the VM start of step 2).
    power::console_logs_to_the_journal(&mut guest, VM);
    // 5. Power off from the console: the VM (running again) stopped first, then the host.
    power::power_off_from_the_console(&mut guest, &scratch.path().join("data.img"), VM);
}
