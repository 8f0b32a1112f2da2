//! Cold start of the console to its first complete frame in an 80x24 pty, and its peak RSS.
//!
//! `cargo bench --bench startup` runs the `phyllome` binary that cargo built for this bench
//! (release-like profile). Settings, all optional:
//! - `PHYLLOME_BIN`: the binary to run instead.
//! - `PHYLLOME_BENCH_HOST_ROOT`: the `--host-root` tree (default: the `desktop` fixture from
//!   `phyllome::fixture`, written to a temporary directory).
//! - `PHYLLOME_BENCH_READY`: text that appears once the first frame is complete; without it the
//!   frame is complete when the bottom row (the key-hint footer) is drawn and output has been
//!   quiet for 50 ms.
//! - `PHYLLOME_BENCH_RUNS`: how many measured runs (default 20).
//! - `PHYLLOME_BENCH_SHOW=1`: print the warm-up run's output timeline and its first frame.
//!
//! Each run: spawn the binary on a fresh pty slave sized 80x24 (through `setsid -c`, so the pty
//! is its controlling terminal as on a real console), play the terminal on the master side
//! (parse with `vt100`, answer cursor-position and device-attribute queries), note when the
//! last byte of the first complete frame arrived, read the peak RSS, send `q`, wait for exit.
//!
//! Peak RSS is `VmHWM` from `/proc/<pid>/status`: the kernel's high-water mark of resident
//! memory, the same counter `wait4`'s `ru_maxrss` reports at exit. It is sampled after the first
//! frame and then every millisecond until the process is gone, so quitting is covered too.
//! (`wait4` itself is not reachable without `unsafe` or an extra dependency.)
// A benchmark prints its figures and stops at the first failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::string_slice,
    clippy::exit
)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{self, Winsize};

const COLS: u16 = 80;
const ROWS: u16 = 24;
const QUIET: Duration = Duration::from_millis(50);
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(3);
const TARGET_FRAME_MS: f64 = 50.0;
const TARGET_RSS_MB: f64 = 20.0;

