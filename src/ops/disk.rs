//! Disk images of stopped VMs: inspect, mount read-only, unmount, check. Mounting and
//! checking are refused while anything holds the image: a VM of ours whose VMM runs with it,
//! any other process with it open, or a loop device over it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::disk::holders::{self, Holder, Places};
use crate::disk::tools::{self, Export, ToolError};
use crate::disk::{DiskError, Format, Inspection, PartitionError};

use super::HostPaths;

#[derive(Debug, thiserror::Error)]
pub enum DiskOpsError {
    #[error("{0}")]
    Disk(#[from] DiskError),
    #[error("{0}")]
    Partition(#[from] PartitionError),
    #[error("{path} is in use by {holders}; stop it first")]
    Held { path: PathBuf, holders: String },
    #[error("`disk {what}` needs root (loop devices and mounts); run it as root")]
    NotRoot { what: &'static str },
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("{0} is not a mount point")]
    NotMounted(PathBuf),
    #[error("{dir} is mounted from {from}, not by `disk mount` (a read-only loop device); use umount(8) for it")]
    NotOurs { dir: PathBuf, from: String },
    #[error("{0} is already a mount point")]
    AlreadyMounted(PathBuf),
    #[error("{image} cannot be read here: {why}")]
    Unreadable { image: PathBuf, why: String },
    #[error("No filesystem found on {what} of {image}")]
    NoFilesystem { image: PathBuf, what: String },
    #[error("{0}")]
    Tool(#[from] ToolError),
    #[error("Cannot prepare the export directory {path}")]
    ExportDir {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What `disk mount` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mounted {
    pub image: PathBuf,
    pub dir: PathBuf,
    /// The partition mounted (null: the whole disk).
    pub partition: Option<u32>,
    pub filesystem: Option<String>,
    /// The read-only loop device.
    pub device: PathBuf,
    /// For qcow2: the raw view `qemu-storage-daemon` exports, under the run directory.
    pub export: Option<PathBuf>,
}

/// What `disk umount` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmounted {
    pub dir: PathBuf,
    /// The loop device detached.
    pub device: Option<PathBuf>,
    /// The qcow2 export stopped, when there was one of ours.
    pub export: Option<PathBuf>,
}

/// What `disk fsck` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FsckReport {
    pub image: PathBuf,
    pub partition: Option<u32>,
    pub filesystem: Option<String>,
    /// The checker's exit code: 0 clean, 4 errors left uncorrected, 8 it could not check.
    pub exit_code: i32,
    pub clean: bool,
    /// What the checker printed.
    pub output: String,
}

pub fn inspect(path: &Path) -> Result<Inspection, DiskOpsError> {
    Ok(crate::disk::inspect(path)?)
}

/// Everything holding `image`: processes with it open (a VMM of ours named by its VM), loop
/// devices over it, and VMs of ours whose definition lists it while their VMM runs.
pub fn holders(paths: &HostPaths, image: &Path) -> Vec<Holder> {
    let places = Places::default();
    let mut found = holders::scan(image, &places);
    let vmms = vmm_pids(paths);
    for h in &mut found {
        if let Some((name, _)) = vmms.iter().find(|(_, pid)| Some(*pid) == h.pid) {
            h.vm = Some(name.clone());
        }
    }
    // A VMM that has not opened the disk yet (or keeps it elsewhere) still will.
    let Ok(target) = std::fs::metadata(image) else {
        return found;
    };
    let defs = crate::vmm::defs::Defs::open(paths.state_dir.as_deref());
    for (name, spec) in defs.map(|d| d.list()).unwrap_or_default() {
        let Ok(spec) = spec else { continue };
        let listed = spec.disks.iter().any(|d| {
            std::fs::metadata(&d.path).is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.dev() == target.dev() && m.ino() == target.ino()
            })
        });
        let pid = vmms.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
        if let (true, Some(pid)) = (listed, pid) {
            if !found.iter().any(|h| h.pid == Some(pid)) {
                found.push(Holder {
                    pid: Some(pid),
                    command: comm(pid),
                    vm: Some(name),
                });
            }
        }
    }
    found
}

/// VMs of ours whose VMM process is alive, with its pid.
fn vmm_pids(paths: &HostPaths) -> Vec<(String, u32)> {
    let Ok(root) = paths.run_root() else {
        return Vec::new();
    };
    root.names()
        .into_iter()
        .filter_map(|n| {
            let pid = root.vm(&n).ok()?.read_pid()?;
            Path::new("/proc")
                .join(pid.to_string())
                .is_dir()
                .then_some((n, pid))
        })
        .collect()
}

fn comm(pid: u32) -> String {
    crate::files::read_input(&Path::new("/proc").join(pid.to_string()).join("comm"), 256)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn refuse_if_held(paths: &HostPaths, image: &Path) -> Result<(), DiskOpsError> {
    let found = holders(paths, image);
    if found.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = found.iter().map(ToString::to_string).collect();
    Err(DiskOpsError::Held {
        path: image.to_path_buf(),
        holders: list.join(", "),
    })
}

fn need_root(what: &'static str) -> Result<(), DiskOpsError> {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(DiskOpsError::NotRoot { what })
    }
}

/// A read-only block device over one partition of the image (a qcow2 one through its export).
struct Attached {
    device: PathBuf,
    export: Option<Export>,
}

impl Attached {
    fn release(self) {
        let _ = tools::detach_loop(&self.device);
        if let Some(e) = &self.export {
            tools::stop_export(e);
        }
    }
}

fn exports_dir(paths: &HostPaths) -> Result<PathBuf, DiskOpsError> {
    let dir = paths
        .run_root()
        .map_err(|e| DiskOpsError::ExportDir {
            path: PathBuf::from("(run dir)"),
            source: e.into(),
        })?
        .path()
        .join("disks");
    std::fs::create_dir_all(&dir).map_err(|e| DiskOpsError::ExportDir {
        path: dir.clone(),
        source: e.into(),
    })?;
    crate::files::private_dir(&dir).map_err(|e| DiskOpsError::ExportDir {
        path: dir.clone(),
        source: e.into(),
    })?;
    Ok(dir)
}

fn attach(
    paths: &HostPaths,
    image: &Path,
    ins: &Inspection,
    range: (u64, u64),
) -> Result<Attached, DiskOpsError> {
    let export = match ins.format {
        Format::Raw => None,
        Format::Qcow2 => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let file = exports_dir(paths)?.join(format!("{}-{stamp}.raw", std::process::id()));
            Some(tools::export_qcow2(image, &file)?)
        }
    };
    let file = export.as_ref().map_or(image, |e| e.file.as_path());
    match tools::attach_loop(file, range.0, range.1) {
        Ok(device) => Ok(Attached { device, export }),
        Err(e) => {
            if let Some(x) = &export {
                tools::stop_export(x);
            }
            Err(e.into())
        }
    }
}

