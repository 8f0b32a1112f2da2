//! Partition tables: GPT (primary header, else the backup at the end) and MBR with its
//! extended partitions' chain of EBRs.

use serde::Serialize;

use super::fs::Filesystem;
use super::image::Image;
use super::DiskError;

const SECTOR: u64 = 512;
/// More GPT entries than this is a damaged header, not a disk (the norm is 128).
const MAX_GPT_ENTRIES: u32 = 1024;
/// Logical partitions followed at most in an extended partition's chain.
const MAX_LOGICAL: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    Gpt,
    Mbr,
    None,
}

impl TableKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Gpt => "gpt",
            TableKind::Mbr => "mbr",
            TableKind::None => "none",
        }
    }
}

/// One partition; `start` and `size` in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// As Linux numbers them: GPT entry index + 1; MBR 1 to 4, logical ones from 5.
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// The type's name (`Linux filesystem`, `EFI System`...), or the code when unknown.
    #[serde(rename = "type")]
    pub kind: String,
    /// GPT type GUID or MBR type byte (`0x83`).
    pub type_id: String,
    /// GPT partition name (null on MBR).
    pub name: Option<String>,
    /// GPT unique partition GUID.
    pub uuid: Option<String>,
    /// MBR boot flag (GPT: legacy BIOS bootable attribute).
    pub bootable: bool,
    /// An MBR extended partition, which holds the logical ones.
    pub container: bool,
    pub filesystem: Option<Filesystem>,
}

