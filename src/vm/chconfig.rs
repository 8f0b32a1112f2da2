//! A definition as Cloud Hypervisor's own `VmConfig` JSON (the body of `PUT vm.create`, as in
//! `cloud-hypervisor.yaml`) and as `cloud-hypervisor` arguments.
//! The way back is in [`super::import`].

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::bytesize::{ByteSize, GIB, KIB, MIB};
use super::spec::*;

/// Paths the supervisor chooses when it starts a VM (they live in its runtime directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimePaths {
    /// The serial port's Unix socket in `serial = "socket"` mode.
    pub serial_socket: PathBuf,
    /// The console's output file in `console = "file"` mode (no path given).
    pub console_file: PathBuf,
}

impl RuntimePaths {
    /// The conventional names inside a VM's runtime directory.
    pub fn in_dir(dir: &Path) -> Self {
        RuntimePaths {
            serial_socket: dir.join("serial.sock"),
            console_file: dir.join("console.log"),
        }
    }
}

/// The sysfs path Cloud Hypervisor takes for a VFIO device (with the trailing slash, as
/// its documentation writes it).
/// Characters Cloud Hypervisor's option parser gives a meaning to: `,` starts another option,
/// `=` a value, brackets and double quotes group.
const OPTION_SYNTAX: [char; 5] = [',', '=', '[', ']', '"'];

/// Whether `text` can be one value of a CH option: it may not hold a double quote (no way to
/// escape it inside a quoted value) nor a control character.
pub fn is_option_safe(text: &str) -> bool {
    !text.chars().any(|c| c == '"' || c.is_control())
}

/// `text` as one value of a CH option (`path=VALUE`), quoted when it holds option syntax, so a
/// path such as `run,fd=3/x` can never add an option. Callers pass values that passed
/// [`is_option_safe`] (validation refuses the others).
pub fn option_value(text: &str) -> String {
    if text.contains(OPTION_SYNTAX) {
        format!("\"{text}\"")
    } else {
        text.to_string()
    }
}

fn path_value(p: &Path) -> String {
    option_value(&p.display().to_string())
}

pub fn vfio_sysfs_path(v: &Vfio) -> String {
    format!("/sys/bus/pci/devices/{}/", v.address)
}

/// macvtap interfaces are handed to Cloud Hypervisor as open `/dev/tapN` descriptors, which a
/// JSON body cannot carry: they are left out of [`to_vm_config`] and added after `vm.create`
/// with `vm.add-net` and the descriptor (SCM_RIGHTS). In [`to_cli_args`] they are
/// `--net fd=3,...`, `fd=4,...` in this order.
pub fn macvtap_nets(spec: &VmSpec) -> Vec<&Net> {
    spec.net
        .iter()
        .filter(|n| matches!(n.kind, NetKind::Macvtap(_)))
        .collect()
}

/// The `NetConfig` of one interface, without the tap name for macvtap (see [`macvtap_nets`]).
pub fn net_config(n: &Net) -> Value {
    let mut o = Map::new();
    if let NetKind::Tap(name) = &n.kind {
        o.insert("tap".into(), json!(name));
    }
    if let Some(mac) = n.mac {
        o.insert("mac".into(), json!(mac.to_string()));
    }
    if let Some(id) = &n.id {
        o.insert("id".into(), json!(id));
    }
    Value::Object(o)
}

fn image_type(f: DiskFormat) -> &'static str {
    match f {
        DiskFormat::Raw => "Raw",
        DiskFormat::Qcow2 => "Qcow2",
    }
}

