//! Who has an image open: any process (its open files under `/proc/*/fd`) and any loop
//! device backed by it (`/sys/block/loop*/loop/backing_file`). Files are compared by device
//! and inode, so another path to the same image (a link, a bind mount) is still found.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One holder of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    /// The process (null for a loop device nobody has open).
    pub pid: Option<u32>,
    /// Its command name (`/proc/PID/comm`), or the loop device.
    pub command: String,
    /// The VM whose VMM this is, when it is one of ours.
    pub vm: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.vm, self.pid) {
            (Some(vm), Some(pid)) => write!(f, "VM {vm} (pid {pid}, {})", self.command),
            (Some(vm), None) => write!(f, "VM {vm} ({})", self.command),
            (None, Some(pid)) => write!(f, "pid {pid} ({})", self.command),
            (None, None) => f.write_str(&self.command),
        }
    }
}

/// Where to look: the real `/proc` and `/sys` (tests point them elsewhere).
#[derive(Debug, Clone)]
pub struct Places {
    pub proc: PathBuf,
    pub sys: PathBuf,
}

impl Default for Places {
    fn default() -> Self {
        Places {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
        }
    }
}

fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Processes (other than this one) with `image` open, then loop devices backed by it.
pub fn scan(image: &Path, places: &Places) -> Vec<Holder> {
    let Ok(target) = std::fs::metadata(image) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir(&places.proc) else {
        return out;
    };
    let mut pids: Vec<u32> = procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != me)
        .collect();
    pids.sort_unstable();
    for pid in pids {
        let dir = places.proc.join(pid.to_string());
        // A process can end while it is looked at, and others' fds need root: skip those.
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::metadata(fd.path()).is_ok_and(|m| same_file(&m, &target)));
        if holds {
            out.push(Holder {
                pid: Some(pid),
                command: command(&dir),
                vm: None,
            });
        }
    }
    out.extend(loops(&target, places));
    out
}

fn command(proc_dir: &Path) -> String {
    crate::files::read_input(&proc_dir.join("comm"), 256)
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

fn loops(target: &std::fs::Metadata, places: &Places) -> Vec<Holder> {
    let Ok(blocks) = std::fs::read_dir(places.sys.join("block")) else {
        return Vec::new();
    };
    let mut out: Vec<Holder> = blocks
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let backing =
                crate::files::read_input(&e.path().join("loop/backing_file"), 4096).ok()?;
            let path = backing.trim_end_matches('\n');
            let m = std::fs::metadata(path).ok()?;
            same_file(&m, target).then(|| Holder {
                pid: None,
                command: format!("loop device /dev/{name}"),
                vm: None,
            })
        })
        .collect();
    out.sort_by(|a, b| a.command.cmp(&b.command));
    out
}

/// The loop devices backed by `image`, as `/dev/loopN`.
pub fn loop_devices(image: &Path, places: &Places) -> Vec<PathBuf> {
    let Ok(target) = std::fs::metadata(image) else {
        return Vec::new();
    };
    loops(&target, places)
        .into_iter()
        .filter_map(|h| h.command.strip_prefix("loop device ").map(PathBuf::from))
        .collect()
}
