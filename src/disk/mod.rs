//! Disk images of stopped VMs, read without the guest: the image format (raw or qcow2, read
//! here, clusters included), the partition table (GPT or MBR) and each partition's filesystem
//! (type, label, size from its superblock). Mounting and checking go through the host's own
//! tools (`losetup`, `mount`, `fsck`, `qemu-storage-daemon`) in [`tools`]; who holds an image
//! open is in [`holders`]. Nothing here trusts the image: every field read is bounds-checked,
//! and no size taken from it decides how much is allocated.

mod fs;
pub mod holders;
mod image;
mod table;
pub mod tools;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use fs::Filesystem;
pub use image::{Format, Image, Qcow2Info};
pub use table::{Partition, TableKind};

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("Cannot open the image {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a directory, not a disk image")]
    Directory { path: PathBuf },
    #[error("{path} is a {kind}, not a disk image (a regular file or a block device)")]
    NotAnImage { path: PathBuf, kind: &'static str },
    #[error("Cannot read {path} at byte {offset}")]
    Read {
        path: PathBuf,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("The qcow2 image {path} is damaged: {what}")]
    BadQcow2 { path: PathBuf, what: String },
    #[error("The qcow2 image {path} uses {what}, which phyllome cannot read")]
    Unsupported { path: PathBuf, what: String },
    #[error("The backing chain of {path} is longer than {max} images (a loop?)")]
    BackingTooDeep { path: PathBuf, max: usize },
}

/// Text read from an image (labels, names, the backing file's name) is the guest's: its
/// control characters become `?` before anything shows it on a terminal.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// [`clean`] for text of several lines (a checker's report, which quotes labels).
pub fn clean_lines(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

/// What `disk inspect` reports about one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    pub path: PathBuf,
    /// `raw` or `qcow2`.
    pub format: Format,
    /// Bytes the guest sees.
    pub virtual_size: u64,
    /// Bytes of the file (or block device) on the host.
    pub file_size: u64,
    /// The qcow2 backing file as written in the image (null: none, or raw).
    pub backing_file: Option<String>,
    /// Fields only qcow2 images have.
    pub qcow2: Option<Qcow2Info>,
    /// `gpt`, `mbr` or `none`; null when the table could not be read (see `error`).
    pub partition_table: Option<TableKind>,
    /// GPT disk GUID or MBR disk signature.
    pub table_id: Option<String>,
    pub partitions: Vec<Partition>,
    /// A filesystem on the whole disk (no partition table).
    pub filesystem: Option<Filesystem>,
    /// Odd things met: a damaged table, a partition past the end, a backup GPT used.
    pub warnings: Vec<String>,
    /// Why the contents could not be read (the format fields above still are).
    pub error: Option<String>,
}

/// Reads the image at `path`: format, table, filesystems.
pub fn inspect(path: &Path) -> Result<Inspection, DiskError> {
    let img = Image::open(path)?;
    let mut out = Inspection {
        path: path.to_path_buf(),
        format: img.format(),
        virtual_size: img.size(),
        file_size: img.file_size(),
        backing_file: img.qcow2().and_then(|q| q.backing_file.clone()),
        qcow2: img.qcow2().cloned(),
        partition_table: None,
        table_id: None,
        partitions: Vec::new(),
        filesystem: None,
        warnings: Vec::new(),
        error: None,
    };
    match contents(&img, &mut out) {
        Ok(()) => {}
        Err(e) => out.error = Some(clean(&crate::error::Chain(&e).to_string())),
    }
    Ok(out)
}

fn contents(img: &Image, out: &mut Inspection) -> Result<(), DiskError> {
    img.readable()?;
    // A filesystem made on the whole disk has no table; FAT's boot sector also ends in 55 AA,
    // so the superblock is looked for before the MBR.
    let table = table::read(img)?;
    out.warnings.extend(table.warnings);
    if table.kind == TableKind::None {
        out.filesystem = fs::probe(img, 0, img.size())?;
    }
    out.partition_table = Some(table.kind);
    out.table_id = table.id;
    for mut p in table.partitions {
        if !p.container {
            let len = p.size.min(img.size().saturating_sub(p.start));
            p.filesystem = fs::probe(img, p.start, len)?;
        }
        out.partitions.push(p);
    }
    Ok(())
}

/// The partition `number` of the image (None: the whole disk, which must have no table or
/// exactly one partition), as a byte range to hand to `losetup`.
pub fn partition_range(
    ins: &Inspection,
    number: Option<u32>,
) -> Result<(u64, u64), PartitionError> {
    match number {
        Some(n) => ins
            .partitions
            .iter()
            .find(|p| p.number == n && !p.container)
            .map(|p| (p.start, p.size))
            .ok_or_else(|| PartitionError::NoSuch {
                number: n,
                have: numbers(ins),
            }),
        None => match (ins.partition_table, ins.partitions.as_slice()) {
            (Some(TableKind::None), _) => Ok((0, ins.virtual_size)),
            (_, [only]) if !only.container => Ok((only.start, only.size)),
            (None, _) => Err(PartitionError::Unreadable),
            _ => Err(PartitionError::Choose { have: numbers(ins) }),
        },
    }
}

fn numbers(ins: &Inspection) -> String {
    let v: Vec<String> = ins
        .partitions
        .iter()
        .filter(|p| !p.container)
        .map(|p| p.number.to_string())
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("No partition {number} (partitions: {have})")]
    NoSuch { number: u32, have: String },
    #[error("The image has several partitions ({have}): choose one with --partition N")]
    Choose { have: String },
    #[error("The partition table could not be read")]
    Unreadable,
}