/// The `VmConfig` for `PUT /api/v1/vm.create`; `ch-remote create FILE` takes it as it is.
pub fn to_vm_config(spec: &VmSpec, rt: &RuntimePaths) -> Value {
    let c = &spec.cpus;
    let mut cpus = json!({
        "boot_vcpus": c.boot,
        "max_vcpus": c.max_vcpus(),
        "kvm_hyperv": c.kvm_hyperv,
    });
    if let Some(t) = c.topology {
        cpus["topology"] = json!({
            "threads_per_core": t.threads_per_core,
            "cores_per_die": t.cores_per_die,
            "dies_per_package": t.dies_per_package,
            "packages": t.packages,
        });
    }
    if let Some(pin) = &c.pin {
        cpus["affinity"] = super::numa::affinity_json(pin);
    }
    let m = &spec.memory;
    let mut memory = json!({
        "size": m.size.0,
        "hugepages": m.hugepages,
        "shared": m.shared,
    });
    if let Some(h) = m.hugepage_size {
        memory["hugepage_size"] = json!(h.0);
    }
    if let Some(node) = m.host_numa_node {
        // Memory on a host node is one zone: CH wants size 0 beside zones, and takes the
        // zone's own hugepages/shared flags (those of `memory` no longer apply).
        let mut zone = memory.clone();
        zone["id"] = json!(super::numa::ZONE_ID);
        zone["host_numa_node"] = json!(node);
        memory = json!({ "size": 0, "zones": [zone] });
    }
    let mut payload = Map::new();
    let b = &spec.boot;
    for (key, path) in [
        ("firmware", &b.firmware),
        ("kernel", &b.kernel),
        ("initramfs", &b.initramfs),
    ] {
        if let Some(p) = path {
            payload.insert(key.into(), json!(p.display().to_string()));
        }
    }
    if let Some(cmdline) = &b.cmdline {
        payload.insert("cmdline".into(), json!(cmdline));
    }
    let mut out = json!({ "cpus": cpus, "memory": memory, "payload": payload });
    if !spec.disks.is_empty() {
        let disks: Vec<Value> = spec
            .disks
            .iter()
            .map(|d| {
                let mut o = json!({
                    "path": d.path.display().to_string(),
                    "readonly": d.readonly,
                    "image_type": image_type(d.format()),
                });
                if let Some(id) = &d.id {
                    o["id"] = json!(id);
                }
                o
            })
            .collect();
        out["disks"] = json!(disks);
    }
    let nets: Vec<Value> = spec
        .net
        .iter()
        .filter(|n| matches!(n.kind, NetKind::Tap(_)))
        .map(net_config)
        .collect();
    if !nets.is_empty() {
        out["net"] = json!(nets);
    }
    if let Some(bal) = &m.balloon {
        out["balloon"] = json!({ "size": bal.size.0, "deflate_on_oom": bal.deflate_on_oom });
    }
    out["serial"] = match &spec.serial {
        SerialMode::Socket => {
            json!({ "mode": "Socket", "socket": rt.serial_socket.display().to_string() })
        }
        SerialMode::Off => json!({ "mode": "Off" }),
        SerialMode::Pty => json!({ "mode": "Pty" }),
        SerialMode::File(p) => json!({ "mode": "File", "file": p.display().to_string() }),
    };
    out["console"] = match &spec.console {
        ConsoleMode::Off => json!({ "mode": "Off" }),
        ConsoleMode::Pty => json!({ "mode": "Pty" }),
        ConsoleMode::File(p) => {
            let p = p.as_ref().unwrap_or(&rt.console_file);
            json!({ "mode": "File", "file": p.display().to_string() })
        }
    };
    if !spec.vfio.is_empty() {
        let devices: Vec<Value> = spec
            .vfio
            .iter()
            .map(|v| {
                let mut o = json!({ "path": vfio_sysfs_path(v) });
                if let Some(id) = &v.id {
                    o["id"] = json!(id);
                }
                o
            })
            .collect();
        out["devices"] = json!(devices);
    }
    let p = &spec.platform;
    if p.uuid.is_some() || p.serial_number.is_some() {
        let mut o = Map::new();
        if let Some(u) = &p.uuid {
            o.insert("uuid".into(), json!(u));
        }
        if let Some(s) = &p.serial_number {
            o.insert("serial_number".into(), json!(s));
        }
        out["platform"] = Value::Object(o);
    }
    out
}

