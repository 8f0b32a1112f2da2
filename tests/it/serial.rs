//! The guest's serial line: `vm console` on a real terminal (a pty) against the test double's
//! guest (it prints a boot banner, echoes what it reads and answers the line `hostile` with
//! every kind of sequence a guest must not get through to the host), the keeper's log and its
//! rotation, `vm log --lines/--follow`, two viewers, and attach/detach on the real VMM.

use std::time::{Duration, Instant};

use crate::serial_support::{wait_exit, Pty, Viewer};
use crate::support::cli::Cli;
use crate::support::vmm::backend as ch_backend;

fn double_vm(cli: &Cli, name: &str) {
    let kernel = cli.fake_kernel();
    cli.define_toml(
        name,
        &format!(
            "[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n[boot]\nkernel = {kernel:?}\n\
             cmdline = \"console=ttyS0\"\n"
        ),
    );
    cli.ok(&["vm", "start", name]);
}

/// What must never reach the host's terminal from the guest.
const UNSAFE: &[&[u8]] = &[
    b"\x1b]",
    b"\x1bP",
    b"\x1b[6n",
    b"\x1b[c",
    b"\x1b[21t",
    b"\x1b[?",
    b"\x9b",
    b"\x9d",
    b"\x07",
];

fn assert_clean(stream: &[u8]) {
    for bad in UNSAFE {
        assert!(
            !stream.windows(bad.len()).any(|w| w == *bad),
            "{bad:?} reached the terminal: {:?}",
            String::from_utf8_lossy(stream)
        );
    }
}

fn log_file(cli: &Cli, name: &str) -> std::path::PathBuf {
    cli.state.join("serial").join(format!("{name}.log"))
}

