//! Step 5 and the journal: the console's own lines are in the journal under its unit (the
//! VM start of step 2), and F12 on the serial console powers the host off, the running VM
//! stopped first: its unit deactivated before logind takes the system down, the terminal
//! given back before that, the kernel's "reboot: Power down", qemu exiting by itself and
//! the data disk unmounted cleanly.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::qemu::Guest;

/// The console's log lines in the journal: identifier `phyllome`, from the console's unit.
pub(super) fn console_logs_to_the_journal(guest: &mut Guest, vm: &str) {
    let out = guest
        .run_ok(
            "journalctl -b --no-pager -o cat -t phyllome \
             _SYSTEMD_UNIT=serial-getty@ttyS0.service",
        )
        .unwrap();
    assert!(
        out.contains(&format!("VM {vm}: start done")),
        "the console's VM start is not in the journal under its unit:\n{out}"
    );
}

/// Where the whole shutdown's journal is kept, on the data disk (read back from its image).
const SHUTDOWN_LOG: &str = "/var/lib/phyllome/shutdown.log";

pub(super) fn power_off_from_the_console(guest: &mut Guest, data_img: &Path, vm: &str) {
    let unit = format!("phyllome-vm-{vm}.service");
    guest.run_ok(&format!("phyllome vm start {vm}")).unwrap();
    let active = guest.run(&format!("systemctl is-active {unit}")).unwrap();
    assert_eq!(active.stdout.trim(), "active", "{active:?}");
    // The whole boot's journal, written onto the data disk on the way down: the stop of a
    // unit ordered after the disk's mount runs before the disk is unmounted, and after
    // logind has logged the power-off.
    guest
        .run_ok(&format!(
            "systemd-run --unit=e2e-shutdown-record --remain-after-exit \
             -p After=var-lib-phyllome.mount -p Requires=var-lib-phyllome.mount \
             -p \"ExecStop=/bin/sh -c 'journalctl -b -o short-monotonic --no-pager \
             >{SHUTDOWN_LOG}'\" /bin/true"
        ))
        .unwrap();
    let console = guest.console();
    let since = console.mark();
    // F12 is an escape sequence, and on this emulated UART its ESC often comes in a read of
    // its own: the console's escape delay puts it back together, so one F12 opens the popup.
    let opened = |s: &str| {
        s.contains("Shut down or restart")
            && s.contains("These VMs are stopped first")
            && s.lines().any(|l| l.contains(vm) && l.contains("up to"))
    };
    console.send(b"5").unwrap();
    console.send(b"\x1b[24~").unwrap(); // F12
    let popup = console
        .wait_screen(Duration::from_secs(45), opened)
        .map_err(|e| e.to_string());
    let popup = popup.unwrap_or_else(|e| panic!("F12 opened no popup naming {vm}: {e}"));
    eprintln!("power popup:\n{popup}");
    // Cancel is under the cursor: two to the left (`h`, no escape sequence) is Power off.
    console.send(b"hh").unwrap();
    console
        .wait_screen(Duration::from_secs(60), |s| s.contains("[ Power off ]"))
        .unwrap_or_else(|e| panic!("Power off was not selected: {e}"));
    console.send(b"\r").unwrap();
    console
        .wait_for(
            since,
            "asking logind to power off the host",
            Duration::from_secs(300),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", guest.diagnostics()));
    console
        .wait_for(since, "reboot: Power down", Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("no clean power-off: {e}\n{}", guest.diagnostics()));
    // Raw ttyS0, in order: the terminal given back (alternate screen left), the console's
    // line, the kernel's last words. (The progress screen itself is drawn as changed cells
    // only; the VM's stop is checked in the journal below.)
    let tail = console.transcript_since(since);
    let at = |s: &str| {
        tail.find(s)
            .unwrap_or_else(|| panic!("{s:?} not on ttyS0 after F12:\n{tail}"))
    };
    let restored = at("^[[?1049l");
    let asked = at("asking logind to power off the host");
    let down = at("reboot: Power down");
    assert!(restored < asked && asked < down, "{tail}");

    let status = guest.wait_exit(Duration::from_secs(120));
    assert!(
        status.is_some_and(|s| s.success()),
        "qemu did not exit by itself: {status:?}"
    );

    // The data disk was unmounted cleanly, and its copy of the journal has the unit stopped
    // before logind's power-off.
    let state = Command::new("dumpe2fs")
        .arg("-h")
        .arg(data_img)
        .output()
        .expect("dumpe2fs (e2fsprogs)");
    let state = String::from_utf8_lossy(&state.stdout);
    assert!(
        state
            .lines()
            .any(|l| l.starts_with("Filesystem state:") && l.trim_end().ends_with("clean")),
        "the data disk was not unmounted cleanly:\n{state}"
    );
    let name = SHUTDOWN_LOG.trim_start_matches("/var/lib/phyllome");
    let log = Command::new("debugfs")
        .args(["-R", &format!("cat {name}")])
        .arg(data_img)
        .output()
        .expect("debugfs (e2fsprogs)");
    let log = String::from_utf8_lossy(&log.stdout).into_owned();
    // From the console's F12 choice on (the VM's earlier stops are in it too).
    let log = match log.find("host power off asked for") {
        Some(i) => log[i..].to_string(),
        None => panic!("the console's power-off is not in the journal:\n{log}"),
    };
    let find = |s: &str| {
        log.find(s)
            .unwrap_or_else(|| panic!("{s:?} not in the shutdown's journal:\n{log}"))
    };
    let unit_gone = log
        .find(&format!("{unit}: Deactivated successfully"))
        .or_else(|| log.find(&format!("Stopped {unit}")))
        .or_else(|| log.find(&format!("{unit}: Consumed")))
        .unwrap_or_else(|| panic!("the unit's stop is not in the journal:\n{log}"));
    let powering_down = find("System is powering down");
    let console_stop = find(&format!("VM {vm}: stopped"));
    assert!(
        unit_gone < powering_down && console_stop < powering_down,
        "the VM stopped after the power-off began:\n{log}"
    );
}
