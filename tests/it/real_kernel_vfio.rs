//! `phyllome gpu detach|reattach` against a real kernel: a Debian 6.1 kernel under qemu (TCG,
//! q35, intel-iommu) with a VGA device (bochs-drm, fbcon on it) and an HDA function in one
//! IOMMU group behind a PCIe root port. One boot; the scenarios run in sequence because each
//! starts from the state the previous one must have restored.
//!
//! Needs `host-image/test-kernel/prepare.sh`; without it the test skips loudly (fails under `CI`).

use crate::support;

use std::time::{Duration, Instant};

use support::qemu::{Guest, GuestOptions, KernelCache, PROMPT};

/// What the kernel says about the GPU's group, read with busybox, independently of phyllome.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupState {
    /// (address, driver, driver_override) of each function, sorted by address.
    functions: Vec<(String, String, String)>,
    /// `bind` of the frame buffer vtconsole.
    fbcon: String,
    vfio_node: bool,
}

struct Topology {
    gpu: String,
    audio: String,
    group: String,
    /// The vtconsole whose name says "frame buffer" (fbcon).
    fbcon: String,
}

fn run_ok(guest: &mut Guest, cmd: &str) -> String {
    guest
        .run_ok(cmd)
        .unwrap_or_else(|e| panic!("{e}\n{}", guest.diagnostics()))
}

