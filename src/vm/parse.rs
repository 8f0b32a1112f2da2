//! TOML text → [`VmSpec`]: syntax, types, unknown keys and value formats, with every problem
//! collected (not just the first) and named by field. Cross-field rules are in `validate`.

use std::path::PathBuf;
use std::str::FromStr;

use toml::{Table, Value};

use super::bytesize::ByteSize;
use super::grace::StopTimeout;
use super::problem::{Problem, Problems};
use super::spec::*;
use crate::host::PciAddress;

/// Reads a definition. `name` is the VM's name from its file name: a `name` key in the text,
/// if any, must agree with it.
pub fn parse_named(text: &str, name: &str) -> Result<VmSpec, Problems> {
    match parse_partial(text, name) {
        (Some(spec), problems) if problems.is_empty() => Ok(spec),
        (_, problems) => Err(Problems(problems)),
    }
}

/// Like [`parse_named`], but also gives what could be read despite the problems (fields in
/// error keep their defaults), so validation can report the rest at the same time. `None`
/// when the text is not TOML at all.
pub fn parse_partial(text: &str, name: &str) -> (Option<VmSpec>, Vec<Problem>) {
    let table: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let msg = e.to_string().trim().replace('\n', "\n  ");
            return (
                None,
                vec![Problem::error("", format!("Not valid TOML: {msg}"))],
            );
        }
    };
    let mut r = Reader::default();
    let spec = r.spec(&table, name);
    (Some(spec), r.problems)
}

#[derive(Default)]
struct Reader {
    problems: Vec<Problem>,
}

const TOP: &[&str] = &[
    "name",
    "autostart",
    "stop_timeout",
    "serial",
    "console",
    "cpus",
    "memory",
    "boot",
    "disks",
    "net",
    "vfio",
    "platform",
];

impl Reader {
    fn err(&mut self, field: &str, msg: impl Into<String>) {
        self.problems.push(Problem::error(field, msg));
    }

    fn spec(&mut self, t: &Table, name: &str) -> VmSpec {
        self.known_keys(t, "", TOP);
        let mut spec = VmSpec::new(name);
        if let Some(n) = self.string(t, "", "name") {
            if name.is_empty() {
                spec.name = n;
            } else if n != name {
                self.err(
                    "name",
                    format!("{n:?} differs from the VM's name {name:?}; remove the line or make them equal"),
                );
            }
        }
        spec.autostart = self.boolean(t, "", "autostart").unwrap_or(false);
        if let Some(d) = self.duration(t, "", "stop_timeout") {
            spec.stop_timeout = d;
        }
        if let Some(s) = self.string(t, "", "serial") {
            spec.serial = self.serial(&s);
        }
        if let Some(s) = self.string(t, "", "console") {
            spec.console = self.console(&s);
        }
        if let Some(c) = self.table(t, "", "cpus") {
            self.cpus(c, &mut spec.cpus);
        }
        match self.table(t, "", "memory") {
            Some(m) => self.memory(m, &mut spec.memory),
            None if t.contains_key("memory") => {}
            None => self.err("memory", "missing; add [memory] with size = \"2G\" or more"),
        }
        if let Some(b) = self.table(t, "", "boot") {
            spec.boot = self.boot(b);
        }
        spec.disks = self.each(t, "disks", Self::disk);
        spec.net = self.each(t, "net", Self::net);
        spec.vfio = self.each(t, "vfio", Self::vfio);
        if let Some(p) = self.table(t, "", "platform") {
            self.known_keys(p, "platform", &["uuid", "serial_number"]);
            spec.platform.uuid = self.string(p, "platform", "uuid");
            spec.platform.serial_number = self.string(p, "platform", "serial_number");
        }
        spec
    }