/// The partition (or the whole disk) holding a filesystem, on a read-only loop device: the
/// device, its filesystem type and its partition number. Mount and fsck both start here.
fn attach_filesystem(
    paths: &HostPaths,
    image: &Path,
    partition: Option<u32>,
) -> Result<(Attached, Option<String>, Option<u32>), DiskOpsError> {
    let ins = readable(image)?;
    let range = crate::disk::partition_range(&ins, partition)?;
    let fs = filesystem(&ins, partition);
    let number = partition.or_else(|| ins.partitions.first().map(|p| p.number));
    if fs.is_none() {
        return Err(DiskOpsError::NoFilesystem {
            image: image.to_path_buf(),
            what: number.map_or("the whole disk".into(), |n| format!("partition {n}")),
        });
    }
    let a = attach(paths, image, &ins, range)?;
    Ok((a, fs, number))
}

/// The inspection, refused when its contents could not be read.
fn readable(image: &Path) -> Result<Inspection, DiskOpsError> {
    let ins = inspect(image)?;
    if let Some(why) = &ins.error {
        return Err(DiskOpsError::Unreadable {
            image: image.to_path_buf(),
            why: why.clone(),
        });
    }
    Ok(ins)
}

fn filesystem(ins: &Inspection, partition: Option<u32>) -> Option<String> {
    let fs = match partition {
        Some(n) => ins
            .partitions
            .iter()
            .find(|p| p.number == n)
            .and_then(|p| p.filesystem.as_ref()),
        None => ins
            .filesystem
            .as_ref()
            .or_else(|| ins.partitions.first().and_then(|p| p.filesystem.as_ref())),
    };
    fs.map(|f| f.kind.clone())
}