fn main() -> ExitCode {
    let bin = match find_binary() {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("startup bench: {why}");
            eprintln!(
                "Build it with `cargo build --release --bin phyllome`, or point PHYLLOME_BIN at it."
            );
            return ExitCode::from(2);
        }
    };
    // The fixture keeps runs comparable across machines; `/` measures this host instead.
    let (host_root, fixture) = match std::env::var("PHYLLOME_BENCH_HOST_ROOT") {
        Ok(root) => (root, None),
        Err(_) => match desktop_fixture() {
            Ok(dir) => (dir.path().display().to_string(), Some(dir)),
            Err(e) => {
                eprintln!("startup bench: cannot write the fixture host tree: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let ready = std::env::var("PHYLLOME_BENCH_READY")
        .ok()
        .filter(|s| !s.is_empty());
    let runs: usize = std::env::var("PHYLLOME_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(20);
    let setsid = which("setsid");

    println!("phyllome startup: {}", bin.display());
    println!(
        "  --host-root {host_root}{}, {COLS}x{ROWS} pty, {runs} runs after 1 warm-up, done when {}",
        if fixture.is_some() {
            " (desktop fixture)"
        } else {
            ""
        },
        match &ready {
            Some(text) => format!("{text:?} is on screen"),
            None => format!(
                "the bottom row is drawn and output is quiet for {} ms",
                QUIET.as_millis()
            ),
        }
    );
    if setsid.is_none() {
        println!("  (setsid not found: the pty will not be the controlling terminal)");
    }

    let opts = RunOptions {
        bin: &bin,
        host_root: &host_root,
        ready: ready.as_deref(),
        setsid: setsid.as_deref(),
    };
    let mut results = Vec::with_capacity(runs);
    for i in 0..=runs {
        match run_once(&opts) {
            Ok(r) if i == 0 => {
                println!(
                    "  warm-up: first frame {:.1} ms, peak RSS {:.1} MiB",
                    r.first_frame_ms, r.peak_rss_mb
                );
                if std::env::var_os("PHYLLOME_BENCH_SHOW").is_some() {
                    for (ms, len) in &r.timeline {
                        println!("    {ms:7.1} ms  {len:5} bytes");
                    }
                    println!("{}", r.screen);
                }
            }
            Ok(r) => results.push(r),
            Err(failure) => {
                eprintln!("startup bench: run {i} failed: {}", failure.why);
                if !failure.screen.trim().is_empty() {
                    eprintln!("what it wrote:\n{}", failure.screen);
                }
                return ExitCode::FAILURE;
            }
        }
    }

    let frame: Vec<f64> = results.iter().map(|r| r.first_frame_ms).collect();
    let rss: Vec<f64> = results.iter().map(|r| r.peak_rss_mb).collect();
    let quit: Vec<f64> = results.iter().map(|r| r.quit_ms).collect();
    report("first frame", "ms", &frame, Some(TARGET_FRAME_MS));
    report("peak RSS", "MiB", &rss, Some(TARGET_RSS_MB));
    report("quit on q", "ms", &quit, None);
    ExitCode::SUCCESS
}

fn report(what: &str, unit: &str, values: &[f64], target: Option<f64>) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let (min, max) = (v[0], v[v.len() - 1]);
    let verdict = match target {
        Some(t) if median < t => format!("  target < {t} {unit}: met"),
        Some(t) => format!("  target < {t} {unit}: MISSED"),
        None => String::new(),
    };
    println!("{what:>12}: median {median:7.1} {unit:<3} min {min:7.1}  max {max:7.1}{verdict}");
}

/// A desktop-like host (GPU with its audio function in one group, NVMe, NIC) in a temporary
/// directory that lives as long as the returned handle.
fn desktop_fixture() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    phyllome::fixture::presets::desktop().write(dir.path())?;
    Ok(dir)
}

/// `PHYLLOME_BIN`, else the binary cargo built for this bench, else `target/release/phyllome`.
fn find_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("PHYLLOME_BIN") {
        let bin = PathBuf::from(bin);
        return if bin.is_file() {
            Ok(bin)
        } else {
            Err(format!("PHYLLOME_BIN={} does not exist", bin.display()))
        };
    }
    let mut candidates = Vec::new();
    if let Some(built) = option_env!("CARGO_BIN_EXE_phyllome") {
        candidates.push(PathBuf::from(built));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    candidates.push(target.join("release").join("phyllome"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            format!("no phyllome binary (looked at {})", tried.join(", "))
        })
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

struct RunOptions<'a> {
    bin: &'a Path,
    host_root: &'a str,
    ready: Option<&'a str>,
    setsid: Option<&'a Path>,
}

struct RunResult {
    /// When each chunk of output arrived (ms after spawn) and its size.
    timeline: Vec<(f64, usize)>,
    screen: String,
    first_frame_ms: f64,
    peak_rss_mb: f64,
    quit_ms: f64,
}

struct Failure {
    why: String,
    screen: String,
}

/// A failed run, with everything the console wrote rendered on a tall screen, so an error
/// message that scrolled off the 24 rows is still shown.
fn fail(why: impl Into<String>, raw: &[u8]) -> Failure {
    let mut tall = vt100::Parser::new(1000, COLS, 0);
    tall.process(raw);
    Failure {
        why: why.into(),
        screen: tall.screen().contents().trim_end().to_owned(),
    }
}

fn exited_early(status: std::process::ExitStatus, raw: &[u8]) -> Failure {
    fail(
        format!("the console exited ({status}) before drawing a complete frame"),
        raw,
    )
}

/// Kills the child if a run is abandoned half way, so a failed run leaves nothing behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn run_once(opts: &RunOptions<'_>) -> Result<RunResult, Failure> {
    let mut parser = vt100::Parser::new(ROWS, COLS, 0);
    let mut raw = Vec::new();
    let mut timeline = Vec::new();
    let (mut master, slave, output) = pty().map_err(|e| fail(format!("pty: {e}"), &raw))?;

    let mut cmd = match opts.setsid {
        Some(setsid) => {
            let mut c = Command::new(setsid);
            c.arg("-c").arg(opts.bin);
            c
        }
        None => Command::new(opts.bin),
    };
    cmd.args(["--host-root", opts.host_root])
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8")
        .env_remove("LC_ALL")
        .env_remove("NO_COLOR");
    let stdio = |f: &File| f.try_clone().map(Stdio::from);
    let (i, o, e) = match (stdio(&slave), stdio(&slave), stdio(&slave)) {
        (Ok(i), Ok(o), Ok(e)) => (i, o, e),
        _ => return Err(fail("cannot share the pty slave", &raw)),
    };
    let started = Instant::now();
    let child = cmd
        .stdin(i)
        .stdout(o)
        .stderr(e)
        .spawn()
        .map_err(|e| fail(format!("cannot start {}: {e}", opts.bin.display()), &raw))?;
    // Only the child holds the slave now (`Command` keeps its copies until dropped), so the
    // reader sees EOF when the console exits.
    drop(cmd);
    drop(slave);
    let mut child = Reaper(child);
    let pid = child.0.id();

    // Read until the frame is complete and output has gone quiet.
    let mut last_output: Option<Instant> = None;
    loop {
        let waited = match last_output {
            Some(_) => QUIET,
            None => Duration::from_millis(100),
        };
        match output.recv_timeout(waited) {
            Ok((at, bytes)) => {
                parser.process(&bytes);
                raw.extend_from_slice(&bytes);
                timeline.push(((at - started).as_secs_f64() * 1000.0, bytes.len()));
                answer_queries(&bytes, &parser, &mut master);
                if frame_complete(&parser, opts.ready) {
                    last_output = Some(at);
                } else {
                    last_output = None;
                }
                if started.elapsed() > FRAME_TIMEOUT {
                    return Err(fail("no complete frame within 10 s", &raw));
                }
            }
            Err(RecvTimeoutError::Timeout) if last_output.is_some() => break,
            Err(RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.0.try_wait() {
                    return Err(exited_early(status, &raw));
                }
                if started.elapsed() > FRAME_TIMEOUT {
                    return Err(fail("no complete frame within 10 s", &raw));
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return match child.0.wait() {
                    Ok(status) => Err(exited_early(status, &raw)),
                    Err(e) => Err(fail(format!("wait: {e}"), &raw)),
                };
            }
        }
    }
    let first_frame = last_output.map(|t| t - started).unwrap_or_default();
    let screen = parser.screen().contents();

    let mut peak_kb = vm_hwm_kb(pid).unwrap_or(0);
    let _ = master.write_all(b"q");
    let quit_sent = Instant::now();
    let quit = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        match child.0.try_wait() {
            Ok(Some(_)) => break quit_sent.elapsed(),
            Ok(None) if quit_sent.elapsed() > EXIT_TIMEOUT => {
                return Err(fail("the console did not exit on q within 3 s", &raw));
            }
            Ok(None) => thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(fail(format!("wait: {e}"), &raw)),
        }
        // Keep the pty drained so the console can never block writing its last frame.
        while output.try_recv().is_ok() {}
    };
    if peak_kb == 0 {
        return Err(fail("could not read VmHWM from /proc/<pid>/status", &raw));
    }
    Ok(RunResult {
        timeline,
        screen,
        first_frame_ms: first_frame.as_secs_f64() * 1000.0,
        peak_rss_mb: peak_kb as f64 / 1024.0,
        quit_ms: quit.as_secs_f64() * 1000.0,
    })
}

/// The ready text is on screen, or (without one) the bottom row has something on it.
fn frame_complete(parser: &vt100::Parser, ready: Option<&str>) -> bool {
    let screen = parser.screen();
    match ready {
        Some(text) => screen.contents().contains(text),
        None => screen
            .rows(0, COLS)
            .nth(usize::from(ROWS - 1))
            .is_some_and(|row| !row.trim().is_empty()),
    }
}

/// Answer what a terminal would, so a console that asks is not held up by the bench.
fn answer_queries(bytes: &[u8], parser: &vt100::Parser, master: &mut File) {
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    if has(b"\x1b[6n") {
        let (row, col) = parser.screen().cursor_position();
        let _ = write!(master, "\x1b[{};{}R", row + 1, col + 1);
    }
    if has(b"\x1b[c") || has(b"\x1b[0c") {
        let _ = master.write_all(b"\x1b[?62;22c");
    }
}

/// Peak resident set size so far, in kB; `None` once the process is gone (or a zombie).
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

type Output = Receiver<(Instant, Vec<u8>)>;

/// A pty pair sized 80x24: the master (terminal side), the slave (for the console), and the
/// master's output as timestamped chunks from a reader thread.
fn pty() -> std::io::Result<(File, File, Output)> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave: OwnedFd = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let size = Winsize {
        ws_row: ROWS,
        ws_col: COLS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    termios::tcsetwinsize(&slave, size)?;
    let mut reader = File::from(master.try_clone()?);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        // EIO once the last slave descriptor is closed, i.e. the console has exited.
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    Ok((File::from(master), File::from(slave), rx))
}
