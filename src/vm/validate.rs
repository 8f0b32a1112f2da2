//! Second step after parsing: rules across fields ([`validate`]) and checks against the host
//! and the other definitions ([`host_check`]).

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use super::bytesize::{ByteSize, MIB};
use super::grace::StopTimeout;
use super::problem::{Problem, Problems};
use super::spec::*;
use crate::host::SysRoot;

/// Cloud Hypervisor's limit on vCPUs (x86_64).
pub const MAX_VCPUS: u32 = 8192;
/// Below this no firmware or distribution kernel boots.
pub const MIN_MEMORY: u64 = 64 * MIB;

/// A name for a VM: `[a-z0-9][a-z0-9_.-]{0,62}`. It is a file name, a unit name
/// (`phyllome-vm-NAME.service`) and a directory under /run, so it is kept plain.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_first = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok_rest = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok_first && ok_rest && name.len() <= 63 {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a VM name; use up to 63 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit",
            name.chars().take(70).collect::<String>()
        ))
    }
}

/// Every rule the definition breaks on its own (no host access).
pub fn validate(spec: &VmSpec) -> Vec<Problem> {
    let mut p = Vec::new();
    let mut err = |field: &str, msg: String| p.push(Problem::error(field, msg));
    if let Err(e) = check_name(&spec.name) {
        err("name", e);
    }
    let grace = spec.stop_timeout;
    if grace.secs() == 0 {
        err(
            "stop_timeout",
            "0s gives the guest no time; write at least 1s (vm stop --force stops at once)".into(),
        );
    } else if grace > StopTimeout::MAX {
        err(
            "stop_timeout",
            format!("{grace} is too long; at most {}", StopTimeout::MAX),
        );
    }
    let c = &spec.cpus;
    if c.boot == 0 {
        err("cpus.boot", "0 vCPUs; at least 1".into());
    }
    if c.max_vcpus() > MAX_VCPUS {
        err(
            "cpus.max",
            format!("{} vCPUs; at most {MAX_VCPUS}", c.max_vcpus()),
        );
    }
    if let Some(max) = c.max {
        if max < c.boot {
            err(
                "cpus.max",
                format!(
                    "{max} is below cpus.boot ({}); raise it or remove it",
                    c.boot
                ),
            );
        }
    }
    if let Some(t) = c.topology {
        if [
            t.threads_per_core,
            t.cores_per_die,
            t.dies_per_package,
            t.packages,
        ]
        .contains(&0)
        {
            err("cpus.topology", "every count must be at least 1".into());
        } else if t.vcpus() != c.max_vcpus() {
            err(
                "cpus.topology",
                format!("{} threads x {} cores x {} dies x {} packages = {} vCPUs, but cpus.max is {}; make them equal",
                    t.threads_per_core, t.cores_per_die, t.dies_per_package, t.packages, t.vcpus(), c.max_vcpus()),
            );
        }
    }
    let m = &spec.memory;
    if m.size.0 < MIN_MEMORY {
        err(
            "memory.size",
            format!("{} is too small; at least 64M", m.size),
        );
    } else if !m.size.0.is_multiple_of(4 * 1024) {
        err(
            "memory.size",
            format!("{} is not a multiple of 4K pages; write e.g. 2G", m.size),
        );
    }
    if let Some(h) = m.hugepage_size {
        if !m.hugepages {
            err(
                "memory.hugepage_size",
                "set, but hugepages is off; add hugepages = true or remove it".into(),
            );
        }
        if h != ByteSize(2 * MIB) && h != ByteSize(1 << 30) {
            err(
                "memory.hugepage_size",
                format!("{h} is not a hugepage size; write 2M or 1G"),
            );
        } else if !m.size.0.is_multiple_of(h.0) {
            err(
                "memory.size",
                format!("{} is not a multiple of the hugepage size {h}", m.size),
            );
        }
    }
    if let Some(b) = &m.balloon {
        if b.size >= m.size {
            err(
                "memory.balloon.size",
                format!(
                    "{} leaves the guest no memory; keep it below memory.size ({})",
                    b.size, m.size
                ),
            );
        }
    }
    let b = &spec.boot;
    match (&b.firmware, &b.kernel) {
        (Some(_), Some(_)) => err("boot", "give either firmware or kernel, not both".into()),
        (None, None) => err(
            "boot",
            "nothing to boot; give firmware = \"/path/CLOUDHV.fd\" or kernel = \"/path/vmlinuz\""
                .into(),
        ),
        (Some(_), None) => {
            if b.initramfs.is_some() || b.cmdline.is_some() {
                err(
                    "boot",
                    "initramfs and cmdline go with kernel, not firmware; remove them".into(),
                );
            }
        }
        (None, Some(_)) => {}
    }
    if b.cmdline.as_ref().is_some_and(|c| c.len() > 2048) {
        err("boot.cmdline", "longer than 2048 bytes".into());
    }
    super::numa::validate(spec, &mut p);
    let mut ids = HashSet::new();
    let mut check_id = |field: String, id: &Option<String>, p: &mut Vec<Problem>| {
        let Some(id) = id else { return };
        if id.is_empty()
            || id.starts_with('_')
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        {
            p.push(Problem::error(field, format!("{id:?} is not a device id; use letters, digits, '_', '.', '-', not starting with '_'")));
        } else if !ids.insert(id.clone()) {
            p.push(Problem::error(
                field,
                format!("{id:?} is used by another device; ids must be unique"),
            ));
        }
    };
    let mut paths = HashSet::new();
    for (i, d) in spec.disks.iter().enumerate() {
        check_id(format!("disks[{i}].id"), &d.id, &mut p);
        if !paths.insert(&d.path) {
            p.push(Problem::error(
                format!("disks[{i}].path"),
                format!("{} is listed twice", d.path.display()),
            ));
        }
    }
    option_safe_paths(spec, &mut p);
    let mut macs = HashSet::new();
    for (i, n) in spec.net.iter().enumerate() {
        check_id(format!("net[{i}].id"), &n.id, &mut p);
        let ifname = n.kind.interface();
        if ifname.is_empty()
            || ifname.len() > 15
            || ifname.contains(['/', ' ', ',', '=', '"', '[', ']', ':'])
            || ifname.chars().any(char::is_control)
        {
            p.push(Problem::error(
                format!("net[{i}]"),
                format!(
                    "{ifname:?} is not an interface name; up to 15 characters, none of / , = \" [ ] : or spaces"
                ),
            ));
        }
        if let Some(mac) = n.mac {
            if mac.is_multicast() || mac.0 == [0; 6] {
                p.push(Problem::error(format!("net[{i}].mac"), format!("{mac} is not a unicast address; the first byte must be even, e.g. 52:54:00:..")));
            } else if !macs.insert(mac) {
                p.push(Problem::error(
                    format!("net[{i}].mac"),
                    format!("{mac} is used twice"),
                ));
            }
        }
    }
    let mut addrs = HashSet::new();
    for (i, v) in spec.vfio.iter().enumerate() {
        check_id(format!("vfio[{i}].id"), &v.id, &mut p);
        if !addrs.insert(v.address) {
            p.push(Problem::error(
                format!("vfio[{i}].address"),
                format!("{} is listed twice", v.address),
            ));
        }
    }
    if let Some(u) = &spec.platform.uuid {
        if !is_uuid(u) {
            p.push(Problem::error(
                "platform.uuid",
                format!("{u:?} is not a UUID; write e.g. 9f3f1c2e-5b7a-4c1e-9d0f-3a2b1c4d5e6f"),
            ));
        }
    }
    if let Some(s) = &spec.platform.serial_number {
        if s.is_empty() || s.len() > 64 || s.contains(',') || !s.is_ascii() {
            p.push(Problem::error(
                "platform.serial_number",
                "use 1 to 64 ASCII characters without ','".to_string(),
            ));
        }
    }
    p
}

