//! The host's tools that mount and check: `losetup` (a read-only loop device at a partition's
//! offset), `mount -o ro`, `umount`, `fsck -n`, and `qemu-storage-daemon`, whose FUSE export
//! shows a qcow2 image as a raw file a loop device can sit on.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::host::mountinfo;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("Cannot run {tool} (is it installed?)")]
    Spawn {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{tool} failed ({status}): {stderr}")]
    Failed {
        tool: String,
        status: String,
        stderr: String,
    },
    #[error("qemu-storage-daemon did not export {image} within {secs} s")]
    ExportTimeout { image: PathBuf, secs: u64 },
    #[error("Cannot prepare {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn run(tool: &str, args: &[&std::ffi::OsStr]) -> Result<Output, ToolError> {
    Command::new(tool)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| ToolError::Spawn {
            tool: tool.into(),
            source,
        })
}

fn checked(tool: &str, args: &[&std::ffi::OsStr]) -> Result<String, ToolError> {
    let out = run(tool, args)?;
    if !out.status.success() {
        return Err(ToolError::Failed {
            tool: tool.into(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// A read-only loop device over `size` bytes of `file` from `offset`.
pub fn attach_loop(file: &Path, offset: u64, size: u64) -> Result<PathBuf, ToolError> {
    let (o, s) = (offset.to_string(), size.to_string());
    let dev = checked(
        "losetup",
        &[
            os("--read-only"),
            os("--find"),
            os("--show"),
            os("--offset"),
            os(&o),
            os("--sizelimit"),
            os(&s),
            file.as_os_str(),
        ],
    )?;
    Ok(PathBuf::from(dev))
}

pub fn detach_loop(dev: &Path) -> Result<(), ToolError> {
    checked("losetup", &[os("--detach"), dev.as_os_str()]).map(drop)
}

/// Mounts read-only; ext3/ext4 also without replaying their journal (`noload`), which
/// would write.
pub fn mount_ro(dev: &Path, dir: &Path, fs_type: Option<&str>) -> Result<(), ToolError> {
    let opts = match fs_type {
        Some("ext3" | "ext4") => "ro,noload",
        _ => "ro",
    };
    checked(
        "mount",
        &[os("-o"), os(opts), dev.as_os_str(), dir.as_os_str()],
    )
    .map(drop)
}

pub fn umount(dir: &Path) -> Result<(), ToolError> {
    checked("umount", &[dir.as_os_str()]).map(drop)
}

/// A check that changes nothing: its exit code (0 clean, 4 errors left, 8 could not check)
/// and what it printed.
pub fn fsck(dev: &Path, fs_type: Option<&str>) -> Result<(i32, String), ToolError> {
    let (tool, args): (&str, Vec<&std::ffi::OsStr>) = match fs_type {
        Some(t) if t.starts_with("ext") => ("e2fsck", vec![os("-n"), os("-f"), dev.as_os_str()]),
        Some("vfat") => ("fsck.vfat", vec![os("-n"), dev.as_os_str()]),
        _ => ("fsck", vec![os("-n"), dev.as_os_str()]),
    };
    let out = run(tool, &args)?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.code().unwrap_or(8), super::clean_lines(&text)))
}

/// Where a directory's mount comes from (`/proc/self/mountinfo`'s source), when it is a
/// mount point.
pub fn mount_source(dir: &Path) -> Option<PathBuf> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let text = crate::files::read_input(&Path::new("/").join(mountinfo::PATH), 16 << 20).ok()?;
    let mounts = mountinfo::parse(&text);
    mountinfo::mounted_at(&mounts, &dir.to_string_lossy()).map(|m| PathBuf::from(&m.source))
}

/// Whether `dev` is a loop device set up read-only (`/sys/block/loopN/ro`).
pub fn is_read_only_loop(dev: &Path) -> bool {
    let Some(name) = dev
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.starts_with("loop"))
    else {
        return false;
    };
    let ro = Path::new("/sys/block").join(name).join("ro");
    crate::files::read_input(&ro, 64).is_ok_and(|s| s.trim() == "1")
}

/// The file a loop device reads (`/sys/block/loopN/loop/backing_file`).
pub fn loop_backing(dev: &Path) -> Option<PathBuf> {
    let name = dev.file_name()?.to_str()?;
    let p = Path::new("/sys/block").join(name).join("loop/backing_file");
    crate::files::read_input(&p, 4096)
        .ok()
        .map(|s| PathBuf::from(s.trim_end_matches('\n')))
}

/// A qcow2 image shown as a raw, read-only file by `qemu-storage-daemon`'s FUSE export.
#[derive(Debug)]
pub struct Export {
    /// The raw view.
    pub file: PathBuf,
    pub pid_file: PathBuf,
}

/// Exports `image` read-only at `file` (created empty first, as FUSE mounts over a file).
pub fn export_qcow2(image: &Path, file: &Path) -> Result<Export, ToolError> {
    let io = |source| ToolError::Io {
        path: file.to_path_buf(),
        source,
    };
    std::fs::write(file, b"").map_err(io)?;
    let pid_file = file.with_extension("pid");
    // Paths are quoted for qemu's option parser, where a comma separates options.
    let q = |p: &Path| p.to_string_lossy().replace(',', ",,");
    let args = [
        "--blockdev".to_string(),
        format!(
            "driver=file,node-name=file,filename={},read-only=on",
            q(image)
        ),
        "--blockdev".into(),
        "driver=qcow2,node-name=fmt,file=file,read-only=on".into(),
        "--export".into(),
        format!(
            "type=fuse,id=exp,node-name=fmt,mountpoint={},writable=off",
            q(file)
        ),
        "--pidfile".into(),
        pid_file.to_string_lossy().into_owned(),
        "--daemonize".into(),
    ];
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| os(a)).collect();
    checked("qemu-storage-daemon", &args)?;
    let export = Export {
        file: file.to_path_buf(),
        pid_file,
    };
    // --daemonize returns once the export is up; wait a little for the size to show anyway.
    let until = Instant::now() + Duration::from_secs(5);
    while mount_source(file).is_none() {
        if Instant::now() > until {
            stop_export(&export);
            return Err(ToolError::ExportTimeout {
                image: image.to_path_buf(),
                secs: 5,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(export)
}

/// Ends the export's daemon (it unmounts its FUSE file on SIGTERM) and removes its files.
pub fn stop_export(export: &Export) {
    let pid = crate::files::read_input(&export.pid_file, 64)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let until = Instant::now() + Duration::from_secs(5);
        while mount_source(&export.file).is_some() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(&export.file);
    let _ = std::fs::remove_file(&export.pid_file);
}