    fn cpus(&mut self, t: &Table, cpus: &mut Cpus) {
        self.known_keys(t, "cpus", &["boot", "max", "topology", "kvm_hyperv", "pin"]);
        if let Some(pin) = self.string(t, "cpus", "pin") {
            match pin.parse::<CpuList>() {
                Ok(l) => cpus.pin = Some(l),
                Err(e) => self.err("cpus.pin", e.to_string()),
            }
        }
        if let Some(n) = self.uint(t, "cpus", "boot", u32::MAX.into()) {
            cpus.boot = n as u32;
        }
        cpus.max = self
            .uint(t, "cpus", "max", u32::MAX.into())
            .map(|n| n as u32);
        cpus.kvm_hyperv = self.boolean(t, "cpus", "kvm_hyperv").unwrap_or(false);
        if let Some(topo) = self.table(t, "cpus", "topology") {
            const KEYS: [&str; 4] = [
                "threads_per_core",
                "cores_per_die",
                "dies_per_package",
                "packages",
            ];
            self.known_keys(topo, "cpus.topology", &KEYS);
            let mut v = [1u8; 4];
            let mut complete = true;
            for (slot, key) in v.iter_mut().zip(KEYS) {
                match self.uint(topo, "cpus.topology", key, 255) {
                    Some(n) => *slot = n as u8,
                    None if !topo.contains_key(key) => {
                        complete = false;
                        self.err(&format!("cpus.topology.{key}"), "missing; give all four of threads_per_core, cores_per_die, dies_per_package, packages");
                    }
                    None => complete = false,
                }
            }
            if complete {
                cpus.topology = Some(Topology {
                    threads_per_core: v[0],
                    cores_per_die: v[1],
                    dies_per_package: v[2],
                    packages: v[3],
                });
            }
        }
    }

    fn memory(&mut self, t: &Table, m: &mut Memory) {
        self.known_keys(
            t,
            "memory",
            &[
                "size",
                "hugepages",
                "hugepage_size",
                "shared",
                "balloon",
                "host_numa_node",
            ],
        );
        // Linux's own limit (MAX_NUMNODES) is 1024 nodes.
        m.host_numa_node = self
            .uint(t, "memory", "host_numa_node", 1023)
            .map(|n| n as u32);
        match self.size(t, "memory", "size") {
            Some(s) => m.size = s,
            None if !t.contains_key("size") => {
                self.err("memory.size", "missing; write e.g. size = \"8G\"")
            }
            None => {}
        }
        m.hugepages = self.boolean(t, "memory", "hugepages").unwrap_or(false);
        m.hugepage_size = self.size(t, "memory", "hugepage_size");
        m.shared = self.boolean(t, "memory", "shared").unwrap_or(false);
        if let Some(b) = self.table(t, "memory", "balloon") {
            self.known_keys(b, "memory.balloon", &["size", "deflate_on_oom"]);
            let size = self.size(b, "memory.balloon", "size");
            if size.is_none() && !b.contains_key("size") {
                self.err(
                    "memory.balloon.size",
                    "missing; write e.g. size = \"0\" to start deflated",
                );
            }
            m.balloon = size.map(|size| Balloon {
                size,
                deflate_on_oom: self
                    .boolean(b, "memory.balloon", "deflate_on_oom")
                    .unwrap_or(false),
            });
        }
    }

    fn boot(&mut self, t: &Table) -> Boot {
        self.known_keys(t, "boot", &["firmware", "kernel", "initramfs", "cmdline"]);
        Boot {
            firmware: self.path(t, "boot", "firmware"),
            kernel: self.path(t, "boot", "kernel"),
            initramfs: self.path(t, "boot", "initramfs"),
            cmdline: self.string(t, "boot", "cmdline"),
        }
    }

