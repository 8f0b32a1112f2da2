//! `phyllome disk`: look into a stopped VM's disk image, mount it read-only, check it.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Subcommand;

use super::output;
use crate::disk::{Filesystem, Inspection};
use crate::fmt::size;
use crate::ops::disk as ops;
use crate::ops::HostPaths;

#[derive(Debug, Subcommand)]
pub enum DiskCommand {
    /// Image format, partition table and each partition's filesystem
    Inspect {
        /// A raw or qcow2 image, or a block device
        path: PathBuf,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Mount a partition read-only (root; refused while anything holds the image)
    Mount {
        /// A raw or qcow2 image of a stopped VM
        path: PathBuf,
        /// Partition number as `disk inspect` lists it (default: the only one)
        #[arg(long, value_name = "N")]
        partition: Option<u32>,
        /// Where to mount it (an empty directory)
        dir: PathBuf,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Unmount what `disk mount` mounted and detach its loop device (root)
    Umount {
        /// The directory `disk mount` mounted on
        dir: PathBuf,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
    /// Check a partition's filesystem without changing it (`fsck -n`; root)
    Fsck {
        /// A raw or qcow2 image of a stopped VM
        path: PathBuf,
        /// Partition number as `disk inspect` lists it (default: the only one)
        #[arg(long, value_name = "N")]
        partition: Option<u32>,
        /// One JSON document for scripts
        #[arg(long)]
        json: bool,
    },
}

/// The checker found errors (its exit code was not 0).
#[derive(Debug, thiserror::Error)]
#[error("The filesystem check found problems (fsck exit code {0})")]
pub struct FsckFailed(pub i32);

pub fn run(paths: &HostPaths, cmd: DiskCommand) -> eyre::Result<()> {
    use super::doc::{self, version};
    match cmd {
        DiskCommand::Inspect { path, json } => {
            doc::begin(json, version::DISK_INSPECT, &[]);
            let ins = ops::inspect(&path)?;
            if json {
                doc::finish(version::DISK_INSPECT, &ins)?;
            } else {
                output::out(&render(&ins))?;
            }
        }
        DiskCommand::Mount {
            path,
            partition,
            dir,
            json,
        } => {
            doc::begin(json, version::DISK_ACTION, &[("action", "mount".into())]);
            let m = ops::mount(paths, &path, partition, &dir)?;
            if json {
                doc::finish(version::DISK_ACTION, &m)?;
            } else {
                let part = m
                    .partition
                    .map_or("the whole disk".to_string(), |n| format!("partition {n}"));
                crate::outln!(
                    "mounted {part} of {} ({}) read-only at {} through {}",
                    m.image.display(),
                    m.filesystem.as_deref().unwrap_or("?"),
                    m.dir.display(),
                    m.device.display()
                )?;
                crate::outln!("unmount with: phyllome disk umount {}", m.dir.display())?;
            }
        }
        DiskCommand::Umount { dir, json } => {
            doc::begin(json, version::DISK_ACTION, &[("action", "umount".into())]);
            let u = ops::umount(paths, &dir)?;
            if json {
                doc::finish(version::DISK_ACTION, &u)?;
                return Ok(());
            }
            let dev = u
                .device
                .map(|d| format!("; detached {}", d.display()))
                .unwrap_or_default();
            let exp = u.export.map(|_| "; export stopped").unwrap_or_default();
            crate::outln!("unmounted {}{dev}{exp}", u.dir.display())?;
        }
        DiskCommand::Fsck {
            path,
            partition,
            json,
        } => {
            doc::begin(json, version::DISK_ACTION, &[("action", "fsck".into())]);
            let r = ops::fsck(paths, &path, partition)?;
            if json {
                doc::finish(version::DISK_ACTION, &r)?;
            } else {
                output::out(&r.output)?;
                crate::outln!(
                    "{}: {}",
                    r.filesystem.as_deref().unwrap_or("?"),
                    if r.clean { "clean" } else { "problems found" }
                )?;
            }
            if !r.clean {
                return Err(FsckFailed(r.exit_code).into());
            }
        }
    }
    Ok(())
}

fn fs_text(f: &Filesystem) -> String {
    let mut s = f.kind.clone();
    if let Some(v) = &f.version {
        let _ = write!(s, " ({v})");
    }
    if let Some(l) = &f.label {
        let _ = write!(s, " label {l:?}");
    }
    if let Some(n) = f.size {
        let _ = write!(s, ", {}", size(n));
    }
    s
}

/// The inspection for people: the image, then one line per partition.
pub fn render(ins: &Inspection) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", ins.path.display());
    let _ = writeln!(
        s,
        "  format         {} ({} virtual, {} on disk)",
        ins.format.as_str(),
        size(ins.virtual_size),
        size(ins.file_size)
    );
    if let Some(b) = &ins.backing_file {
        let _ = writeln!(s, "  backing file   {b}");
    }
    if let Some(q) = &ins.qcow2 {
        let mut flags = vec![
            format!("v{}", q.version),
            format!("{} clusters", size(q.cluster_size)),
        ];
        if q.snapshots > 0 {
            flags.push(format!("{} snapshots", q.snapshots));
        }
        for (on, word) in [
            (q.encrypted, "encrypted"),
            (q.dirty, "dirty"),
            (q.corrupt, "CORRUPT"),
        ] {
            if on {
                flags.push(word.into());
            }
        }
        let _ = writeln!(s, "  qcow2          {}", flags.join(", "));
    }
    match ins.partition_table {
        Some(t) => {
            let id = ins
                .table_id
                .as_deref()
                .map(|i| format!(" ({i})"))
                .unwrap_or_default();
            let _ = writeln!(s, "  table          {}{id}", t.as_str());
        }
        None => {
            let _ = writeln!(s, "  table          unreadable");
        }
    }
    if let Some(f) = &ins.filesystem {
        let _ = writeln!(s, "  filesystem     {}", fs_text(f));
    }
    for p in &ins.partitions {
        let what = match &p.filesystem {
            Some(f) => fs_text(f),
            None if p.container => "extended (holds the logical partitions)".into(),
            None => "no filesystem recognised".into(),
        };
        let name = p
            .name
            .as_deref()
            .map(|n| format!(" {n:?}"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:>3}  {:>10}  {}{name}{}: {what}",
            p.number,
            size(p.size),
            p.kind,
            if p.bootable { " (boot)" } else { "" }
        );
    }
    for w in &ins.warnings {
        let _ = writeln!(s, "  warning: {w}");
    }
    if let Some(e) = &ins.error {
        let _ = writeln!(s, "  cannot read the contents: {e}");
    }
    s
}
