//! Filesystems and other contents recognised by their superblock's magic, as `blkid -p`
//! does: ext2/3/4, FAT (vfat), NTFS, exFAT, btrfs, XFS, swap, LUKS, ISO 9660.

use serde::Serialize;

use super::image::Image;
use super::DiskError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    /// `blkid`'s TYPE: `ext4`, `vfat`, `ntfs`, `exfat`, `btrfs`, `xfs`, `swap`,
    /// `crypto_LUKS`, `iso9660`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `FAT32`, `1.0` (ext revision)...: blkid's VERSION where it is cheap to tell.
    pub version: Option<String>,
    pub label: Option<String>,
    pub uuid: Option<String>,
    /// Bytes the filesystem says it spans (null when it does not say, as LUKS).
    pub size: Option<u64>,
}

fn le16(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, |s| u64::from(u16::from_le_bytes(s)))
}
fn le32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, |s| u64::from(u32::from_le_bytes(s)))
}
fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}
fn be32(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, |s| u64::from(u32::from_be_bytes(s)))
}
fn be64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// A label field: up to the first NUL, trailing spaces dropped; none when empty.
fn label(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = super::clean(String::from_utf8_lossy(&b[..end]).trim_end());
    (!s.is_empty()).then_some(s)
}

fn uuid_lower(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    // 8-4-4-4-12, byte order as written (ext, btrfs, xfs, swap store it that way).
    let parts = [0..8, 8..12, 12..16, 16..20, 20..32];
    parts
        .iter()
        .filter_map(|r| h.get(r.clone()))
        .collect::<Vec<_>>()
        .join("-")
}

/// A superblock reader: the first bytes of a partition in, what it holds out.
type Probe = fn(&[u8]) -> Option<Filesystem>;

/// What sits at `start` (a partition, or the whole disk at 0) of `len` bytes.
pub fn probe(img: &Image, start: u64, len: u64) -> Result<Option<Filesystem>, DiskError> {
    // The first 68 KiB hold every superblock looked for here (btrfs's at 64 KiB).
    let mut head = vec![0u8; (68 * 1024usize).min(usize::try_from(len).unwrap_or(usize::MAX))];
    img.read_at(start, &mut head)?;
    let probes: [Probe; 9] = [luks, xfs, btrfs, ext, ntfs, exfat, fat, swap, iso9660];
    Ok(probes.iter().find_map(|p| p(&head)))
}

fn ext(b: &[u8]) -> Option<Filesystem> {
    let sb = b.get(1024..2048)?;
    if le16(sb, 56) != 0xEF53 {
        return None;
    }
    let log = le32(sb, 24);
    if log > 6 {
        return None;
    }
    let block = 1024u64 << log;
    let (compat, incompat, ro) = (le32(sb, 92), le32(sb, 96), le32(sb, 100));
    let mut blocks = le32(sb, 4);
    if incompat & 0x80 != 0 {
        blocks |= le32(sb, 0x150) << 32;
    }
    // blkid's rule: features ext3 lacks make ext4; a journal makes ext3.
    let kind = if incompat & 0x8 != 0 {
        "jbd"
    } else if incompat & !0x16 != 0 || ro & !0x7 != 0 {
        "ext4"
    } else if compat & 0x4 != 0 {
        "ext3"
    } else {
        "ext2"
    };
    Some(Filesystem {
        kind: kind.into(),
        version: Some(format!("{}.{}", le32(sb, 76), le16(sb, 62))),
        label: label(&sb[120..136]),
        uuid: Some(uuid_lower(&sb[104..120])),
        size: Some(blocks.saturating_mul(block)),
    })
}

fn fat(b: &[u8]) -> Option<Filesystem> {
    let bs = b.get(..512)?;
    if bs[510] != 0x55 || bs[511] != 0xAA {
        return None;
    }
    let bps = le16(bs, 11);
    let spc = u64::from(bs[13]);
    let reserved = le16(bs, 14);
    let fats = u64::from(bs[16]);
    let media = bs[21];
    if !matches!(bps, 512 | 1024 | 2048 | 4096)
        || !spc.is_power_of_two()
        || reserved == 0
        || fats == 0
        || !(media == 0xF0 || media >= 0xF8)
    {
        return None;
    }
    let root_entries = le16(bs, 17);
    let total = match le16(bs, 19) {
        0 => le32(bs, 32),
        n => n,
    };
    let fat_size = match le16(bs, 22) {
        0 => le32(bs, 36),
        n => n,
    };
    let root_sectors = (root_entries * 32).div_ceil(bps);
    let data = total.checked_sub(reserved + fats * fat_size + root_sectors)?;
    let clusters = data / spc;
    let (version, ext_at) = if le16(bs, 22) == 0 {
        ("FAT32", 64)
    } else if clusters < 4085 {
        ("FAT12", 36)
    } else {
        ("FAT16", 36)
    };
    let (lbl, uuid) = if bs[ext_at + 2] == 0x29 {
        let id = le32(bs, ext_at + 3);
        (
            label(&bs[ext_at + 7..ext_at + 18]).filter(|l| l != "NO NAME"),
            Some(format!("{:04X}-{:04X}", id >> 16, id & 0xFFFF)),
        )
    } else {
        (None, None)
    };
    Some(Filesystem {
        kind: "vfat".into(),
        version: Some(version.into()),
        label: lbl,
        uuid,
        size: Some(total * bps),
    })
}