    fn disk(&mut self, t: &Table, at: &str) -> Option<Disk> {
        self.known_keys(t, at, &["path", "readonly", "format", "id"]);
        let path = self.path(t, at, "path");
        if path.is_none() && !t.contains_key("path") {
            self.err(&format!("{at}.path"), "missing; give the disk image's path");
        }
        let format = self.string(t, at, "format").and_then(|f| match f.as_str() {
            "raw" => Some(DiskFormat::Raw),
            "qcow2" => Some(DiskFormat::Qcow2),
            _ => {
                self.err(
                    &format!("{at}.format"),
                    format!("{f:?} is not a disk format; write raw or qcow2"),
                );
                None
            }
        });
        Some(Disk {
            path: path?,
            readonly: self.boolean(t, at, "readonly").unwrap_or(false),
            format,
            id: self.string(t, at, "id"),
        })
    }

    fn net(&mut self, t: &Table, at: &str) -> Option<Net> {
        self.known_keys(t, at, &["tap", "macvtap", "mac", "id"]);
        let tap = self.string(t, at, "tap");
        let macvtap = self.string(t, at, "macvtap");
        let mac = self
            .string(t, at, "mac")
            .and_then(|m| match m.parse::<MacAddr>() {
                Ok(m) => Some(m),
                Err(e) => {
                    self.err(&format!("{at}.mac"), e.to_string());
                    None
                }
            });
        let id = self.string(t, at, "id");
        let kind = match (tap, macvtap) {
            (Some(n), None) => NetKind::Tap(n),
            (None, Some(n)) => NetKind::Macvtap(n),
            (Some(_), Some(_)) => {
                self.err(at, "give either tap or macvtap, not both");
                return None;
            }
            (None, None) => {
                if !t.contains_key("tap") && !t.contains_key("macvtap") {
                    self.err(at, "give tap = \"NAME\" or macvtap = \"NAME\"");
                }
                return None;
            }
        };
        Some(Net { kind, mac, id })
    }

    fn vfio(&mut self, t: &Table, at: &str) -> Option<Vfio> {
        self.known_keys(t, at, &["address", "id"]);
        let id = self.string(t, at, "id");
        let Some(a) = self.string(t, at, "address") else {
            if !t.contains_key("address") {
                self.err(
                    &format!("{at}.address"),
                    "missing; give the PCI address, e.g. 0000:01:00.0",
                );
            }
            return None;
        };
        match a.parse::<PciAddress>() {
            Ok(address) => Some(Vfio { address, id }),
            Err(e) => {
                self.err(&format!("{at}.address"), e.to_string());
                None
            }
        }
    }

    fn serial(&mut self, s: &str) -> SerialMode {
        match s {
            "socket" => SerialMode::Socket,
            "off" => SerialMode::Off,
            "pty" => SerialMode::Pty,
            _ => match s.strip_prefix("file=") {
                Some(p) if !p.is_empty() => SerialMode::File(PathBuf::from(p)),
                _ => {
                    self.err(
                        "serial",
                        format!("{s:?} is not a serial mode; write socket, pty, file=PATH or off"),
                    );
                    SerialMode::Socket
                }
            },
        }
    }

    fn console(&mut self, s: &str) -> ConsoleMode {
        match s {
            "off" => ConsoleMode::Off,
            "pty" => ConsoleMode::Pty,
            "file" => ConsoleMode::File(None),
            _ => match s.strip_prefix("file=") {
                Some(p) if !p.is_empty() => ConsoleMode::File(Some(PathBuf::from(p))),
                _ => {
                    self.err(
                        "console",
                        format!("{s:?} is not a console mode; write off, pty, file or file=PATH"),
                    );
                    ConsoleMode::Off
                }
            },
        }
    }

