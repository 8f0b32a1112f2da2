//! An image opened for reading: a raw file or block device, or a qcow2 file whose clusters are
//! looked up here (L1 → L2 → data, unallocated clusters from the backing file or zeros).

use std::fs::File;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::DiskError;

/// Backing files followed at most (qemu allows more; a rescue look never needs them).
const MAX_CHAIN: usize = 16;
const QCOW2_MAGIC: &[u8; 4] = b"QFI\xfb";
/// Bits 9..55 of L1 and L2 entries: a host offset.
const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
const L2_COMPRESSED: u64 = 1 << 62;
const L2_ZERO: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Raw,
    Qcow2,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
        }
    }
}

/// The qcow2 header's fields worth showing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Qcow2Info {
    /// 2 or 3.
    pub version: u32,
    pub cluster_size: u64,
    pub backing_file: Option<String>,
    /// The backing file's format from the header extension, when written.
    pub backing_format: Option<String>,
    /// Internal snapshots (`qemu-img snapshot -l`).
    pub snapshots: u32,
    pub encrypted: bool,
    /// Left open by a VMM that did not close it (lazy refcounts).
    pub dirty: bool,
    pub corrupt: bool,
}

#[derive(Debug)]
struct Qcow2 {
    info: Qcow2Info,
    cluster_bits: u32,
    l1_size: u64,
    l1_offset: u64,
    /// Why data cannot be read (encryption, an external data file...), when so.
    unreadable: Option<String>,
    backing: Option<Box<Image>>,
    backing_error: Option<String>,
}

#[derive(Debug)]
pub struct Image {
    path: PathBuf,
    file: File,
    file_size: u64,
    size: u64,
    qcow2: Option<Qcow2>,
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

impl Image {
    pub fn open(path: &Path) -> Result<Image, DiskError> {
        Self::open_depth(path, 0)
    }

    fn open_depth(path: &Path, depth: usize) -> Result<Image, DiskError> {
        let open = |source| DiskError::Open {
            path: path.to_path_buf(),
            source,
        };
        // Looked at before opening: opening a FIFO for reading would wait for a writer.
        let meta = std::fs::metadata(path).map_err(open)?;
        check_type(path, &meta.file_type())?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
            .map_err(open)?;
        // Again on what was opened, in case the path changed in between.
        let meta = file.metadata().map_err(open)?;
        check_type(path, &meta.file_type())?;
        let file_size = if meta.file_type().is_block_device() {
            rustix::fs::seek(&file, rustix::fs::SeekFrom::End(0)).map_err(|e| open(e.into()))?
        } else {
            meta.len()
        };
        let mut img = Image {
            path: path.to_path_buf(),
            file,
            file_size,
            size: file_size,
            qcow2: None,
        };
        let mut head = [0u8; 112];
        let n = img.read_file(0, &mut head)?;
        if n >= 72 && head.starts_with(QCOW2_MAGIC) {
            let q = img.parse_qcow2(&head, depth)?;
            img.size = be64(&head, 24);
            img.qcow2 = Some(q);
        }
        Ok(img)
    }