/// Parse, then validate: the definition if it is usable, else every problem found. Rules
/// about a field that could not be read are left out (its value was not the user's).
/// Paths reach Cloud Hypervisor's option parser (`vm export --format cli`): a double quote or
/// a control character cannot be carried there, nor shown safely.
fn option_safe_paths(spec: &VmSpec, p: &mut Vec<Problem>) {
    let mut fields: Vec<(String, &Path)> = Vec::new();
    for (field, path) in [
        ("boot.firmware", &spec.boot.firmware),
        ("boot.kernel", &spec.boot.kernel),
        ("boot.initramfs", &spec.boot.initramfs),
    ] {
        if let Some(path) = path {
            fields.push((field.to_string(), path));
        }
    }
    for (i, d) in spec.disks.iter().enumerate() {
        fields.push((format!("disks[{i}].path"), &d.path));
    }
    if let SerialMode::File(path) = &spec.serial {
        fields.push(("serial".to_string(), path));
    }
    if let ConsoleMode::File(Some(path)) = &spec.console {
        fields.push(("console".to_string(), path));
    }
    for (field, path) in fields {
        if !super::chconfig::is_option_safe(&path.to_string_lossy()) {
            p.push(Problem::error(
                field,
                format!(
                    "{} holds a double quote or a control character; rename the file",
                    path.to_string_lossy().escape_debug()
                ),
            ));
        }
    }
}

