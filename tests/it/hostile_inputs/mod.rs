//! Inputs a hostile local user can hand phyllome, which runs as root: FIFOs and huge files in
//! a `--host-root` tree, `--from /dev/zero`, state directories of another user, a umask that
//! opens everything. Nothing hangs, nothing is read without bound, nothing is written where
//! it should not be, and each refusal names the file and the fix.

mod cli;
mod host;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const GPU: &str = "0000:0b:00.0";
/// Far beyond what any of these commands takes; only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn mkfifo(p: &Path) {
    let _ = fs::remove_file(p);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .expect("mkfifo");
}

/// Lets a reader stuck in a FIFO's open or read go (as a writer that closes at once), so a
/// build that waits on them fails its assertions instead of hanging the test program.
pub fn release(fifos: &[PathBuf]) {
    for f in fifos {
        let _ = rustix::fs::open(
            f,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK,
            rustix::fs::Mode::empty(),
        );
    }
}

/// Runs `cmd`, killed after [`PATIENCE`]; `None` when it had to be.
pub fn run_within(mut cmd: Command) -> Option<Output> {
    let mut child = cmd.spawn().expect("spawn");
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every path below `dir` with its mode, size and modification time.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(p) = pending.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        out.push(format!(
            "{} {:o} {} {:?}",
            p.display(),
            meta.permissions().mode(),
            meta.len(),
            meta.modified().ok()
        ));
        if meta.is_dir() {
            for e in fs::read_dir(&p).expect("read_dir") {
                pending.push(e.expect("entry").path());
            }
        }
    }
    out.sort();
    out
}
