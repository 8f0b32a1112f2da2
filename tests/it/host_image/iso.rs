//! The image's hybrid ISO booted as a machine boots it: from a CD on q35, once by SeaBIOS
//! (qemu's BIOS) and once by Debian's OVMF (UEFI), each through GRUB to the console's first
//! screen on ttyS0, with the desktop GPU topology and no data disk: the overview shows the
//! GPU's group and says that the VM state is kept in RAM only.
//!
//! The boots take turns with the kernel+initrd test (one guest at a time, [`super::ONE_BOOT`]):
//! each keeps a core busy under TCG for a minute or more, and two shared cores running two or
//! three such guests beside the rest of the suite make every step slow enough to risk the
//! timeouts. Serial costs the suite a few minutes more; README has the figures.

use super::build::{image_or_skip, skip, under_ci};
use super::checks::{gpu_of, mentions_group, state_check};

use crate::support::qemu::{Guest, GuestOptions};

use std::path::Path;
use std::time::{Duration, Instant};

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// What the overview says on a live boot with no PHYLLOME-DATA disk.
const IN_RAM: &str = "VM state kept across reboots: /var/lib/phyllome is on rootfs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Firmware {
    Bios,
    Uefi,
}

#[test]
fn the_iso_boots_on_bios_to_the_first_screen() {
    boot_iso(Firmware::Bios);
}

#[test]
fn the_iso_boots_on_uefi_to_the_first_screen() {
    boot_iso(Firmware::Uefi);
}

fn boot_iso(firmware: Firmware) {
    let _one = super::ONE_BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = tempfile::tempdir().unwrap();
    let mut qemu_args: Vec<String> = Vec::new();
    if firmware == Firmware::Uefi {
        if !Path::new(OVMF_CODE).is_file() || !Path::new(OVMF_VARS).is_file() {
            // run.sh and .ci/run install it: under CI its absence is a broken setup.
            assert!(
                !under_ci(),
                "no {OVMF_CODE} under CI (apt-get install ovmf)"
            );
            skip(&format!("no {OVMF_CODE} (apt-get install ovmf)"));
            return;
        }
        // The firmware writes its variables (boot entries): each boot gets its own copy.
        let vars = scratch.path().join("OVMF_VARS_4M.fd");
        std::fs::copy(OVMF_VARS, &vars).unwrap();
        qemu_args.extend([
            "-drive".to_owned(),
            format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
            "-drive".to_owned(),
            format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
        ]);
    }
    let Some(image) = image_or_skip() else { return };
    qemu_args.extend(["-cdrom".to_owned(), image.iso.display().to_string()]);
    let opts = GuestOptions {
        memory_mib: 2048,
        qemu_args,
        // Tall enough for every check of the overview at once.
        terminal_size: (60, 132),
        // Firmware, GRUB and systemd under TCG on two shared cores.
        boot_timeout: Duration::from_secs(600),
        ..GuestOptions::default()
    };
    let started = Instant::now();
    let mut guest = Guest::boot_media(&opts)
        .unwrap_or_else(|e| panic!("the ISO did not boot on {firmware:?}: {e}"));
    // The test's channel comes up before the consoles (Before=getty.target), so this measures
    // the console's first screen, not the channel.
    guest
        .console()
        .wait_screen(Duration::from_secs(300), |s| {
            s.contains("[Overview]") && s.contains(IN_RAM)
        })
        .unwrap_or_else(|e| {
            panic!(
                "no first screen saying the state is in RAM on {firmware:?}: {e}\n{}",
                guest.diagnostics()
            )
        });
    let elapsed = started.elapsed();
    let (gpu_addr, gpu_group) = gpu_of(&mut guest);
    let short_addr = gpu_addr.trim_start_matches("0000:").to_owned();
    let first = guest
        .console()
        .wait_screen(Duration::from_secs(60), |s| {
            s.contains(&short_addr) && mentions_group(s, gpu_group)
        })
        .unwrap_or_else(|e| {
            panic!("the first screen does not show {gpu_addr} in group {gpu_group}: {e}")
        });
    eprintln!("ISO on {firmware:?}: first screen {elapsed:.1?} after qemu started:\n{first}");
    assert!(
        first.contains("PHYLLOME-DATA"),
        "the check's fix names the label:\n{first}"
    );

    // The firmware asked for is the one that booted it.
    let efi = guest.run("test -d /sys/firmware/efi").unwrap();
    assert_eq!(
        efi.code == 0,
        firmware == Firmware::Uefi,
        "/sys/firmware/efi on {firmware:?}"
    );
    // The CLI says the same as the console, from the real mount table.
    let check = state_check(&mut guest);
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .starts_with("/var/lib/phyllome is on rootfs"),
        "{check}"
    );
}