    pub fn format(&self) -> Format {
        if self.qcow2.is_some() {
            Format::Qcow2
        } else {
            Format::Raw
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    pub fn qcow2(&self) -> Option<&Qcow2Info> {
        self.qcow2.as_ref().map(|q| &q.info)
    }

    /// Fails when the guest's data cannot be read here (the header still can).
    pub fn readable(&self) -> Result<(), DiskError> {
        if let Some(q) = &self.qcow2 {
            if let Some(what) = &q.unreadable {
                return Err(DiskError::Unsupported {
                    path: self.path.clone(),
                    what: what.clone(),
                });
            }
            if let Some(e) = &q.backing_error {
                return Err(DiskError::BadQcow2 {
                    path: self.path.clone(),
                    what: e.clone(),
                });
            }
        }
        Ok(())
    }

    /// Bytes of the file itself; fewer than asked at its end.
    fn read_file(&self, offset: u64, buf: &mut [u8]) -> Result<usize, DiskError> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            match self.file.read_at(&mut buf[done..], at) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(DiskError::Read {
                        path: self.path.clone(),
                        offset: at,
                        source,
                    })
                }
            }
        }
        Ok(done)
    }

    /// Guest bytes at `offset`; past the virtual end they read as zeros.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        buf.fill(0);
        if offset >= self.size {
            return Ok(());
        }
        let len = (buf.len() as u64).min(self.size - offset) as usize;
        match &self.qcow2 {
            None => {
                self.read_file(offset, &mut buf[..len])?;
                Ok(())
            }
            Some(q) => self.read_qcow2(q, offset, &mut buf[..len]),
        }
    }

    fn bad(&self, what: impl Into<String>) -> DiskError {
        DiskError::BadQcow2 {
            path: self.path.clone(),
            what: what.into(),
        }
    }

    fn parse_qcow2(&self, head: &[u8], depth: usize) -> Result<Qcow2, DiskError> {
        let version = be32(head, 4);
        if !(2..=3).contains(&version) {
            return Err(self.bad(format!("unknown version {version}")));
        }
        let cluster_bits = be32(head, 20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(self.bad(format!("cluster bits {cluster_bits} (9 to 21)")));
        }
        let incompat = if version >= 3 { be64(head, 72) } else { 0 };
        let header_len = if version >= 3 {
            u64::from(be32(head, 100))
        } else {
            72
        };
        let mut unreadable = None;
        let crypt = be32(head, 32);
        if crypt != 0 {
            unreadable = Some("encryption".to_string());
        } else if incompat & 0b100 != 0 {
            unreadable = Some("an external data file".to_string());
        } else if incompat & 0b1_0000 != 0 {
            unreadable = Some("extended L2 entries".to_string());
        } else if incompat & !0b1_1111 != 0 {
            unreadable = Some(format!("unknown incompatible features {incompat:#x}"));
        }
        let (backing_format, _) = self.extensions(header_len, cluster_bits)?;
        let backing_file = self.backing_name(head)?;
        let mut q = Qcow2 {
            info: Qcow2Info {
                version,
                cluster_size: 1 << cluster_bits,
                backing_file: backing_file.as_deref().map(super::clean),
                backing_format,
                snapshots: be32(head, 60),
                encrypted: crypt != 0,
                dirty: incompat & 1 != 0,
                corrupt: incompat & 0b10 != 0,
            },
            cluster_bits,
            l1_size: u64::from(be32(head, 36)),
            l1_offset: be64(head, 40),
            unreadable,
            backing: None,
            backing_error: None,
        };
        if let Some(name) = backing_file {
            let p = Path::new(&name);
            let full = if p.is_absolute() {
                p.to_path_buf()
            } else {
                self.path.parent().unwrap_or(Path::new(".")).join(p)
            };
            if depth + 1 >= MAX_CHAIN {
                return Err(DiskError::BackingTooDeep {
                    path: self.path.clone(),
                    max: MAX_CHAIN,
                });
            }
            match Image::open_depth(&full, depth + 1) {
                Ok(b) => q.backing = Some(Box::new(b)),
                Err(e @ DiskError::BackingTooDeep { .. }) => return Err(e),
                Err(e) => {
                    q.backing_error = Some(format!(
                        "its backing file cannot be read: {}",
                        crate::error::Chain(&e)
                    ))
                }
            }
        }
        Ok(q)
    }

    fn backing_name(&self, head: &[u8]) -> Result<Option<String>, DiskError> {
        let off = be64(head, 8);
        let len = be32(head, 16);
        if off == 0 || len == 0 {
            return Ok(None);
        }
        // qemu's own limit.
        if len > 1023 {
            return Err(self.bad(format!("backing file name of {len} bytes")));
        }
        let mut name = vec![0u8; len as usize];
        if self.read_file(off, &mut name)? != name.len() {
            return Err(self.bad("backing file name past the end of the file"));
        }
        Ok(Some(String::from_utf8_lossy(&name).into_owned()))
    }

    /// Header extensions: the backing format (0xE2792ACA).
    fn extensions(&self, start: u64, cluster_bits: u32) -> Result<(Option<String>, ()), DiskError> {
        let end = 1u64 << cluster_bits;
        let mut at = start;
        let mut backing_format = None;
        // Extensions live in the first cluster; a few dozen at most.
        for _ in 0..64 {
            if at + 8 > end {
                break;
            }
            let mut h = [0u8; 8];
            if self.read_file(at, &mut h)? < 8 {
                break;
            }
            let (kind, len) = (be32(&h, 0), u64::from(be32(&h, 4)));
            if kind == 0 {
                break;
            }
            if at + 8 + len > end {
                return Err(self.bad("a header extension runs past the first cluster"));
            }
            if kind == 0xE279_2ACA && len <= 64 {
                let mut v = vec![0u8; len as usize];
                self.read_file(at + 8, &mut v)?;
                backing_format = Some(super::clean(&String::from_utf8_lossy(&v)));
            }
            at += 8 + len.div_ceil(8) * 8;
        }
        Ok((backing_format, ()))
    }

    fn read_qcow2(&self, q: &Qcow2, mut offset: u64, mut buf: &mut [u8]) -> Result<(), DiskError> {
        let cs = 1u64 << q.cluster_bits;
        let l2_entries = cs / 8;
        while !buf.is_empty() {
            let in_cluster = offset & (cs - 1);
            let n = ((cs - in_cluster) as usize).min(buf.len());
            let (chunk, rest) = buf.split_at_mut(n);
            let index = offset >> q.cluster_bits;
            let (l1_index, l2_index) = (index / l2_entries, index % l2_entries);
            let data = if l1_index >= q.l1_size {
                None
            } else {
                let l1 = self.entry(q.l1_offset.saturating_add(l1_index * 8))? & OFFSET_MASK;
                if l1 == 0 {
                    None
                } else {
                    let l2 = self.entry(l1.saturating_add(l2_index * 8))?;
                    if l2 & L2_COMPRESSED != 0 {
                        return Err(DiskError::Unsupported {
                            path: self.path.clone(),
                            what: "compressed clusters".into(),
                        });
                    }
                    match l2 & OFFSET_MASK {
                        _ if q.info.version >= 3 && l2 & L2_ZERO != 0 => Some(None),
                        0 => None,
                        host => Some(Some(host)),
                    }
                }
            };
            match data {
                Some(Some(host)) => {
                    let got = self.read_file(host + in_cluster, chunk)?;
                    if got < chunk.len() {
                        return Err(self.bad(format!("cluster at {host} past the end of the file")));
                    }
                }
                Some(None) => chunk.fill(0),
                None => match &q.backing {
                    Some(b) => b.read_at(offset, chunk)?,
                    None => chunk.fill(0),
                },
            }
            offset += n as u64;
            buf = rest;
        }
        Ok(())
    }

    fn entry(&self, at: u64) -> Result<u64, DiskError> {
        let mut e = [0u8; 8];
        if self.read_file(at, &mut e)? < 8 {
            return Err(self.bad(format!("table entry at {at} past the end of the file")));
        }
        Ok(u64::from_be_bytes(e))
    }
}

fn check_type(path: &Path, t: &std::fs::FileType) -> Result<(), DiskError> {
    let kind = if t.is_dir() {
        return Err(DiskError::Directory {
            path: path.to_path_buf(),
        });
    } else if t.is_file() || t.is_block_device() {
        return Ok(());
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "character device"
    } else {
        "special file"
    };
    Err(DiskError::NotAnImage {
        path: path.to_path_buf(),
        kind,
    })
}