/// `disk mount`: one partition (or the whole disk) read-only at `dir`.
pub fn mount(
    paths: &HostPaths,
    image: &Path,
    partition: Option<u32>,
    dir: &Path,
) -> Result<Mounted, DiskOpsError> {
    // A holder is named first: it is the answer whoever asks.
    refuse_if_held(paths, image)?;
    need_root("mount")?;
    if !dir.is_dir() {
        return Err(DiskOpsError::NotADirectory(dir.to_path_buf()));
    }
    if tools::mount_source(dir).is_some() {
        return Err(DiskOpsError::AlreadyMounted(dir.to_path_buf()));
    }
    let (a, fs, number) = attach_filesystem(paths, image, partition)?;
    if let Err(e) = tools::mount_ro(&a.device, dir, fs.as_deref()) {
        a.release();
        return Err(e.into());
    }
    Ok(Mounted {
        image: image.to_path_buf(),
        dir: dir.to_path_buf(),
        partition: number,
        filesystem: fs,
        device: a.device,
        export: a.export.map(|e| e.file),
    })
}

/// `disk umount`: unmounts `dir`, detaches its loop device and stops a qcow2 export of ours.
pub fn umount(paths: &HostPaths, dir: &Path) -> Result<Unmounted, DiskOpsError> {
    need_root("umount")?;
    let source = tools::mount_source(dir).ok_or_else(|| DiskOpsError::NotMounted(dir.into()))?;
    // Only what `disk mount` makes: never the host's own filesystems.
    if !tools::is_read_only_loop(&source) {
        return Err(DiskOpsError::NotOurs {
            dir: dir.to_path_buf(),
            from: source.display().to_string(),
        });
    }
    tools::umount(dir)?;
    let backing = tools::loop_backing(&source);
    tools::detach_loop(&source)?;
    let ours = paths
        .run_root()
        .ok()
        .map(|r| r.path().join("disks"))
        .zip(backing)
        .filter(|(d, b)| b.parent() == Some(d.as_path()))
        .map(|(_, b)| b);
    if let Some(file) = &ours {
        tools::stop_export(&Export {
            file: file.clone(),
            pid_file: file.with_extension("pid"),
        });
    }
    Ok(Unmounted {
        dir: dir.to_path_buf(),
        device: Some(source),
        export: ours,
    })
}

/// `disk fsck`: a check that changes nothing, on a read-only loop device.
pub fn fsck(
    paths: &HostPaths,
    image: &Path,
    partition: Option<u32>,
) -> Result<FsckReport, DiskOpsError> {
    refuse_if_held(paths, image)?;
    need_root("fsck")?;
    let (a, fs, number) = attach_filesystem(paths, image, partition)?;
    let result = tools::fsck(&a.device, fs.as_deref());
    a.release();
    let (exit_code, output) = result?;
    Ok(FsckReport {
        image: image.to_path_buf(),
        partition: number,
        filesystem: fs,
        exit_code,
        clean: exit_code == 0,
        output,
    })
}