#[derive(Debug)]
pub struct Table {
    pub kind: TableKind,
    pub id: Option<String>,
    pub partitions: Vec<Partition>,
    pub warnings: Vec<String>,
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}
fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}
fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// A GUID as written on disk (the first three fields little-endian), upper case as
/// `sgdisk` and `blkid` print them.
pub fn guid(b: &[u8]) -> String {
    let mut g = [0u8; 16];
    if let Some(s) = b.get(..16) {
        g.copy_from_slice(s);
    }
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        le32(&g, 0),
        le16(&g, 4),
        le16(&g, 6),
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn read(img: &Image) -> Result<Table, DiskError> {
    let mut warnings = Vec::new();
    let mut mbr = [0u8; 512];
    img.read_at(0, &mut mbr)?;
    let signed = mbr[510] == 0x55 && mbr[511] == 0xAA;
    let protective = signed && (0..4).any(|i| mbr[446 + i * 16 + 4] == 0xEE);
    match gpt(img, &mut warnings)? {
        Some(mut t) => {
            t.warnings.splice(0..0, warnings);
            return Ok(t);
        }
        None if protective => {
            warnings.push("protective MBR but no valid GPT header (primary or backup)".into());
        }
        None => {}
    }
    if signed && !protective && super::fs::probe(img, 0, img.size())?.is_none() {
        if let Some(t) = msdos(img, &mbr)? {
            warnings.extend(t.warnings);
            return Ok(Table { warnings, ..t });
        }
    }
    Ok(Table {
        kind: TableKind::None,
        id: None,
        partitions: Vec::new(),
        warnings,
    })
}

fn gpt(img: &Image, warnings: &mut Vec<String>) -> Result<Option<Table>, DiskError> {
    let last_lba = (img.size() / SECTOR).saturating_sub(1);
    let mut header = [0u8; 512];
    for (lba, which) in [(1, "primary"), (last_lba, "backup")] {
        if lba < 1 {
            continue;
        }
        img.read_at(lba * SECTOR, &mut header)?;
        if &header[..8] != b"EFI PART" {
            continue;
        }
        match gpt_at(img, &header) {
            Ok(t) => {
                if which == "backup" {
                    warnings.push("primary GPT header damaged; read the backup".into());
                }
                return Ok(Some(t));
            }
            Err(why) => warnings.push(format!("{which} GPT header: {why}")),
        }
    }
    Ok(None)
}

fn gpt_at(img: &Image, h: &[u8; 512]) -> Result<Table, String> {
    let size = le32(h, 12) as usize;
    if !(92..=512).contains(&size) {
        return Err(format!("header size {size}"));
    }
    let mut copy = h[..size].to_vec();
    copy[16..20].fill(0);
    if crc32(&copy) != le32(h, 16) {
        return Err("checksum mismatch".into());
    }
    let entries_lba = le64(h, 72);
    let count = le32(h, 80);
    let entry_size = le32(h, 84);
    if count > MAX_GPT_ENTRIES {
        return Err(format!(
            "{count} partition entries (at most {MAX_GPT_ENTRIES})"
        ));
    }
    if !(128..=4096).contains(&entry_size) || !entry_size.is_multiple_of(128) {
        return Err(format!("entry size {entry_size}"));
    }
    let len = count as usize * entry_size as usize;
    let mut entries = vec![0u8; len];
    let start = entries_lba
        .checked_mul(SECTOR)
        .filter(|s| s.saturating_add(len as u64) <= img.size())
        .ok_or_else(|| format!("entries at LBA {entries_lba}, past the end of the disk"))?;
    img.read_at(start, &mut entries)
        .map_err(|e| crate::error::Chain(&e).to_string())?;
    if crc32(&entries) != le32(h, 88) {
        return Err("entries checksum mismatch".into());
    }
    let mut t = Table {
        kind: TableKind::Gpt,
        id: Some(guid(&h[56..72])),
        partitions: Vec::new(),
        warnings: Vec::new(),
    };
    for (i, e) in entries.chunks_exact(entry_size as usize).enumerate() {
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (le64(e, 32), le64(e, 40));
        if last < first {
            t.warnings
                .push(format!("partition {}: ends before it starts", i + 1));
            continue;
        }
        let type_id = guid(&e[..16]);
        let name: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        let name = super::clean(&String::from_utf16_lossy(&name));
        let p = Partition {
            number: i as u32 + 1,
            start: first.saturating_mul(SECTOR),
            size: (last - first + 1).saturating_mul(SECTOR),
            kind: gpt_type(&type_id).unwrap_or(&type_id).to_string(),
            type_id,
            name: (!name.is_empty()).then_some(name),
            uuid: Some(guid(&e[16..32])),
            bootable: le64(e, 48) & 0b100 != 0,
            container: false,
            filesystem: None,
        };
        past_end(img, &p, &mut t.warnings);
        t.partitions.push(p);
    }
    Ok(t)
}

fn past_end(img: &Image, p: &Partition, warnings: &mut Vec<String>) {
    if p.start.saturating_add(p.size) > img.size() {
        warnings.push(format!(
            "partition {} runs past the end of the disk",
            p.number
        ));
    }
}

fn msdos(img: &Image, mbr: &[u8; 512]) -> Result<Option<Table>, DiskError> {
    let entries: Vec<&[u8]> = mbr[446..510].chunks_exact(16).collect();
    // Boot code that merely ends in 55 AA is not a table: every status byte is 0 or 0x80.
    if entries.iter().any(|e| e[0] != 0 && e[0] != 0x80) {
        return Ok(None);
    }
    let mut t = Table {
        kind: TableKind::Mbr,
        id: Some(format!("{:08x}", le32(mbr, 440))),
        partitions: Vec::new(),
        warnings: Vec::new(),
    };
    for (i, e) in entries.iter().enumerate() {
        let kind = e[4];
        let (start, sectors) = (u64::from(le32(e, 8)), u64::from(le32(e, 12)));
        if kind == 0 || sectors == 0 {
            continue;
        }
        let container = matches!(kind, 0x05 | 0x0F | 0x85);
        let p = mbr_partition(i as u32 + 1, kind, start, sectors, e[0] == 0x80, container);
        past_end(img, &p, &mut t.warnings);
        t.partitions.push(p);
        if container {
            logical(img, start, &mut t)?;
        }
    }
    Ok(Some(t))
}

fn mbr_partition(
    number: u32,
    kind: u8,
    start: u64,
    sectors: u64,
    bootable: bool,
    container: bool,
) -> Partition {
    Partition {
        number,
        start: start * SECTOR,
        size: sectors * SECTOR,
        kind: mbr_type(kind).map_or_else(|| format!("{kind:#04x}"), str::to_string),
        type_id: format!("{kind:#04x}"),
        name: None,
        uuid: None,
        bootable,
        container,
        filesystem: None,
    }
}

/// The chain of EBRs: each holds one logical partition (relative to itself) and a link to
/// the next (relative to the extended partition's start).
fn logical(img: &Image, ext_start: u64, t: &mut Table) -> Result<(), DiskError> {
    let mut next = ext_start;
    let mut seen = std::collections::BTreeSet::new();
    let mut number = 5;
    for _ in 0..MAX_LOGICAL {
        if !seen.insert(next) {
            t.warnings
                .push("the extended partition's chain loops".into());
            return Ok(());
        }
        let mut ebr = [0u8; 512];
        img.read_at(next * SECTOR, &mut ebr)?;
        if ebr[510] != 0x55 || ebr[511] != 0xAA {
            t.warnings
                .push(format!("no EBR signature at sector {next}"));
            return Ok(());
        }
        let (e1, e2) = (&ebr[446..462], &ebr[462..478]);
        let (start, sectors) = (u64::from(le32(e1, 8)), u64::from(le32(e1, 12)));
        if e1[4] != 0 && sectors != 0 {
            let p = mbr_partition(number, e1[4], next + start, sectors, e1[0] == 0x80, false);
            past_end(img, &p, &mut t.warnings);
            t.partitions.push(p);
            number += 1;
        }
        let link = u64::from(le32(e2, 8));
        if e2[4] == 0 || link == 0 {
            return Ok(());
        }
        next = ext_start + link;
    }
    t.warnings.push(format!(
        "more than {MAX_LOGICAL} logical partitions; the rest are not shown"
    ));
    Ok(())
}

fn gpt_type(guid: &str) -> Option<&'static str> {
    Some(match guid {
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI System",
        "21686148-6449-6E6F-744E-656564454649" => "BIOS boot",
        "0FC63DAF-8483-4772-8E79-3D69D8477DE4" => "Linux filesystem",
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" => "Linux root (x86-64)",
        "933AC7E1-2EB4-4F13-B844-0E14E2AEF915" => "Linux home",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "Linux LVM",
        "A19D880F-05FC-4D3B-A006-743F0F84911E" => "Linux RAID",
        "CA7D7CCB-63ED-4C53-861C-1742536059CC" => "Linux LUKS",
        "BC13C2FF-59E6-4262-A352-B275FD6F7172" => "Linux extended boot",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "Microsoft basic data",
        "E3C9E316-0B5C-4DB8-817D-F92DF00215AE" => "Microsoft reserved",
        "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC" => "Windows recovery",
        _ => return None,
    })
}

fn mbr_type(t: u8) -> Option<&'static str> {
    Some(match t {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0E => "FAT16",
        0x05 | 0x0F | 0x85 => "Extended",
        0x07 => "HPFS/NTFS/exFAT",
        0x0B | 0x0C => "W95 FAT32",
        0x27 => "Windows recovery",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x8E => "Linux LVM",
        0xA5 => "FreeBSD",
        0xEE => "GPT protective",
        0xEF => "EFI System",
        0xFD => "Linux RAID",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_the_check_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn guids_read_mixed_endian() {
        let raw = [
            0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
            0xC9, 0x3B,
        ];
        assert_eq!(guid(&raw), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
    }
}