pub fn load(text: &str, name: &str) -> Result<VmSpec, Problems> {
    let (spec, mut problems) = super::parse::parse_partial(text, name);
    let Some(spec) = spec else {
        return Err(Problems(problems));
    };
    let unread: Vec<String> = problems.iter().map(|p| p.field.clone()).collect();
    // An unreadable list item is skipped, which shifts the indices after it: leave the
    // whole list to the parse problems then.
    let list_root = |f: &str| f.split_once('[').map(|(root, _)| root.to_string());
    let related = |field: &str| {
        unread.iter().any(|u| {
            u == field
                || u.starts_with(&format!("{field}."))
                || field.starts_with(&format!("{u}."))
                || (list_root(u).is_some() && list_root(u) == list_root(field))
        })
    };
    problems.extend(validate(&spec).into_iter().filter(|p| !related(&p.field)));
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(Problems(problems))
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks against this host (files under `root`) and the other definitions: what is worth
/// knowing before a start (warnings; a file may be created later). What would hurt the host
/// is refused by [`super::guard::check`], which adds it to these.
pub fn host_check(spec: &VmSpec, root: &SysRoot, others: &[VmSpec]) -> Vec<Problem> {
    let mut p = Vec::new();
    let others: Vec<&VmSpec> = others.iter().filter(|o| o.name != spec.name).collect();
    let file = |path: &Path| root.lexical(path);
    for (field, path) in [
        ("boot.firmware", &spec.boot.firmware),
        ("boot.kernel", &spec.boot.kernel),
        ("boot.initramfs", &spec.boot.initramfs),
    ] {
        if let Some(path) = path {
            if !file(path).is_file() {
                p.push(Problem::warning(
                    field,
                    format!(
                        "{} does not exist; the VM cannot start until it does",
                        path.display()
                    ),
                ));
            }
        }
    }
    for (i, d) in spec.disks.iter().enumerate() {
        let at = format!("disks[{i}]");
        let host_path = file(&d.path);
        if !host_path.exists() {
            p.push(Problem::warning(
                format!("{at}.path"),
                format!(
                    "{} does not exist; create it before starting (e.g. qemu-img create)",
                    d.path.display()
                ),
            ));
            continue;
        }
        if let Some(actual) = sniff_format(&host_path) {
            if actual != d.format() {
                p.push(Problem::warning(
                    format!("{at}.format"),
                    format!(
                        "{} looks like {} but will be opened as {}; set format = \"{}\"",
                        d.path.display(),
                        actual.as_str(),
                        d.format().as_str(),
                        actual.as_str()
                    ),
                ));
            }
        }
    }
    host_resources(spec, root, &mut p);
    for (i, v) in spec.vfio.iter().enumerate() {
        let at = format!("vfio[{i}].address");
        let dir = format!("sys/bus/pci/devices/{}", v.address);
        let Ok(resolved) = root.resolve(&dir) else {
            continue;
        };
        if !resolved.is_dir() {
            p.push(Problem::warning(
                at,
                format!(
                    "{} is not a PCI device on this host (see phyllome host)",
                    v.address
                ),
            ));
            continue;
        }
        match root.link_name_in(&resolved, "driver") {
            Ok(Some(d)) if d == "vfio-pci" => {}
            Ok(driver) => p.push(Problem::warning(
                at.clone(),
                format!(
                    "{} is bound to {}, not vfio-pci; bind its IOMMU group before starting",
                    v.address,
                    driver.as_deref().unwrap_or("no driver")
                ),
            )),
            Err(e) => p.push(Problem::warning(
                at.clone(),
                format!("cannot read the driver of {}: {e}", v.address),
            )),
        }
        if let Some(o) = others
            .iter()
            .find(|o| o.vfio.iter().any(|ov| ov.address == v.address))
        {
            p.push(Problem::warning(
                at,
                format!(
                    "{} is also passed to VM {}; only one of them can run at a time",
                    v.address, o.name
                ),
            ));
        }
    }
    for (i, n) in spec.net.iter().enumerate() {
        if let NetKind::Macvtap(name) = &n.kind {
            if !root.exists(format!("sys/class/net/{name}")) {
                p.push(Problem::warning(format!("net[{i}].macvtap"), format!("{name} does not exist yet; create it (ip link add ... type macvtap) before starting")));
            }
        }
    }
    p
}

fn host_resources(spec: &VmSpec, root: &SysRoot, p: &mut Vec<Problem>) {
    if let Ok(text) = root.read("sys/devices/system/cpu/online") {
        if let Some(n) = count_cpu_list(&text) {
            if spec.cpus.boot > n {
                p.push(Problem::warning(
                    "cpus.boot",
                    format!(
                        "{} vCPUs but this host has {n} CPUs online; they will share them",
                        spec.cpus.boot
                    ),
                ));
            } else if spec.cpus.max_vcpus() > n {
                p.push(Problem::warning(
                    "cpus.max",
                    format!(
                        "{} vCPUs but this host has {n} CPUs online",
                        spec.cpus.max_vcpus()
                    ),
                ));
            }
        }
    }
    let Ok(meminfo) = root.read("proc/meminfo") else {
        return;
    };
    let kib = |key: &str| {
        meminfo.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    let size = spec.memory.size.0;
    // Above the host's total is a refusal: see `guard`.
    let within_total = kib("MemTotal").is_some_and(|k| size <= k * 1024);
    if within_total {
        if let Some(avail) = kib("MemAvailable").map(|k| k * 1024) {
            if size > avail && !spec.memory.hugepages {
                p.push(Problem::warning(
                    "memory.size",
                    format!(
                        "{} is more than the {} available now",
                        spec.memory.size,
                        ByteSize(avail / MIB * MIB)
                    ),
                ));
            }
        }
    }
    if spec.memory.hugepages {
        let page = spec
            .memory
            .hugepage_size
            .map(|s| s.0)
            .or(kib("Hugepagesize").map(|k| k * 1024));
        let default_page = kib("Hugepagesize").map(|k| k * 1024);
        // /proc/meminfo only counts the default size; other sizes are not checked here.
        if let (Some(page), Some(free)) = (page, kib("HugePages_Free")) {
            if Some(page) == default_page && free * page < size {
                p.push(Problem::warning("memory.hugepages", format!("{} free hugepages of {} hold {}, less than memory.size {}; reserve more (vm.nr_hugepages)",
                    free, ByteSize(page), ByteSize(free * page), spec.memory.size)));
            }
        }
    }
}

/// `0-7,9,12-13` → 11.
fn count_cpu_list(s: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        n = n.checked_add(b.checked_sub(a)?.checked_add(1)?)?;
    }
    Some(n)
}

/// The image format from its first bytes: qcow2 starts with `QFI\xfb`.
fn sniff_format(path: &Path) -> Option<DiskFormat> {
    let mut f = std::fs::File::open(path).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut magic = [0u8; 4];
    match f.read_exact(&mut magic) {
        Ok(()) if &magic == b"QFI\xfb" => Some(DiskFormat::Qcow2),
        Ok(()) => Some(DiskFormat::Raw),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_cpu_lists() {
        assert_eq!(count_cpu_list("0-7\n"), Some(8));
        assert_eq!(count_cpu_list("0-7,9,12-13"), Some(11));
        assert_eq!(count_cpu_list("7-0"), None);
        assert_eq!(count_cpu_list("x"), None);
    }

    #[test]
    fn names() {
        for ok in ["desktop", "t1", "win11.gaming", "a_b-c", "0"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "Desktop",
            "-x",
            "a b",
            &"x".repeat(64),
            "..",
            "é",
        ] {
            assert!(
                check_name(bad).unwrap_err().contains("is not a VM name"),
                "{bad}"
            );
        }
    }
}