/// Finds the 1234:1111 VGA function, its group and the HDA function sharing it, from sysfs.
fn topology(guest: &mut Guest) -> Topology {
    let gpu = run_ok(
        guest,
        r#"for d in /sys/bus/pci/devices/*; do
             [ "$(cat $d/vendor):$(cat $d/device):$(cat $d/class)" = 0x1234:0x1111:0x030000 ] && echo ${d##*/}
           done; true"#,
    );
    let gpu = gpu.trim().to_owned();
    assert!(!gpu.is_empty(), "no 1234:1111 VGA device in the guest");
    let group = run_ok(
        guest,
        &format!("basename $(readlink /sys/bus/pci/devices/{gpu}/iommu_group)"),
    )
    .trim()
    .to_owned();
    let audio = run_ok(
        guest,
        &format!(
            r#"for d in /sys/kernel/iommu_groups/{group}/devices/*; do
                 case $(cat $d/class) in 0x0403*) echo ${{d##*/}};; esac
               done; true"#
        ),
    )
    .trim()
    .to_owned();
    assert!(!audio.is_empty(), "no HDA function in group {group}");
    let fbcon = run_ok(
        guest,
        r#"for v in /sys/class/vtconsole/*; do grep -q "frame buffer" $v/name && echo ${v##*/}; done; true"#,
    )
    .trim()
    .to_owned();
    assert!(!fbcon.is_empty(), "no frame buffer console in the guest");
    Topology {
        gpu,
        audio,
        group,
        fbcon,
    }
}

fn group_state(guest: &mut Guest, t: &Topology) -> GroupState {
    let mut functions = Vec::new();
    for a in [&t.gpu, &t.audio] {
        let line = run_ok(
            guest,
            &format!(
                r#"d=/sys/bus/pci/devices/{a}; drv=-; [ -e $d/driver ] && drv=$(basename $(readlink $d/driver)); echo $drv $(cat $d/driver_override)"#
            ),
        );
        let mut f = line.split_whitespace();
        let drv = f.next().unwrap_or("?").to_owned();
        let over = f.next().unwrap_or("?").to_owned();
        functions.push((a.clone(), drv, over));
    }
    // When the last framebuffer goes away the kernel unregisters fbcon's vtconsole
    // altogether: "gone" is as unbound as "0".
    let fbcon = run_ok(
        guest,
        &format!(
            "cat /sys/class/vtconsole/{}/bind 2>/dev/null || echo gone",
            t.fbcon
        ),
    )
    .trim()
    .to_owned();
    eprintln!(
        "vtconsoles: {}",
        run_ok(
            guest,
            "grep . /sys/class/vtconsole/*/name /sys/class/vtconsole/*/bind; true"
        )
        .replace('\n', "  ")
    );
    let vfio_node = guest
        .run(&format!("test -e /dev/vfio/{}", t.group))
        .map(|o| o.code == 0)
        .unwrap_or(false);
    GroupState {
        functions,
        fbcon,
        vfio_node,
    }
}

/// Types a line on ttyS0's shell and waits for its echo: the serial console still works.
fn console_answers(guest: &Guest, tag: &str) {
    let console = guest.console();
    let mark = console.mark();
    console
        .send_line(&format!("echo ttyS0-{tag}-$((40+2))"))
        .expect("typing on ttyS0");
    if let Err(e) = console.wait_for(mark, &format!("ttyS0-{tag}-42"), Duration::from_secs(30)) {
        panic!(
            "ttyS0 stopped answering ({tag}): {e}\n{}",
            guest.diagnostics()
        );
    }
}

fn phyllome(guest: &mut Guest, args: &str) -> support::qemu::Output {
    let out = guest
        .run_timeout(&format!("phyllome {args}"), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\n{}", guest.diagnostics()));
    eprintln!(
        "$ phyllome {args}\n[exit {}]\n{}{}",
        out.code, out.stdout, out.stderr
    );
    out
}

fn on_host(t: &Topology) -> GroupState {
    GroupState {
        functions: vec![
            (t.gpu.clone(), "bochs-drm".into(), "(null)".into()),
            (t.audio.clone(), "snd_hda_intel".into(), "(null)".into()),
        ],
        fbcon: "1".into(),
        vfio_node: false,
    }
}

#[test]
fn detach_reattach_and_rollback_in_a_real_kernel() {
    let Some(kernel) = KernelCache::require() else {
        return;
    };
    let started = Instant::now();
    let mut guest = Guest::boot(&kernel, &GuestOptions::with_phyllome())
        .unwrap_or_else(|e| panic!("booting the test kernel: {e}"));
    eprintln!(
        "guest: kernel {} ready in {:.1} s",
        kernel.version,
        guest.boot_time.as_secs_f64()
    );
    if let Err(e) = guest.console().wait_for(0, PROMPT, Duration::from_secs(30)) {
        panic!("no shell prompt on ttyS0: {e}\n{}", guest.diagnostics());
    }
    let t = topology(&mut guest);
    eprintln!(
        "GPU {} + audio {} in group {}, fbcon on {}",
        t.gpu, t.audio, t.group, t.fbcon
    );
    let original = group_state(&mut guest, &t);
    assert_eq!(
        original,
        on_host(&t),
        "the guest should boot with host drivers"
    );

    // A dry run prints the plan (both functions, the console) and changes nothing.
    let dry = phyllome(&mut guest, &format!("gpu detach {} --dry-run", t.gpu));
    assert_eq!(dry.code, 0, "dry run failed");
    assert!(dry.stdout.contains(&t.gpu) && dry.stdout.contains(&t.audio));
    assert!(dry.stdout.contains("vfio-pci"), "{}", dry.stdout);
    assert_eq!(
        group_state(&mut guest, &t),
        original,
        "a dry run changed the host"
    );

    // The GPU shows the host console: without a terminal and without --yes, refuse.
    let refused = phyllome(&mut guest, &format!("gpu detach {}", t.gpu));
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(
        group_state(&mut guest, &t),
        original,
        "a refusal changed the host"
    );

    // Detach: both functions on vfio-pci, the group's node appears, fbcon lets go.
    let step = Instant::now();
    let detach = phyllome(&mut guest, &format!("gpu detach {} --yes", t.gpu));
    assert_eq!(detach.code, 0, "detach failed");
    eprintln!("detach took {:.1} s", step.elapsed().as_secs_f64());
    let detached = group_state(&mut guest, &t);
    for (a, drv, _) in &detached.functions {
        assert_eq!(drv, "vfio-pci", "{a} should be on vfio-pci: {detached:?}");
    }
    assert!(detached.vfio_node, "/dev/vfio/{} did not appear", t.group);
    assert!(
        detached.fbcon == "0" || detached.fbcon == "gone",
        "fbcon is still bound: {detached:?}"
    );
    console_answers(&guest, "detached");

    let list = phyllome(&mut guest, "gpu list --json");
    assert_eq!(list.code, 0);
    let json: serde_json::Value = serde_json::from_str(&list.stdout).expect("gpu list JSON");
    let row = json["gpus"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["address"] == t.gpu.as_str()))
        .unwrap_or_else(|| panic!("gpu list does not show {}: {json}", t.gpu));
    assert_eq!(row["state"]["kind"], "vfio_pci", "{row}");

    // Reattach: back to bochs-drm and snd_hda_intel, fbcon bound again, the node gone.
    let step = Instant::now();
    let reattach = phyllome(&mut guest, &format!("gpu reattach {}", t.gpu));
    assert_eq!(reattach.code, 0, "reattach failed");
    eprintln!("reattach took {:.1} s", step.elapsed().as_secs_f64());
    assert_eq!(
        group_state(&mut guest, &t),
        original,
        "reattach left changes"
    );
    console_answers(&guest, "reattached");

    // A real failure mid-plan: snd_hda_intel's `unbind` becomes a read-only file (a read-only
    // bind mount over it), so unbinding the audio function fails after the console and the
    // GPU function were already moved; everything must come back.
    let unbind = "/sys/bus/pci/drivers/snd_hda_intel/unbind";
    run_ok(
        &mut guest,
        &format!(
            "mkdir -p /ro && : > /ro/unbind && mount -o bind /ro/unbind {unbind} && mount -o remount,bind,ro {unbind}"
        ),
    );
    let failed = phyllome(&mut guest, &format!("gpu detach {} --yes", t.gpu));
    run_ok(&mut guest, &format!("umount {unbind}"));
    assert_ne!(failed.code, 0, "detach should fail with a read-only unbind");
    let said = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        said.contains(&t.audio),
        "the failure should name {}: {said}",
        t.audio
    );
    assert!(
        said.to_lowercase().contains("restored"),
        "the failure should say what was restored: {said}"
    );
    assert_eq!(
        group_state(&mut guest, &t),
        original,
        "rollback left the host changed"
    );
    console_answers(&guest, "after-rollback");
    // The ttyS1 shell has answered every step above; one more for the record.
    assert_eq!(run_ok(&mut guest, "echo alive").trim(), "alive");
    eprintln!(
        "real-kernel VFIO scenarios: {:.1} s in all (boot {:.1} s)",
        started.elapsed().as_secs_f64(),
        guest.boot_time.as_secs_f64()
    );
}
