//! Definitions that would hurt the host, refused before they are saved: a disk the host
//! itself uses (its root, any mounted or swapped-on block device, or a disk holding one), a
//! serial or console file that exists (Cloud Hypervisor truncates it at start), a disk
//! another VM writes, memory above the host's, CPUs or a NUMA node the host lacks. [`check`] gives these as errors, beside
//! [`super::host_check`]'s warnings; `force` turns the two that are the owner's call (an
//! existing file to overwrite, memory above the host's) into warnings.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::bytesize::{ByteSize, MIB};
use super::problem::Problem;
use super::spec::{ConsoleMode, SerialMode, VmSpec};
use crate::host::{mountinfo, SysRoot};

/// How deep partitions and device-mapper holders are followed (a disk, a partition, a
/// crypt or LVM volume on it, another on that...).
const MAX_DEPTH: usize = 8;

/// What a definition is checked against.
pub struct Context<'a> {
    pub root: &'a SysRoot,
    /// Every definition saved now (the one of the same name is skipped).
    pub others: &'a [VmSpec],
    /// The definition being replaced, if any: its own serial file exists after a run and is
    /// no stranger's.
    pub previous: Option<&'a VmSpec>,
    /// The owner said overwrite an existing serial file and allow memory above the host's.
    pub force: bool,
}

/// [`super::host_check`]'s warnings, then the refusals (errors).
pub fn check(spec: &VmSpec, cx: &Context) -> Vec<Problem> {
    let mut p = super::host_check(spec, cx.root, cx.others);
    host_disks(spec, cx.root, &mut p);
    shared_disks(spec, cx, &mut p);
    output_files(spec, cx, &mut p);
    memory(spec, cx, &mut p);
    super::numa::host_check(spec, cx.root, &mut p);
    p
}

/// A block device: `major:minor`.
type DevNo = (u32, u32);

fn dev_no(text: &str) -> Option<DevNo> {
    let (a, b) = text.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The device number of the block device `path` names (through every link, inside the
/// root), or None when it is no block device.
fn block_device(root: &SysRoot, path: &Path) -> Option<DevNo> {
    let resolved = root.resolve(path).ok()?;
    let meta = std::fs::metadata(resolved).ok()?;
    meta.file_type().is_block_device().then(|| {
        (
            rustix::fs::major(meta.rdev()),
            rustix::fs::minor(meta.rdev()),
        )
    })
}

/// What the host uses its block devices for: device number → "mounted on /" and the like.
fn host_uses(root: &SysRoot) -> HashMap<DevNo, String> {
    let mut uses: HashMap<DevNo, String> = HashMap::new();
    let text = root.read(mountinfo::PATH).unwrap_or_default();
    for m in mountinfo::parse(&text) {
        let what = if m.point == "/" {
            "mounted on / (the host's root)".to_string()
        } else {
            format!("mounted on {}", crate::fmt::printable(&m.point))
        };
        // Filesystems such as btrfs report an anonymous device (major 0): the source tells.
        let by_number = (m.major != 0).then_some((m.major, m.minor));
        let by_source = m
            .source
            .starts_with('/')
            .then(|| block_device(root, Path::new(&m.source)))
            .flatten();
        for d in by_number.into_iter().chain(by_source) {
            // The root's own words win over a later bind mount of the same device.
            uses.entry(d).or_insert_with(|| what.clone());
        }
    }
    let swaps = root.read("proc/swaps").unwrap_or_default();
    for line in swaps.lines().skip(1) {
        if let Some(d) = line
            .split_whitespace()
            .next()
            .and_then(|f| block_device(root, Path::new(f)))
        {
            uses.entry(d).or_insert_with(|| "used as swap".into());
        }
    }
    uses
}

/// Block devices by number, from `sys/class/block/*/dev`.
fn block_names(root: &SysRoot) -> HashMap<DevNo, String> {
    let mut names = HashMap::new();
    for name in root.list("sys/class/block").unwrap_or_default() {
        if let Some(d) = root
            .read(format!("sys/class/block/{name}/dev"))
            .ok()
            .and_then(|t| dev_no(&t))
        {
            names.insert(d, name);
        }
    }
    names
}

/// Why the host needs block device `dev`: what it is used for, and the partition or holder
/// (device mapper, md) on it that is, when it is not `dev` itself.
fn host_need(
    root: &SysRoot,
    dev: DevNo,
    uses: &HashMap<DevNo, String>,
    names: &HashMap<DevNo, String>,
    seen: &mut HashSet<DevNo>,
    depth: usize,
) -> Option<(Option<String>, String)> {
    if depth > MAX_DEPTH || !seen.insert(dev) {
        return None;
    }
    if let Some(u) = uses.get(&dev) {
        return Some((None, u.clone()));
    }
    let name = names.get(&dev)?;
    let by_name: HashMap<&String, DevNo> = names.iter().map(|(d, n)| (n, *d)).collect();
    // Partitions are subdirectories of their disk in sysfs; holders are listed by name.
    let mut children: Vec<String> = root
        .list(format!("sys/class/block/{name}"))
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            by_name.contains_key(c) && root.exists(format!("sys/class/block/{name}/{c}/partition"))
        })
        .collect();
    children.extend(
        root.list(format!("sys/class/block/{name}/holders"))
            .unwrap_or_default(),
    );
    for child in children {
        let Some(&cd) = by_name.get(&child) else {
            continue;
        };
        if let Some((via, why)) = host_need(root, cd, uses, names, seen, depth + 1) {
            return Some((Some(via.unwrap_or(child)), why));
        }
    }
    None
}

