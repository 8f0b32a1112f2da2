//! Cloud Hypervisor `VmConfig` JSON → [`VmSpec`]. Every field is either taken, equal to Cloud
//! Hypervisor's default (as `vm.info` reports them), or reported: nothing is dropped silently.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::bytesize::ByteSize;
use super::problem::{Problem, Problems};
use super::spec::*;
use crate::host::PciAddress;

mod zone;

/// An imported definition and what was changed on the way (shown to the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub spec: VmSpec,
    pub warnings: Vec<Problem>,
}

/// Reads a `VmConfig` as VM `name`. Errors list every field phyllome cannot carry over.
pub fn from_vm_config(config: &Value, name: &str) -> Result<Imported, Problems> {
    let mut r = Importer::default();
    let spec = r.vm(config, name);
    let mut errors: Vec<Problem> = r.problems.into_iter().filter(Problem::is_error).collect();
    if errors.is_empty() {
        errors = super::validate::validate(&spec);
    }
    if errors.is_empty() {
        Ok(Imported {
            spec,
            warnings: r.warnings,
        })
    } else {
        Err(Problems(errors))
    }
}

#[derive(Default)]
struct Importer {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Importer {
    fn err(&mut self, field: &str, msg: impl Into<String>) {
        self.problems.push(Problem::error(field, msg));
    }

    fn warn(&mut self, field: &str, msg: impl Into<String>) {
        self.warnings.push(Problem::warning(field, msg));
    }

