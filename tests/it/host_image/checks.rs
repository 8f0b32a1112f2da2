//! What the test checks in the guest, step by step, over its ttyS1 channel.

use crate::support::qemu::Guest;

use std::path::Path;
use std::time::{Duration, Instant};

/// The VGA function's address and IOMMU group, read in the guest.
pub(super) fn gpu_of(guest: &mut Guest) -> (String, u64) {
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
pub(super) fn mentions_group(screen: &str, id: u64) -> bool {
    let lower = screen.to_lowercase();
    lower.match_indices("group").any(|(i, w)| {
        let rest = lower[i + w.len()..].trim_start_matches([' ', ':', '#', '=']);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse() == Ok(id)
    })
}

/// The driver bound to `addr`, or "none".
pub(super) fn driver(guest: &mut Guest, addr: &str) -> String {
    guest
        .run_ok(&format!(
            "basename $(readlink /sys/bus/pci/devices/{addr}/driver) 2>/dev/null || echo none"
        ))
        .unwrap()
        .trim()
        .to_owned()
}

/// Whether the frame buffer console is bound (`1`), unbound (`0`) or gone (empty).
pub(super) fn fbcon_bound(guest: &mut Guest) -> String {
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
pub(super) fn managed_gpu(guest: &mut Guest, gpu_addr: &str) {
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
pub(super) fn ssh_lands_in_the_console(guest: &mut Guest) {
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

/// The boot medium's keys and the data filesystem: keys on the medium log in too, and the VM
/// definitions live on the disk labelled PHYLLOME-DATA.
pub(super) fn medium_and_data(guest: &mut Guest, medium_pub: &Path) {
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

/// The `vm_state_persistent` check as `phyllome host --json` reports it in the guest.
pub(super) fn state_check(guest: &mut Guest) -> serde_json::Value {
    let json = guest.run_ok("phyllome host --json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "vm_state_persistent")
        .unwrap_or_else(|| panic!("no vm_state_persistent check: {json}"))
        .clone()
}