fn host_disks(spec: &VmSpec, root: &SysRoot, p: &mut Vec<Problem>) {
    let devices: Vec<(usize, DevNo)> = spec
        .disks
        .iter()
        .enumerate()
        .filter_map(|(i, d)| Some((i, block_device(root, &d.path)?)))
        .collect();
    if devices.is_empty() {
        return;
    }
    let (uses, names) = (host_uses(root), block_names(root));
    for (i, dev) in devices {
        let Some((via, why)) = host_need(root, dev, &uses, &names, &mut HashSet::new(), 0) else {
            continue;
        };
        let path = spec.disks[i].path.display().to_string();
        let name = names
            .get(&dev)
            .map_or(format!("{}:{}", dev.0, dev.1), Clone::clone);
        let what = match via {
            Some(inner) => format!("holds {inner}, {why}"),
            None => format!("is {why}"),
        };
        p.push(Problem::error(
            format!("disks[{i}].path"),
            format!(
                "{} ({name}) {what}; the host needs it, and a guest writing it corrupts the host: give the VM an image file or a disk the host does not use",
                crate::fmt::printable(&path)
            ),
        ));
    }
}

/// Where a path leads on this host, links followed inside the root.
fn canonical(root: &SysRoot, path: &Path) -> PathBuf {
    root.resolve(path).unwrap_or_else(|_| root.lexical(path))
}

fn shared_disks(spec: &VmSpec, cx: &Context, p: &mut Vec<Problem>) {
    for (i, d) in spec.disks.iter().enumerate() {
        let mine = canonical(cx.root, &d.path);
        let dev = block_device(cx.root, &d.path);
        for o in cx.others.iter().filter(|o| o.name != spec.name) {
            let same = |od: &&super::spec::Disk| {
                canonical(cx.root, &od.path) == mine
                    || (dev.is_some() && block_device(cx.root, &od.path) == dev)
            };
            let Some(od) = o.disks.iter().find(same) else {
                continue;
            };
            if d.readonly && od.readonly {
                continue;
            }
            let theirs = if od.path == d.path {
                String::new()
            } else {
                format!(
                    " (as {})",
                    crate::fmt::printable(&od.path.to_string_lossy())
                )
            };
            p.push(Problem::error(
                format!("disks[{i}].path"),
                format!(
                    "{} is also a disk of VM {}{theirs}; two writers corrupt it: make both readonly or give this VM another image",
                    crate::fmt::printable(&d.path.to_string_lossy()),
                    o.name
                ),
            ));
        }
    }
}

fn output_files(spec: &VmSpec, cx: &Context, p: &mut Vec<Problem>) {
    let mut files: Vec<(&str, &Path)> = Vec::new();
    if let SerialMode::File(path) = &spec.serial {
        files.push(("serial", path));
    }
    if let ConsoleMode::File(Some(path)) = &spec.console {
        files.push(("console", path));
    }
    for (field, path) in files {
        let own = cx.previous.is_some_and(|prev| match field {
            "serial" => prev.serial == spec.serial,
            _ => prev.console == spec.console,
        });
        if own {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(cx.root.lexical(path)) else {
            continue;
        };
        let shown = crate::fmt::printable(&path.to_string_lossy()).into_owned();
        if !meta.is_file() {
            p.push(Problem::error(
                field,
                format!("{shown} exists and is not a regular file; Cloud Hypervisor would write the guest's output into it: name a new file"),
            ));
        } else if cx.force {
            p.push(Problem::warning(
                field,
                format!("{shown} exists and will be overwritten when the VM starts (forced)"),
            ));
        } else {
            p.push(Problem::error(
                field,
                format!("{shown} exists and Cloud Hypervisor empties it when the VM starts; name a new file, or save with --force to overwrite it"),
            ));
        }
    }
}

fn memory(spec: &VmSpec, cx: &Context, p: &mut Vec<Problem>) {
    let Ok(meminfo) = cx.root.read("proc/meminfo") else {
        return;
    };
    let total = meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemTotal:")?;
        rest.split_whitespace().next()?.parse::<u64>().ok()
    });
    let Some(total) = total.map(|k| k.saturating_mul(1024)) else {
        return;
    };
    if spec.memory.size.0 <= total {
        return;
    }
    let host = ByteSize(total / MIB * MIB);
    if cx.force {
        p.push(Problem::warning(
            "memory.size",
            format!(
                "{} is more than this host's {host} of memory (forced)",
                spec.memory.size
            ),
        ));
    } else {
        p.push(Problem::error(
            "memory.size",
            format!(
                "{} is more than this host's {host} of memory; the host would swap or kill processes: give at most {host}, or save with --force",
                spec.memory.size
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers() {
        assert_eq!(dev_no("259:2\n"), Some((259, 2)));
        assert_eq!(dev_no("x"), None);
    }
}