/// A size as Cloud Hypervisor's option parser reads it (K, M and G suffixes, else bytes).
fn ch_size(s: ByteSize) -> String {
    let n = s.0;
    for (scale, unit) in [(GIB, "G"), (MIB, "M"), (KIB, "K")] {
        if n != 0 && n.is_multiple_of(scale) {
            return format!("{}{unit}", n / scale);
        }
    }
    n.to_string()
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The same VM as `cloud-hypervisor` arguments (without `--api-socket`), one option value
/// per element after its flag. macvtap interfaces become `fd=3`, `fd=4`, ... (see
/// [`macvtap_nets`]): the caller opens `/dev/tapN` on those descriptors.
pub fn to_cli_args(spec: &VmSpec, rt: &RuntimePaths) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |flag: &str, value: String| {
        a.push(flag.to_string());
        a.push(value);
    };
    let c = &spec.cpus;
    let mut cpus = format!("boot={},max={}", c.boot, c.max_vcpus());
    if let Some(t) = c.topology {
        cpus += &format!(
            ",topology={}:{}:{}:{}",
            t.threads_per_core, t.cores_per_die, t.dies_per_package, t.packages
        );
    }
    if c.kvm_hyperv {
        cpus += ",kvm_hyperv=on";
    }
    if let Some(pin) = &c.pin {
        cpus += &format!(",{}", super::numa::affinity_cli(pin));
    }
    push("--cpus", cpus);
    let m = &spec.memory;
    let mut mem = format!("size={}", ch_size(m.size));
    if m.hugepages {
        mem += ",hugepages=on";
    }
    if let Some(h) = m.hugepage_size {
        mem += &format!(",hugepage_size={}", ch_size(h));
    }
    if m.shared {
        mem += ",shared=on";
    }
    match m.host_numa_node {
        Some(node) => {
            push("--memory", "size=0".into());
            push(
                "--memory-zone",
                format!("id={},{mem},host_numa_node={node}", super::numa::ZONE_ID),
            );
        }
        None => push("--memory", mem),
    }
    let b = &spec.boot;
    if let Some(f) = &b.firmware {
        push("--firmware", f.display().to_string());
    }
    if let Some(k) = &b.kernel {
        push("--kernel", k.display().to_string());
    }
    if let Some(i) = &b.initramfs {
        push("--initramfs", i.display().to_string());
    }
    if let Some(cmd) = &b.cmdline {
        push("--cmdline", cmd.clone());
    }
    for d in &spec.disks {
        let mut v = format!("path={}", path_value(&d.path));
        if d.readonly {
            v += ",readonly=on";
        }
        v += &format!(",image_type={}", d.format().as_str());
        if let Some(id) = &d.id {
            v += &format!(",id={id}");
        }
        push("--disk", v);
    }
    let mut fd = 3;
    for n in &spec.net {
        let mut v = match &n.kind {
            NetKind::Tap(name) => format!("tap={name}"),
            NetKind::Macvtap(_) => {
                fd += 1;
                format!("fd={}", fd - 1)
            }
        };
        if let Some(mac) = n.mac {
            v += &format!(",mac={mac}");
        }
        if let Some(id) = &n.id {
            v += &format!(",id={id}");
        }
        push("--net", v);
    }
    if let Some(bal) = &m.balloon {
        push(
            "--balloon",
            format!(
                "size={},deflate_on_oom={}",
                ch_size(bal.size),
                on(bal.deflate_on_oom)
            ),
        );
    }
    for v in &spec.vfio {
        let mut s = format!("path={}", vfio_sysfs_path(v));
        if let Some(id) = &v.id {
            s += &format!(",id={id}");
        }
        push("--device", s);
    }
    let serial = match &spec.serial {
        SerialMode::Socket => format!("socket={}", path_value(&rt.serial_socket)),
        SerialMode::File(p) => format!("file={}", path_value(p)),
        other => other.to_string(),
    };
    push("--serial", serial);
    let console = match &spec.console {
        ConsoleMode::File(p) => {
            format!(
                "file={}",
                path_value(p.as_ref().unwrap_or(&rt.console_file))
            )
        }
        other => other.to_string(),
    };
    push("--console", console);
    let p = &spec.platform;
    let mut plat = Vec::new();
    if let Some(u) = &p.uuid {
        plat.push(format!("uuid={u}"));
    }
    if let Some(s) = &p.serial_number {
        plat.push(format!("serial_number={s}"));
    }
    if !plat.is_empty() {
        push("--platform", plat.join(","));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_syntax_in_a_value_is_quoted() {
        assert_eq!(option_value("/var/lib/vm.img"), "/var/lib/vm.img");
        assert_eq!(option_value("/run,fd=3/x"), "\"/run,fd=3/x\"");
        assert_eq!(option_value("/a[b]"), "\"/a[b]\"");
        assert!(is_option_safe("/run,fd=3/x"));
        assert!(!is_option_safe("/a\"b"));
        assert!(!is_option_safe("/a\u{1b}]0;x\u{7}"));
    }
}