fn ntfs(b: &[u8]) -> Option<Filesystem> {
    if b.get(3..11)? != b"NTFS    " {
        return None;
    }
    let bps = le16(b, 11);
    Some(Filesystem {
        kind: "ntfs".into(),
        version: None,
        // The label lives in the $Volume file of the MFT, not in the boot sector.
        label: None,
        uuid: Some(format!("{:016X}", le64(b, 72))),
        size: Some(le64(b, 40).saturating_mul(bps)),
    })
}

fn exfat(b: &[u8]) -> Option<Filesystem> {
    if b.get(3..11)? != b"EXFAT   " {
        return None;
    }
    let shift = u32::from(*b.get(108)?);
    let id = le32(b, 100);
    Some(Filesystem {
        kind: "exfat".into(),
        version: None,
        label: None,
        uuid: Some(format!("{:04X}-{:04X}", id >> 16, id & 0xFFFF)),
        size: le64(b, 72).checked_shl(shift.min(12)),
    })
}

fn btrfs(b: &[u8]) -> Option<Filesystem> {
    let sb = b.get(0x10000..0x10000 + 0x22b)?;
    if &sb[0x40..0x48] != b"_BHRfS_M" {
        return None;
    }
    Some(Filesystem {
        kind: "btrfs".into(),
        version: None,
        label: label(&sb[0x12b..0x22b]),
        uuid: Some(uuid_lower(&sb[0x20..0x30])),
        size: Some(le64(sb, 0x70)),
    })
}

fn xfs(b: &[u8]) -> Option<Filesystem> {
    if b.get(..4)? != b"XFSB" {
        return None;
    }
    Some(Filesystem {
        kind: "xfs".into(),
        version: None,
        label: label(b.get(108..120)?),
        uuid: Some(uuid_lower(b.get(32..48)?)),
        size: Some(be64(b, 8).saturating_mul(be32(b, 4))),
    })
}

fn swap(b: &[u8]) -> Option<Filesystem> {
    for page in [4096usize, 8192, 16384, 65536] {
        let Some(magic) = b.get(page - 10..page) else {
            continue;
        };
        if magic == b"SWAPSPACE2" || magic == b"SWAP-SPACE" {
            let v2 = magic == b"SWAPSPACE2";
            return Some(Filesystem {
                kind: "swap".into(),
                version: Some(if v2 { "1" } else { "0" }.into()),
                label: if v2 { label(&b[1052..1068]) } else { None },
                uuid: v2.then(|| uuid_lower(&b[1036..1052])),
                size: v2.then(|| (le32(b, 1028) + 1) * page as u64),
            });
        }
    }
    None
}

fn luks(b: &[u8]) -> Option<Filesystem> {
    if b.get(..6)? != b"LUKS\xba\xbe" {
        return None;
    }
    let version = u16::from_be_bytes([*b.get(6)?, *b.get(7)?]);
    Some(Filesystem {
        kind: "crypto_LUKS".into(),
        version: Some(version.to_string()),
        label: b.get(24..72).filter(|_| version == 2).and_then(label),
        uuid: b.get(168..208).and_then(label),
        size: None,
    })
}

fn iso9660(b: &[u8]) -> Option<Filesystem> {
    let pvd = b.get(0x8000..0x8800)?;
    if &pvd[1..6] != b"CD001" {
        return None;
    }
    Some(Filesystem {
        kind: "iso9660".into(),
        version: None,
        label: label(&pvd[40..72]),
        uuid: None,
        size: Some(le32(pvd, 80) * le16(pvd, 128)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Superblocks cut at many lengths: a short partition never panics a probe.
    #[test]
    fn cut_superblocks_never_panic() {
        let mut b = vec![0u8; 70 * 1024];
        b[..8].copy_from_slice(b"LUKS\xba\xbe\x00\x02");
        b[1080..1082].copy_from_slice(&[0x53, 0xEF]);
        b[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
        b[4086..4096].copy_from_slice(b"SWAPSPACE2");
        b[0x8001..0x8006].copy_from_slice(b"CD001");
        b[510] = 0x55;
        b[511] = 0xAA;
        let mut other = b.clone();
        other[..4].copy_from_slice(b"XFSB");
        other[3..11].copy_from_slice(b"NTFS    ");
        let mut exfat_ = b.clone();
        exfat_[3..11].copy_from_slice(b"EXFAT   ");
        for img in [&b, &other, &exfat_] {
            for n in (0..img.len()).filter(|n| *n < 4200 || n % 61 == 0) {
                let cut = &img[..n];
                for p in [luks, xfs, btrfs, ext, ntfs, exfat, fat, swap, iso9660] {
                    let _ = p(cut);
                }
            }
        }
    }

    #[test]
    fn nothing_in_zeros_or_short_buffers() {
        let zeros = vec![0u8; 70 * 1024];
        for n in [0, 1, 511, 512, 1100, 4096, 0x10010, zeros.len()] {
            let b = &zeros[..n];
            for p in [luks, xfs, btrfs, ext, ntfs, exfat, fat, swap, iso9660] {
                assert_eq!(p(b), None, "{n} zero bytes");
            }
        }
    }
}