    /// An array of tables (`[[disks]]`), each read by `f` with its indexed field name.
    fn each<T>(
        &mut self,
        t: &Table,
        key: &str,
        f: fn(&mut Self, &Table, &str) -> Option<T>,
    ) -> Vec<T> {
        let Some(v) = t.get(key) else {
            return Vec::new();
        };
        let Some(items) = v.as_array() else {
            self.err(
                key,
                format!("expected a list of tables ([[{key}]]), found {}", kind(v)),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{key}[{i}]");
            match item.as_table() {
                Some(table) => out.extend(f(self, table, &at)),
                None => self.err(&at, format!("expected a table, found {}", kind(item))),
            }
        }
        out
    }

    fn known_keys(&mut self, t: &Table, at: &str, allowed: &[&str]) {
        for key in t.keys() {
            if !allowed.contains(&key.as_str()) {
                let field = join(at, key);
                self.err(
                    &field,
                    format!("unknown field; expected one of {}", allowed.join(", ")),
                );
            }
        }
    }

    fn get<'a>(
        &mut self,
        t: &'a Table,
        at: &str,
        key: &str,
        want: &str,
        ok: fn(&Value) -> bool,
    ) -> Option<&'a Value> {
        let v = t.get(key)?;
        if ok(v) {
            Some(v)
        } else {
            self.err(
                &join(at, key),
                format!("expected {want}, found {}", kind(v)),
            );
            None
        }
    }

    fn table<'a>(&mut self, t: &'a Table, at: &str, key: &str) -> Option<&'a Table> {
        self.get(t, at, key, "a table", Value::is_table)?.as_table()
    }

    fn string(&mut self, t: &Table, at: &str, key: &str) -> Option<String> {
        Some(
            self.get(t, at, key, "a string", Value::is_str)?
                .as_str()?
                .to_string(),
        )
    }

    fn path(&mut self, t: &Table, at: &str, key: &str) -> Option<PathBuf> {
        let s = self.string(t, at, key)?;
        if s.is_empty() || !s.starts_with('/') {
            self.err(
                &join(at, key),
                format!(
                    "{s:?} is not an absolute path; write e.g. /var/lib/phyllome/images/disk.img"
                ),
            );
            return None;
        }
        Some(PathBuf::from(s))
    }

    fn boolean(&mut self, t: &Table, at: &str, key: &str) -> Option<bool> {
        self.get(t, at, key, "true or false", Value::is_bool)?
            .as_bool()
    }

    fn uint(&mut self, t: &Table, at: &str, key: &str, max: u64) -> Option<u64> {
        let n = self
            .get(t, at, key, "a whole number", Value::is_integer)?
            .as_integer()?;
        match u64::try_from(n) {
            Ok(n) if n <= max => Some(n),
            _ => {
                self.err(
                    &join(at, key),
                    format!("{n} is out of range; write 0 to {max}"),
                );
                None
            }
        }
    }

    /// A duration as a string (`"90s"`, `"2m"`) or a whole number of seconds.
    fn duration(&mut self, t: &Table, at: &str, key: &str) -> Option<StopTimeout> {
        let field = join(at, key);
        match t.get(key)? {
            Value::String(s) => match StopTimeout::from_str(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.err(&field, e.to_string());
                    None
                }
            },
            Value::Integer(n) if *n >= 0 => Some(StopTimeout(*n as u64)),
            v => {
                self.err(
                    &field,
                    format!("expected a duration such as \"90s\", found {}", kind(v)),
                );
                None
            }
        }
    }

    /// A size as a string (`"8G"`) or a whole number of bytes.
    fn size(&mut self, t: &Table, at: &str, key: &str) -> Option<ByteSize> {
        let field = join(at, key);
        match t.get(key)? {
            Value::String(s) => match ByteSize::from_str(s) {
                Ok(size) => Some(size),
                Err(e) => {
                    self.err(&field, e.to_string());
                    None
                }
            },
            Value::Integer(n) if *n >= 0 => Some(ByteSize(*n as u64)),
            v => {
                self.err(
                    &field,
                    format!("expected a size such as \"8G\", found {}", kind(v)),
                );
                None
            }
        }
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {:?}", s.chars().take(40).collect::<String>()),
        Value::Integer(n) => format!("the number {n}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(_) => "a date".into(),
        Value::Array(_) => "a list".into(),
        Value::Table(_) => "a table".into(),
    }
}
