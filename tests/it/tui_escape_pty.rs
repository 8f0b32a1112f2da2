//! Escape sequences split across reads, as a serial line delivers them, on a real terminal
//! (a pty): the console puts `ESC` + `[B` back together into Down instead of Esc, `[`, `B`
//! (`B` on the VM list is rescue boot, `D` is delete).

use std::process::{Child, Stdio};
use std::thread::sleep;
use std::time::Duration;

use phyllome::fixture::presets;

use crate::support::cli::{text, Cli};
use crate::support::pty::{wait_exit, Pty};

/// Shorter than the default delay, longer than the console needs to read the ESC alone.
const SPLIT: Duration = Duration::from_millis(5);

fn console(cli: &Cli, pty: &Pty, extra: &[&str]) -> Child {
    let mut args = vec!["--size", "100x30", "--log"];
    let log = cli.path().join("console.log");
    args.push(log.to_str().unwrap());
    args.extend_from_slice(extra);
    let mut cmd = cli.cmd(&args);
    cmd.env("TERM", "xterm")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::from(pty.slave()))
        .stdout(Stdio::from(pty.slave()))
        .stderr(Stdio::from(pty.slave()));
    cmd.spawn().unwrap()
}

fn vms() -> Cli {
    let cli = Cli::new().host(presets::desktop());
    let kernel = cli.fake_kernel();
    for name in ["alpha", "bravo", "charlie"] {
        cli.ok(&["vm", "define", name, "--kernel", kernel.to_str().unwrap()]);
    }
    cli
}

/// Writes `ESC`, waits, then the rest: crossterm reads the ESC alone.
fn split_key(pty: &mut Pty, rest: &[u8]) {
    pty.send(b"\x1b");
    sleep(SPLIT);
    pty.send(rest);
}

#[test]
fn a_split_arrow_moves_the_selection_and_does_nothing_else() {
    let cli = vms();
    let mut pty = Pty::open();
    let mut child = console(&cli, &pty, &[]);
    pty.wait_for("GPU passthrough");
    pty.send(b"5");
    pty.wait_for("charlie");
    let mark = pty.seen.len();
    split_key(&mut pty, b"[B"); // Down, not Esc [ B (rescue boot)
    split_key(&mut pty, b"[D"); // Left, not Esc [ D (delete)
    split_key(&mut pty, b"OB"); // Down in SS3, not Esc O B
                                // Delete asks about the VM under the cursor: the third, two rows down.
    pty.send(b"D");
    // ratatui skips cells that did not change, blanks between words too: match words.
    let seen = pty.wait_for("charlie?");
    let since = String::from_utf8_lossy(&seen.as_bytes()[mark..]).into_owned();
    for wrong in ["alpha?", "bravo?", "rescue?"] {
        assert!(
            !since.contains(wrong),
            "{wrong:?} after split arrows:\n{since:?}"
        );
    }
    // A lone Esc still closes the confirmation once the delay runs out; then `q` goes back
    // and `q` quits (typed into the confirmation instead, they would not).
    pty.send(b"\x1b");
    sleep(Duration::from_millis(300));
    pty.send(b"qq");
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{}", String::from_utf8_lossy(&pty.seen));
    assert_eq!(cli.list().len(), 3, "a VM went away");
}

#[test]
fn a_bad_esc_delay_is_refused_before_the_terminal_is_touched() {
    let cli = Cli::new();
    for bad in ["soon", "-1", "1001"] {
        let flag = format!("--esc-delay={bad}");
        let out = cli.run(&[&flag]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("--esc-delay"),
            "{}",
            text(&out.stderr)
        );
        let out = cli.run(&["top", &flag]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "top {bad}: {}",
            text(&out.stderr)
        );
    }
}
