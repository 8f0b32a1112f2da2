//! Snapshots of a stopped VM: qcow2 internal snapshots of its disks (`qemu-img snapshot`),
//! named `phyllome-ID` in every image, recorded beside the memory snapshots under the same
//! IDs. A raw disk has no internal snapshots, so a VM with one is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::snapshot::{SnapshotError, SnapshotInfo, META};
use crate::vm::spec::DiskFormat;
use crate::vm::VmSpec;
use crate::vmm::runtime::now_secs;

/// The tag of snapshot `id` inside each image.
fn tag(id: &str) -> String {
    format!("phyllome-{id}")
}

/// `qemu-img snapshot FLAG TAG PATH`; its stderr is the error.
fn qemu_img(flag: &str, id: &str, path: &Path) -> Result<(), SnapshotError> {
    let what = match flag {
        "-c" => "create",
        "-a" => "apply",
        _ => "delete",
    };
    let err = |message: String| SnapshotError::QemuImg {
        what,
        path: path.display().to_string(),
        message,
    };
    let out = Command::new("qemu-img")
        .args(["snapshot", flag, &tag(id)])
        .arg(path)
        .output()
        .map_err(|e| err(format!("cannot run qemu-img: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    Err(err(text.trim().to_string()))
}

/// The writable disks of `spec`, every one of them qcow2.
fn disks(spec: &VmSpec) -> Result<Vec<PathBuf>, SnapshotError> {
    let mut out = Vec::new();
    for d in spec.disks.iter().filter(|d| !d.readonly) {
        if d.format() != DiskFormat::Qcow2 {
            return Err(SnapshotError::RawDisk {
                vm: spec.name.clone(),
                path: d.path.display().to_string(),
            });
        }
        out.push(d.path.clone());
    }
    if out.is_empty() {
        return Err(SnapshotError::NoDisks {
            vm: spec.name.clone(),
        });
    }
    Ok(out)
}

/// Takes snapshot `id` of every writable disk; on a failure the ones taken are deleted again.
pub(super) fn create(
    spec: &VmSpec,
    id: &str,
    partial: &Path,
    final_dir: &Path,
) -> Result<SnapshotInfo, SnapshotError> {
    let paths = disks(spec)?;
    for (i, p) in paths.iter().enumerate() {
        if let Err(e) = qemu_img("-c", id, p) {
            for done in &paths[..i] {
                let _ = qemu_img("-d", id, done);
            }
            return Err(e);
        }
    }
    let info = SnapshotInfo {
        id: id.to_string(),
        vm: spec.name.clone(),
        created_at: now_secs(),
        state: "Stopped".into(),
        size_bytes: 0,
        path: final_dir.to_path_buf(),
        kind: "disks".into(),
        disks: paths.clone(),
    };
    let text = serde_json::to_vec_pretty(&info).unwrap_or_default();
    let kept =
        std::fs::write(partial.join(META), text).and_then(|()| std::fs::rename(partial, final_dir));
    if let Err(source) = kept {
        for p in &paths {
            let _ = qemu_img("-d", id, p);
        }
        return Err(SnapshotError::Dir {
            path: final_dir.display().to_string(),
            source,
        });
    }
    Ok(info)
}

/// Reverts every disk of the snapshot to it.
pub(super) fn apply(info: &SnapshotInfo) -> Result<(), SnapshotError> {
    info.disks
        .iter()
        .try_for_each(|p| qemu_img("-a", &info.id, p))
}

/// Deletes the snapshot from every disk (one already gone is not an error).
pub(super) fn delete(info: &SnapshotInfo) -> Result<(), SnapshotError> {
    for p in &info.disks {
        if let Err(e) = qemu_img("-d", &info.id, p) {
            if p.exists() && !e.to_string().contains("not found") {
                return Err(e);
            }
        }
    }
    Ok(())
}