    fn object<'a>(&mut self, v: &'a Value, at: &str) -> Option<&'a Map<String, Value>> {
        let o = v.as_object();
        if o.is_none() {
            self.err(at, format!("expected an object, found {}", short(v)));
        }
        o
    }

    /// Reports fields of `o` that are neither taken nor at their default.
    fn rest(
        &mut self,
        o: &Map<String, Value>,
        at: &str,
        taken: &[&str],
        defaults: &[(&str, Value)],
    ) {
        for (k, v) in o {
            if taken.contains(&k.as_str())
                || is_empty(v)
                || defaults.iter().any(|(dk, dv)| dk == k && dv == v)
            {
                continue;
            }
            let field = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            self.err(
                &field,
                format!(
                    "{} is not supported by phyllome; remove it to import",
                    short(v)
                ),
            );
        }
    }

    fn str_field(&mut self, o: &Map<String, Value>, at: &str, key: &str) -> Option<String> {
        match o.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            v => {
                self.err(
                    &format!("{at}.{key}"),
                    format!("expected a string, found {}", short(v)),
                );
                None
            }
        }
    }

    fn uint(&mut self, o: &Map<String, Value>, at: &str, key: &str) -> Option<u64> {
        let v = o.get(key)?;
        if v.is_null() {
            return None;
        }
        let n = v.as_u64();
        if n.is_none() {
            self.err(
                &format!("{at}.{key}"),
                format!("expected a whole number, found {}", short(v)),
            );
        }
        n
    }

    fn boolean(&mut self, o: &Map<String, Value>, at: &str, key: &str) -> bool {
        match o.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                self.err(
                    &format!("{at}.{key}"),
                    format!("expected true or false, found {}", short(v)),
                );
                false
            }
        }
    }

    fn vm(&mut self, v: &Value, name: &str) -> VmSpec {
        let mut spec = VmSpec::new(name);
        let Some(o) = self.object(v, "") else {
            return spec;
        };
        let defaults = [
            ("iommu", json!(false)),
            ("watchdog", json!(false)),
            ("pvpanic", json!(false)),
            ("landlock_enable", json!(false)),
            ("rng", json!({"src": "/dev/urandom"})),
            ("rng", json!({"src": "/dev/urandom", "iommu": false})),
            ("debug_console", json!({"mode": "Off"})),
            (
                "debug_console",
                json!({"mode": "Off", "iobase": 233, "file": null}),
            ),
        ];
        let taken = [
            "cpus", "memory", "payload", "disks", "net", "balloon", "serial", "console", "devices",
            "platform",
        ];
        self.rest(o, "", &taken, &defaults);
        if let Some(c) = o.get("cpus").and_then(|c| self.object(c, "cpus")) {
            self.cpus(c, &mut spec.cpus);
        }
        match o.get("memory").and_then(|m| self.object(m, "memory")) {
            Some(m) => self.memory(m, &mut spec.memory),
            None => self.err(
                "memory",
                "missing; Cloud Hypervisor's default of 512M is not assumed",
            ),
        }
        if let Some(b) = o
            .get("balloon")
            .filter(|b| !b.is_null())
            .and_then(|b| self.object(b, "balloon"))
        {
            self.rest(
                b,
                "balloon",
                &["size", "deflate_on_oom"],
                &[
                    ("free_page_reporting", json!(false)),
                    ("iommu", json!(false)),
                    ("pci_segment", json!(0)),
                ],
            );
            spec.memory.balloon = self.uint(b, "balloon", "size").map(|size| Balloon {
                size: ByteSize(size),
                deflate_on_oom: self.boolean(b, "balloon", "deflate_on_oom"),
            });
        }
        match o.get("payload").and_then(|p| self.object(p, "payload")) {
            Some(p) => {
                self.rest(
                    p,
                    "payload",
                    &["firmware", "kernel", "initramfs", "cmdline"],
                    &[],
                );
                spec.boot = Boot {
                    firmware: self.str_field(p, "payload", "firmware").map(PathBuf::from),
                    kernel: self.str_field(p, "payload", "kernel").map(PathBuf::from),
                    initramfs: self.str_field(p, "payload", "initramfs").map(PathBuf::from),
                    cmdline: self.str_field(p, "payload", "cmdline"),
                };
            }
            None => self.err(
                "payload",
                "missing; give payload.firmware or payload.kernel",
            ),
        }
        spec.disks = self.list(o, "disks", Self::disk);
        spec.net = self.list(o, "net", Self::net);
        spec.vfio = self.list(o, "devices", Self::device);
        if let Some(s) = o
            .get("serial")
            .filter(|s| !s.is_null())
            .and_then(|s| self.object(s, "serial"))
        {
            spec.serial = self.serial(s);
        }
        if let Some(c) = o
            .get("console")
            .filter(|c| !c.is_null())
            .and_then(|c| self.object(c, "console"))
        {
            spec.console = self.console(c);
        }
        if let Some(p) = o
            .get("platform")
            .filter(|p| !p.is_null())
            .and_then(|p| self.object(p, "platform"))
        {
            let taken = [
                "uuid",
                "system_uuid",
                "serial_number",
                "system_serial_number",
            ];
            let defaults = [
                ("num_pci_segments", json!(1)),
                ("tdx", json!(false)),
                ("sev_snp", json!(false)),
                ("iommufd", json!(false)),
                ("vfio_p2p_dma", json!(true)),
            ];
            self.rest(p, "platform", &taken, &defaults);
            spec.platform.uuid = self
                .str_field(p, "platform", "uuid")
                .or_else(|| self.str_field(p, "platform", "system_uuid"));
            spec.platform.serial_number = self
                .str_field(p, "platform", "serial_number")
                .or_else(|| self.str_field(p, "platform", "system_serial_number"));
        }
        spec
    }

    fn cpus(&mut self, c: &Map<String, Value>, cpus: &mut Cpus) {
        let defaults = [
            ("nested", json!(true)),
            ("core_scheduling", json!("Vm")),
            ("features", json!({})),
            ("max_phys_bits", json!(46)),
        ];
        self.rest(
            c,
            "cpus",
            &[
                "boot_vcpus",
                "max_vcpus",
                "topology",
                "kvm_hyperv",
                "affinity",
            ],
            &defaults,
        );
        if let Some(a) = c.get("affinity") {
            match super::numa::pin_from_affinity(a) {
                Ok(pin) => cpus.pin = pin,
                Err(why) => self.err("cpus.affinity", why),
            }
        }
        let boot = self.uint(c, "cpus", "boot_vcpus").unwrap_or(1);
        cpus.boot = u32::try_from(boot).unwrap_or(u32::MAX);
        cpus.max = self
            .uint(c, "cpus", "max_vcpus")
            .map(|m| u32::try_from(m).unwrap_or(u32::MAX))
            .filter(|&m| m != cpus.boot);
        cpus.kvm_hyperv = self.boolean(c, "cpus", "kvm_hyperv");
        if let Some(t) = c
            .get("topology")
            .filter(|t| !t.is_null())
            .and_then(|t| self.object(t, "cpus.topology"))
        {
            const KEYS: [&str; 4] = [
                "threads_per_core",
                "cores_per_die",
                "dies_per_package",
                "packages",
            ];
            self.rest(t, "cpus.topology", &KEYS, &[]);
            let mut v = [1u8; 4];
            for (slot, key) in v.iter_mut().zip(KEYS) {
                let n = self.uint(t, "cpus.topology", key).unwrap_or(1);
                *slot = u8::try_from(n).unwrap_or_else(|_| {
                    self.err(
                        &format!("cpus.topology.{key}"),
                        format!("{n} is out of range; at most 255"),
                    );
                    1
                });
            }
            cpus.topology = Some(Topology {
                threads_per_core: v[0],
                cores_per_die: v[1],
                dies_per_package: v[2],
                packages: v[3],
            });
        }
    }

    fn memory(&mut self, m: &Map<String, Value>, mem: &mut Memory) {
        let defaults = [
            ("mergeable", json!(false)),
            ("hotplug_method", json!("Acpi")),
            ("prefault", json!(false)),
            ("reserve", json!(false)),
            ("thp", json!(true)),
        ];
        self.rest(
            m,
            "memory",
            &["size", "hugepages", "hugepage_size", "shared", "zones"],
            &defaults,
        );
        if self.memory_zone(m, mem) {
            return;
        }
        match self.uint(m, "memory", "size") {
            Some(n) => mem.size = ByteSize(n),
            None => self.err("memory.size", "missing"),
        }
        mem.hugepages = self.boolean(m, "memory", "hugepages");
        mem.hugepage_size = self.uint(m, "memory", "hugepage_size").map(ByteSize);
        mem.shared = self.boolean(m, "memory", "shared");
    }

    fn list<T>(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        f: fn(&mut Self, &Map<String, Value>, &str) -> Option<T>,
    ) -> Vec<T> {
        let Some(v) = o.get(key).filter(|v| !v.is_null()) else {
            return Vec::new();
        };
        let Some(items) = v.as_array() else {
            self.err(key, format!("expected a list, found {}", short(v)));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{key}[{i}]");
            if let Some(obj) = self.object(item, &at) {
                out.extend(f(self, obj, &at));
            }
        }
        out
    }

    /// Ids Cloud Hypervisor made up (`_disk0`, `_net1`) are not kept: it makes them again.
    fn user_id(&mut self, o: &Map<String, Value>, at: &str) -> Option<String> {
        self.str_field(o, at, "id")
            .filter(|id| !id.starts_with('_'))
    }

    fn disk(&mut self, d: &Map<String, Value>, at: &str) -> Option<Disk> {
        let defaults = [
            ("direct", json!(false)),
            ("iommu", json!(false)),
            ("num_queues", json!(1)),
            ("queue_size", json!(128)),
            ("vhost_user", json!(false)),
            ("disable_io_uring", json!(false)),
            ("disable_aio", json!(false)),
            ("pci_segment", json!(0)),
            ("backing_files", json!(false)),
            ("sparse", json!(true)),
            ("lock_granularity", json!("ByteRange")),
            ("image_type", json!("Unknown")),
        ];
        self.rest(d, at, &["path", "readonly", "image_type", "id"], &defaults);
        let format = match d.get("image_type").and_then(Value::as_str) {
            Some("Raw") => Some(DiskFormat::Raw),
            Some("Qcow2") => Some(DiskFormat::Qcow2),
            None | Some("Unknown") => None,
            Some(other) => {
                self.err(
                    &format!("{at}.image_type"),
                    format!("{other} images are not supported; convert to raw or qcow2"),
                );
                None
            }
        };
        let Some(path) = self.str_field(d, at, "path") else {
            self.err(
                &format!("{at}.path"),
                "missing; only disk images can be imported",
            );
            return None;
        };
        let path = PathBuf::from(path);
        // A format the file name implies is left implicit, as a person would write it.
        let format = format.filter(|f| *f != DiskFormat::from_path(&path));
        Some(Disk {
            path,
            readonly: self.boolean(d, at, "readonly"),
            format,
            id: self.user_id(d, at),
        })
    }

    fn net(&mut self, n: &Map<String, Value>, at: &str) -> Option<Net> {
        let defaults = [
            ("ip", json!("192.168.249.1")),
            ("mask", json!("255.255.255.0")),
            ("iommu", json!(false)),
            ("num_queues", json!(2)),
            ("queue_size", json!(256)),
            ("vhost_user", json!(false)),
            ("vhost_mode", json!("Client")),
            ("pci_segment", json!(0)),
            ("offload_tso", json!(true)),
            ("offload_ufo", json!(true)),
            ("offload_csum", json!(true)),
        ];
        self.rest(n, at, &["tap", "mac", "id", "host_mac"], &defaults);
        if n.get("host_mac").is_some_and(|v| !v.is_null()) {
            self.warn(
                &format!("{at}.host_mac"),
                "not kept: the host side of the interface picks its own",
            );
        }
        let mac = self
            .str_field(n, at, "mac")
            .and_then(|m| match m.parse::<MacAddr>() {
                Ok(m) => Some(m),
                Err(e) => {
                    self.err(&format!("{at}.mac"), e.to_string());
                    None
                }
            });
        let Some(tap) = self.str_field(n, at, "tap") else {
            self.err(
                &format!("{at}.tap"),
                "missing; only tap interfaces can be imported (add macvtap ones with vm edit)",
            );
            return None;
        };
        Some(Net {
            kind: NetKind::Tap(tap),
            mac,
            id: self.user_id(n, at),
        })
    }

    fn device(&mut self, d: &Map<String, Value>, at: &str) -> Option<Vfio> {
        self.rest(
            d,
            at,
            &["path", "id"],
            &[("iommu", json!(false)), ("pci_segment", json!(0))],
        );
        let path = self.str_field(d, at, "path")?;
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        match last.parse::<PciAddress>() {
            Ok(address) if path.trim_end_matches('/') == format!("/sys/bus/pci/devices/{last}") => {
                Some(Vfio {
                    address,
                    id: self.user_id(d, at),
                })
            }
            _ => {
                self.err(&format!("{at}.path"), format!("{path:?} is not a PCI device path; write /sys/bus/pci/devices/0000:01:00.0/"));
                None
            }
        }
    }

    fn serial(&mut self, s: &Map<String, Value>) -> SerialMode {
        self.rest(
            s,
            "serial",
            &["mode", "file", "socket"],
            &[("iommu", json!(false))],
        );
        match s.get("mode").and_then(Value::as_str) {
            Some("Socket") => {
                if self.str_field(s, "serial", "socket").is_some() {
                    self.warn(
                        "serial.socket",
                        "not kept: the supervisor puts the socket in the VM's runtime directory",
                    );
                }
                SerialMode::Socket
            }
            Some("Off") | Some("Null") => SerialMode::Off,
            Some("Pty") => SerialMode::Pty,
            Some("File") => match self.str_field(s, "serial", "file") {
                Some(f) => SerialMode::File(PathBuf::from(f)),
                None => {
                    self.err("serial.file", "missing for mode File");
                    SerialMode::Socket
                }
            },
            Some("Tty") => {
                self.warn(
                    "serial.mode",
                    "Tty becomes socket: a supervised VMM has no terminal; attach with phyllome",
                );
                SerialMode::Socket
            }
            other => {
                self.err(
                    "serial.mode",
                    format!(
                        "{} is not a serial mode phyllome supports",
                        other.unwrap_or("missing")
                    ),
                );
                SerialMode::Socket
            }
        }
    }

    fn console(&mut self, c: &Map<String, Value>) -> ConsoleMode {
        self.rest(
            c,
            "console",
            &["mode", "file"],
            &[("iommu", json!(false)), ("pci_segment", json!(0))],
        );
        match c.get("mode").and_then(Value::as_str) {
            Some("Off") | Some("Null") => ConsoleMode::Off,
            Some("Pty") => ConsoleMode::Pty,
            Some("File") => {
                ConsoleMode::File(self.str_field(c, "console", "file").map(PathBuf::from))
            }
            Some("Tty") => {
                self.warn("console.mode", "Tty becomes off: a supervised VMM has no terminal; use the serial socket or pty");
                ConsoleMode::Off
            }
            other => {
                self.err(
                    "console.mode",
                    format!(
                        "{} is not a console mode phyllome supports",
                        other.unwrap_or("missing")
                    ),
                );
                ConsoleMode::Off
            }
        }
    }
}

/// `null`, `[]` and `{}` say nothing, so they are never reported.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}