#[test]
fn console_types_to_the_guest_filters_its_output_and_detaches_restoring_the_terminal() {
    let cli = Cli::double();
    double_vm(&cli, "t1");
    let mut pty = Pty::open();
    let before = pty.modes();
    assert!(before.canonical());
    let mut child = pty.spawn(&cli, &["vm", "console", "t1"]);
    pty.wait_for("Ctrl+] leaves");
    assert!(pty
        .wait_for("Connected")
        .contains("your keys go to the guest"));
    // The banner the guest printed at boot, before anyone attached, is there.
    pty.wait_for("double login:");
    assert!(!pty.modes().canonical(), "raw mode while attached");
    pty.send(b"hello-guest\r");
    pty.wait_for("hello-guest");
    pty.send(b"hostile\r");
    pty.wait_for("hostile-end");
    pty.send(&[0x1d]);
    pty.wait_for("Detached from t1.");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert_eq!(pty.modes(), before, "the terminal's modes are back");
    // Colours pass, the rest of the hostile output does not.
    let seen = pty.seen.clone();
    assert!(seen.windows(5).any(|w| w == b"\x1b[31m"), "SGR passes");
    assert_clean(&seen);

    // The keeper logged it all, raw; `vm log` filters.
    let raw = std::fs::read(log_file(&cli, "t1")).unwrap();
    let raw_text = String::from_utf8_lossy(&raw);
    assert!(raw_text.contains("double login:") && raw_text.contains("hello-guest"));
    assert!(
        raw.windows(2).any(|w| w == b"\x1b]"),
        "the log keeps raw bytes"
    );
    let out = cli.run(&["vm", "log", "t1"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("hostile-end"));
    assert_clean(&out.stdout);
    // The VM outlived the console.
    assert_eq!(cli.state("t1"), "Running");
    // Deleting the VM deletes its log.
    cli.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    cli.ok(&["vm", "delete", "t1", "--yes"]);
    assert!(!log_file(&cli, "t1").exists());
}

#[test]
fn signals_and_the_vm_stopping_end_the_console_with_the_terminal_restored() {
    let cli = Cli::double();
    double_vm(&cli, "t1");
    for sig in [rustix::process::Signal::TERM, rustix::process::Signal::HUP] {
        let mut pty = Pty::open();
        let before = pty.modes();
        let mut child = pty.spawn(&cli, &["vm", "console", "t1"]);
        pty.wait_for("double login:");
        assert!(!pty.modes().canonical());
        phyllome::vmm::launch::signal(child.id(), sig);
        pty.wait_for("Detached from t1 (SIG");
        assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
        assert_eq!(pty.modes(), before, "{sig:?}");
    }
    // The VM stops under an attached console: the line closes, the terminal comes back.
    let mut pty = Pty::open();
    let before = pty.modes();
    let mut child = pty.spawn(&cli, &["vm", "console", "t1"]);
    pty.wait_for("double login:");
    cli.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    pty.wait_for("serial line of t1 closed");
    wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(pty.modes(), before);
}

#[test]
fn two_viewers_see_the_same_output_and_only_the_first_types() {
    let cli = Cli::double();
    double_vm(&cli, "t1");
    let dir = cli.vm_dir("t1");
    let mut first = Viewer::attach(&dir);
    let mut second = Viewer::attach(&dir);
    assert_eq!(first.hello, "phyllome-serial 1 keys");
    assert_eq!(second.hello, "phyllome-serial 1 watch");
    second.wait_for("double login:");
    second.send(b"from-the-watcher\r");
    first.send(b"from-the-typist\r");
    first.wait_for("from-the-typist");
    second.wait_for("from-the-typist");
    assert!(!String::from_utf8_lossy(&first.seen).contains("from-the-watcher"));
    // The typist leaves: the next viewer to attach gets the keys.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut third = loop {
        let v = Viewer::attach(&dir);
        if v.hello.ends_with("keys") || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(third.hello, "phyllome-serial 1 keys");
    third.send(b"from-the-next\r");
    second.wait_for("from-the-next");
}

#[test]
fn the_log_rotates_and_vm_log_reads_lines_and_follows() {
    let mut cli = Cli::double();
    cli.set("PHYLLOME_SERIAL_LOG_MAX", "400");
    let missing = cli.run(&["vm", "log", "t1"]);
    assert_eq!(missing.status.code(), Some(3), "no such VM");
    // With --json the failure is one line too, the exit code the same.
    let missing = cli.run(&["vm", "log", "t1", "--json"]);
    assert_eq!(missing.status.code(), Some(3), "no such VM");
    let told = String::from_utf8_lossy(&missing.stdout);
    assert_eq!(told.lines().count(), 1, "{told}");
    assert!(
        told.starts_with("{\"schema_version\":1,\"vm\":\"t1\",\"error\":"),
        "{told}"
    );
    double_vm(&cli, "t1");
    let mut v = Viewer::attach(&cli.vm_dir("t1"));
    for i in 0..40 {
        v.send(format!("line-{i:02} {}\n", "x".repeat(20)).as_bytes());
    }
    v.wait_for("line-39");
    let log = log_file(&cli, "t1");
    let rotated = log.with_extension("log.1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).contains("line-39") {
        assert!(Instant::now() < deadline, "line-39 never logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(rotated.exists(), "rotated to {}", rotated.display());
    for f in [&log, &rotated] {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 400, "{} is {len} bytes", f.display());
    }
    let out = cli.ok(&["vm", "log", "t1", "--lines", "2"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(
        lines[0].starts_with("line-38") && lines[1].starts_with("line-39"),
        "{out:?}"
    );
    // JSON Lines: one object per line of output, without its line ending.
    let json = cli.ok(&["vm", "log", "t1", "--lines", "2", "--json"]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{json}");
    assert!(
        json.starts_with("{\"schema_version\":1,\"vm\":\"t1\",\"line\":\"line-38 x"),
        "{json}"
    );
    assert_eq!(lines[1]["line"], format!("line-39 {}", "x".repeat(20)));
    // The oldest lines went with the rotation.
    assert!(!cli.ok(&["vm", "log", "t1"]).contains("line-00"));

    let mut follow = cli.cmd(&["vm", "log", "t1", "--follow"]).spawn().unwrap();
    let mut stdout = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = std::io::Read::read(&mut stdout, &mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains("after-follow") {
                break;
            }
        }
        seen
    });
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..20 {
        v.send(format!("more-{i:02} {}\n", "y".repeat(20)).as_bytes());
    }
    v.send(b"after-follow\n");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() {
        assert!(
            Instant::now() < deadline,
            "vm log --follow never printed the new line"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = follow.kill();
    let _ = follow.wait();
    let seen = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    // The last 10 lines first, then every new one across the rotations, in order.
    assert!(seen.contains("line-39"), "{seen}");
    let at = |s: &str| {
        seen.find(s)
            .unwrap_or_else(|| panic!("{s} missing: {seen}"))
    };
    for i in 1..20 {
        assert!(at(&format!("more-{:02}", i - 1)) < at(&format!("more-{i:02}")));
    }
}

#[test]
fn console_refuses_without_a_terminal_and_names_what_is_missing() {
    let cli = Cli::double();
    let kernel = cli.fake_kernel();
    cli.define_toml(
        "t1",
        &format!("[cpus]\nboot = 1\n\n[memory]\nsize = \"256M\"\n\n[boot]\nkernel = {kernel:?}\n"),
    );
    let out = cli.run(&["vm", "log", "t1"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no serial log yet"));
    let out = cli.run(&["vm", "console", "t1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vm log t1 --follow"));
    let out = cli.run(&["vm", "console", "nope"]);
    assert_eq!(out.status.code(), Some(3));
    // On a terminal, a stopped VM is refused as not running.
    let mut pty = Pty::open();
    let mut child = pty.spawn(&cli, &["vm", "console", "t1"]);
    pty.wait_for("t1 has no serial socket to attach to: it is not running");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(10)).code(),
        Some(1)
    );
}

#[test]
fn console_attaches_to_and_detaches_from_a_real_vm() {
    let Some(ch) = ch_backend::real_or_skip("console_attaches_to_and_detaches_from_a_real_vm")
    else {
        return;
    };
    let cli = Cli::new().ch_bin(&ch.bin);
    cli.define_toml(
        "t1",
        &format!(
            "[cpus]\nboot = 1\n\n[memory]\nsize = \"128M\"\n\n[boot]\nkernel = {:?}\n\
             cmdline = \"console=ttyS0\"\n",
            ch.kernel
        ),
    );
    cli.ok(&["vm", "start", "t1"]);
    for round in 0..2 {
        let mut pty = Pty::open();
        let before = pty.modes();
        let mut child = pty.spawn(&cli, &["vm", "console", "t1"]);
        pty.wait_for("your keys go to the guest");
        assert!(!pty.modes().canonical());
        // The guest never prints here (nested KVM): keys go in, nothing breaks.
        pty.send(b"root\r");
        std::thread::sleep(Duration::from_millis(300));
        pty.send(&[0x1d]);
        pty.wait_for("Detached from t1.");
        assert!(
            wait_exit(&mut child, Duration::from_secs(10)).success(),
            "round {round}"
        );
        assert_eq!(pty.modes(), before);
        assert_eq!(cli.state("t1"), "Running");
    }
    // The keeper holds the real VMM's socket: a direct client is what CH drops.
    let sock = cli.vm_dir("t1").join("serial.sock");
    assert!(sock.exists());
    assert!(log_file(&cli, "t1").exists(), "the keeper opened its log");
    cli.ok(&["vm", "stop", "t1", "--force", "--yes"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cli.vm_dir("t1").join("viewers.sock").exists() {
        assert!(Instant::now() < deadline, "the keeper outlived its VM");
        std::thread::sleep(Duration::from_millis(20));
    }
}
