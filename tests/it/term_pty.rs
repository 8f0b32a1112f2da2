//! The tty sizing against a real pseudo-terminal: the test plays the terminal on the master
//! side, the code under test talks to the slave side as it would to a serial line.
//!
//! Two tests re-run this test binary as a child on the pty (via `setsid -c`, so the pty is its
//! controlling terminal) to exercise `ensure_size()` and `requery_size()` exactly as the app
//! calls them; the child parts are the `child_*` tests, which do nothing unless
//! `PHYLLOME_TERM_CHILD` is set.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use phyllome::term::{
    ensure_size, ensure_size_on, requery_size, SizeOutcome, SizeSource, TermSize, QUERY,
    QUERY_TIMEOUT,
};
use rustix::termios::{self, LocalModes, SpecialCodeIndex, Winsize};

const CHILD_ENV: &str = "PHYLLOME_TERM_CHILD";
const CHILD_OUT_ENV: &str = "PHYLLOME_TERM_CHILD_OUT";

/// The terminal side of a pty: everything the slave side writes arrives on `output`.
struct Terminal {
    master: File,
    output: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Terminal {
    /// Read until `needle` has been written by the other side, or panic after `timeout`.
    fn expect(&mut self, needle: &[u8], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !contains(&self.seen, needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => panic!(
                    "no {:?} within {timeout:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    /// Everything written so far, after waiting `quiet` for more.
    fn drain(&mut self, quiet: Duration) -> &[u8] {
        while let Ok(chunk) = self.output.recv_timeout(quiet) {
            self.seen.extend(chunk);
        }
        &self.seen
    }

    fn answer(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
        self.master.flush().unwrap();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A pty pair: the terminal (master, with a reader thread) and the tty (slave).
fn pty(cols: u16, rows: u16) -> (Terminal, File) {
    let (master, slave) = crate::support::pty::open_pair();
    let slave = File::from(slave);
    set_winsize(&slave, cols, rows);
    let mut reader = File::from(master.try_clone().unwrap());
    let (tx, output) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO once every slave descriptor is closed.
        while let Ok(n @ 1..) = std::io::Read::read(&mut reader, &mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let terminal = Terminal {
        master: File::from(master),
        output,
        seen: Vec::new(),
    };
    (terminal, slave)
}

fn set_winsize(tty: impl AsFd, cols: u16, rows: u16) {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    termios::tcsetwinsize(tty, ws).unwrap();
}

fn winsize(tty: impl AsFd) -> (u16, u16) {
    let ws = termios::tcgetwinsize(tty).unwrap();
    (ws.ws_col, ws.ws_row)
}

fn size(cols: u16, rows: u16) -> TermSize {
    TermSize::new(cols, rows).unwrap()
}

/// The parts of the mode that raw mode changes and that must come back as they were.
fn mode(tty: impl AsFd) -> (LocalModes, u8, u8) {
    let t = termios::tcgetattr(tty).unwrap();
    (
        t.local_modes,
        t.special_codes[SpecialCodeIndex::VMIN],
        t.special_codes[SpecialCodeIndex::VTIME],
    )
}

#[test]
fn serial_tty_gets_the_size_the_terminal_answers() {
    let (mut term, slave) = pty(0, 0);
    let before = mode(&slave);
    let tty = slave.try_clone().unwrap();
    let query = thread::spawn(move || ensure_size_on(&tty, None, Duration::from_secs(5)));
    term.expect(QUERY, Duration::from_secs(5));
    term.answer(b"\x1b[40;120R");
    let outcome = query.join().unwrap().unwrap();
    assert_eq!(
        outcome,
        SizeOutcome {
            size: size(120, 40),
            source: SizeSource::Queried
        }
    );
    assert_eq!(winsize(&slave), (120, 40));
    assert_eq!(mode(&slave), before, "terminal mode restored");
    assert!(
        before.0.contains(LocalModes::ICANON | LocalModes::ECHO),
        "a fresh pty is cooked, so the restore check means something"
    );
}

#[test]
fn reply_split_over_reads_and_mixed_with_keys_and_other_replies() {
    let (mut term, slave) = pty(0, 0);
    let tty = slave.try_clone().unwrap();
    let query = thread::spawn(move || ensure_size_on(&tty, None, Duration::from_secs(5)));
    term.expect(QUERY, Duration::from_secs(5));
    term.answer(b"jk\x1b[A\x1b[?62;22c\x1b[8;5");
    thread::sleep(Duration::from_millis(150));
    term.answer(b"0;132t\x1b[5");
    thread::sleep(Duration::from_millis(150));
    term.answer(b"0;132R");
    let outcome = query.join().unwrap().unwrap();
    assert_eq!(outcome.size, size(132, 50));
    assert_eq!(outcome.source, SizeSource::Queried);
    assert_eq!(winsize(&slave), (132, 50));
}

#[test]
fn text_area_answer_alone_is_used_after_the_timeout() {
    let (mut term, slave) = pty(0, 0);
    let tty = slave.try_clone().unwrap();
    let query = thread::spawn(move || ensure_size_on(&tty, None, QUERY_TIMEOUT));
    term.expect(QUERY, Duration::from_secs(5));
    term.answer(b"\x1b[8;30;100t");
    let outcome = query.join().unwrap().unwrap();
    assert_eq!(outcome.size, size(100, 30));
    assert_eq!(outcome.source, SizeSource::Queried);
    assert_eq!(winsize(&slave), (100, 30));
}

#[test]
fn silent_terminal_falls_back_to_80x24_after_the_timeout() {
    let (mut term, slave) = pty(0, 0);
    let before = mode(&slave);
    let started = Instant::now();
    let outcome = ensure_size_on(&slave, None, QUERY_TIMEOUT).unwrap();
    let took = started.elapsed();
    assert_eq!(
        outcome,
        SizeOutcome {
            size: TermSize::FALLBACK,
            source: SizeSource::Fallback
        }
    );
    assert!(took >= QUERY_TIMEOUT, "gave up after {took:?}");
    assert!(took < QUERY_TIMEOUT * 4, "took {took:?}");
    assert_eq!(winsize(&slave), (80, 24));
    assert_eq!(mode(&slave), before, "terminal mode restored");
    assert!(contains(term.drain(Duration::from_millis(50)), QUERY));
}

#[test]
fn override_is_set_without_asking() {
    let (mut term, slave) = pty(0, 0);
    let outcome = ensure_size_on(&slave, Some(size(132, 43)), QUERY_TIMEOUT).unwrap();
    assert_eq!(
        outcome,
        SizeOutcome {
            size: size(132, 43),
            source: SizeSource::Override
        }
    );
    assert_eq!(winsize(&slave), (132, 43));
    assert_eq!(term.drain(Duration::from_millis(100)), b"");
}

#[test]
fn override_wins_over_a_reported_size() {
    let (_term, slave) = pty(200, 60);
    let outcome = ensure_size_on(&slave, Some(size(80, 24)), QUERY_TIMEOUT).unwrap();
    assert_eq!(outcome.source, SizeSource::Override);
    assert_eq!(winsize(&slave), (80, 24));
}

#[test]
fn sane_reported_size_is_kept_without_asking() {
    let (mut term, slave) = pty(100, 30);
    let outcome = ensure_size_on(&slave, None, QUERY_TIMEOUT).unwrap();
    assert_eq!(
        outcome,
        SizeOutcome {
            size: size(100, 30),
            source: SizeSource::Reported
        }
    );
    assert_eq!(term.drain(Duration::from_millis(100)), b"");
}

#[test]
fn half_set_size_is_not_sane() {
    // `stty cols 100` without rows leaves 100x0.
    let (mut term, slave) = pty(100, 0);
    let tty = slave.try_clone().unwrap();
    let query = thread::spawn(move || ensure_size_on(&tty, None, Duration::from_secs(5)));
    term.expect(QUERY, Duration::from_secs(5));
    term.answer(b"\x1b[24;100R");
    assert_eq!(query.join().unwrap().unwrap().size, size(100, 24));
    assert_eq!(winsize(&slave), (100, 24));
}

// ---- the public entry points, in a child whose controlling terminal is the pty ----

fn spawn_child(test: &str, slave: &File, out: &PathBuf) -> Child {
    let exe = std::env::current_exe().unwrap();
    Command::new("setsid")
        .arg("-c")
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ENV, "1")
        .env(CHILD_OUT_ENV, out)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .spawn()
        .expect("setsid (util-linux) runs the child on the pty")
}

fn wait_ok(mut child: Child, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "child failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn child_report(line: &str) {
    let path = std::env::var(CHILD_OUT_ENV).unwrap();
    let mut f = File::options()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

#[test]
fn ensure_size_on_the_controlling_tty() {
    let (mut term, slave) = pty(0, 0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let child = spawn_child("term_pty::child_ensure_size", &slave, &out);
    term.expect(QUERY, Duration::from_secs(20));
    term.answer(b"\x1b[50;160R");
    wait_ok(child, Duration::from_secs(20));
    let report = std::fs::read_to_string(&out).unwrap();
    assert_eq!(report.trim(), "Ok(160x50 Queried)");
    assert_eq!(winsize(&slave), (160, 50));
}

#[test]
fn child_ensure_size() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let line = match ensure_size(None) {
        Ok(o) => format!("Ok({} {:?})", o.size, o.source),
        Err(e) => format!("Err({e:?})"),
    };
    child_report(&line);
}

#[test]
fn ctrl_l_requery_while_event_stream_runs() {
    let (mut term, slave) = pty(80, 24);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let child = spawn_child("term_pty::child_requery", &slave, &out);
    term.expect(b"READY", Duration::from_secs(20));
    // Give the stream's helper thread time to block in its poll, as in the running app.
    thread::sleep(Duration::from_millis(100));
    term.answer(b"\x0c");
    term.expect(b"\x1b[6n", Duration::from_secs(5));
    // A key typed while the answer is on its way must reach the app, not be lost.
    term.answer(b"\x1b[40;120Rq");
    wait_ok(child, Duration::from_secs(20));
    let report = std::fs::read_to_string(&out).unwrap();
    let mut lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"requery Ok(120x40 Queried)"),
        "{report}"
    );
    // The key was queued before the resize signal arrived; either order is fine for the app.
    lines[1..].sort_unstable();
    assert_eq!(lines[1..], ["key q", "resize 120x40"], "{report}");
    assert_eq!(winsize(&slave), (120, 40));
}

#[test]
fn child_requery() {
    use crossterm::event::{Event, EventStream, KeyCode, KeyModifiers};
    use futures::StreamExt;

    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    crossterm::terminal::enable_raw_mode().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut events = EventStream::new();
        print!("READY\r\n");
        std::io::stdout().flush().unwrap();
        let mut seen = 0;
        while seen < 3 {
            let next = tokio::time::timeout(Duration::from_secs(10), events.next()).await;
            let Ok(Some(Ok(event))) = next else {
                child_report(&format!("stream ended: {next:?}"));
                break;
            };
            match event {
                Event::Key(k)
                    if k.code == KeyCode::Char('l') && k.modifiers == KeyModifiers::CONTROL =>
                {
                    // As the app does: straight from the handler of the key just yielded.
                    let line = match requery_size() {
                        Ok(o) => format!("requery Ok({} {:?})", o.size, o.source),
                        Err(e) => format!("requery Err({e:?})"),
                    };
                    child_report(&line);
                    seen += 1;
                }
                Event::Resize(c, r) => {
                    child_report(&format!("resize {c}x{r}"));
                    seen += 1;
                }
                Event::Key(k) => {
                    child_report(&format!("key {}", k.code));
                    seen += 1;
                }
                _ => {}
            }
        }
    });
    crossterm::terminal::disable_raw_mode().unwrap();
}
